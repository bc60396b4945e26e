from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al


def test_digits_splits_and_layout(digits_test, digits_train):
    assert digits_test.x.shape == (450, 1, 8, 8)
    assert digits_test.input_shape == (1, 8, 8)
    assert digits_train.n == 1797 - 450
    assert digits_test.x.dtype == np.float32 and digits_test.y.dtype == np.int64
    assert 0.0 <= digits_test.x.min() and digits_test.x.max() <= 1.0
    assert digits_test.nb_classes == 10 and digits_test.clip_values == (0.0, 1.0)
    # stratified: every class is present in proportion (digits has ~180 per class -> ~45 in test)
    counts = np.bincount(digits_test.y, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46


def test_digits_is_deterministic_and_seeded(digits_test):
    again = al.load_dataset("digits", split="test")
    assert again.sha256 == digits_test.sha256
    other = al.load_dataset("digits", split="test", seed=1)
    assert other.sha256 != digits_test.sha256


def test_val_is_carved_from_train_and_disjoint():
    full = al.load_dataset("digits", split="train")
    fit = al.load_dataset("digits", split="train", val_fraction=0.2)
    val = al.load_dataset("digits", split="val", val_fraction=0.2)
    assert fit.n + val.n == full.n
    rows = lambda d: {r.tobytes() + bytes([int(t)]) for r, t in zip(d.x, d.y)}  # noqa: E731
    assert rows(fit).isdisjoint(rows(val))
    assert rows(fit) | rows(val) == rows(full)
    with pytest.raises(al.ConfigError, match="val_fraction"):
        al.load_dataset("digits", split="val", val_fraction=1.5)


def test_dataset_arrays_are_read_only(digits_test):
    with pytest.raises(ValueError):
        digits_test.x[0, 0, 0, 0] = 5.0


def test_unknown_dataset_and_split():
    with pytest.raises(al.UnknownComponentError, match="did you mean 'digits'"):
        al.load_dataset("digit")
    with pytest.raises(al.ConfigError, match="unknown split"):
        al.load_dataset("digits", split="validation")


def test_from_arrays_accepts_one_hot_and_stores_integers():
    x = np.random.default_rng(0).random((6, 1, 4, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    ds = al.from_arrays(x, np.eye(3)[y], clip_values=(0.0, 1.0))
    assert ds.y.tolist() == y.tolist() and ds.nb_classes == 3
    ds2 = al.from_arrays(x, y, nb_classes=5)
    assert ds2.nb_classes == 5


def test_from_arrays_channels_last_is_transposed():
    x = np.random.default_rng(0).random((4, 8, 6, 3)).astype(np.float32)
    ds = al.from_arrays(x, [0, 1, 0, 1], layout="channels_last")
    assert ds.input_shape == (3, 8, 6)
    np.testing.assert_array_equal(ds.x[1, 2], x[1, :, :, 2])


@pytest.mark.parametrize("bad,match", [
    (np.nan, "NaN or Inf"),
    (np.inf, "NaN or Inf"),
])
def test_from_arrays_rejects_non_finite(bad, match):
    x = np.zeros((3, 1, 2, 2), dtype=np.float32)
    x[1, 0, 1, 1] = bad
    with pytest.raises(al.DataError, match=match) as info:
        al.from_arrays(x, [0, 1, 0])
    assert "index 1" in str(info.value)


def test_from_arrays_label_errors():
    x = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(al.DataError, match=r"labels outside \[0, 2\)"):
        al.from_arrays(x, [0, 1, 2], nb_classes=2)
    with pytest.raises(al.DataError, match="negative"):
        al.from_arrays(x, [0, -1, 1])
    with pytest.raises(al.DataError, match="one-hot y has 3 columns but nb_classes=4"):
        al.from_arrays(x, np.eye(3), nb_classes=4)
    with pytest.raises(al.DataError, match="one-hot rows"):
        al.from_arrays(x, np.full((3, 3), 1 / 3))
    with pytest.raises(al.DataError, match="2 labels but there are 3 samples"):
        al.from_arrays(x, [0, 1])
    with pytest.raises(al.DataError, match="whole class numbers"):
        al.from_arrays(x, [0.5, 1, 0])


def test_from_arrays_clip_range_checked():
    x = np.full((2, 4), 255.0, dtype=np.float32)
    with pytest.raises(al.DataError, match=r"outside clip_values \(0.0, 1.0\)") as info:
        al.from_arrays(x, [0, 1], clip_values=(0.0, 1.0))
    assert "x / 255.0" in str(info.value)


def test_npz_round_trip_and_pickle_refusal(tmp_path, digits_test):
    path = al.data.save_npz(digits_test, tmp_path / "d.npz")
    back = al.load_dataset(str(path), clip_values=(0.0, 1.0), nb_classes=10)
    assert back.sha256 == digits_test.sha256 and back.name == "d"
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(al.DataError, match="unpickling"):
        al.load_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "keys.npz", images=np.zeros((2, 3)), labels=np.array([0, 1]))
    with pytest.raises(al.DataError, match=r"lacks the array\(s\) \[.x., .y.\]; got arrays"):
        al.load_npz(tmp_path / "keys.npz")
    assert al.load_npz(tmp_path / "keys.npz", x_key="images", y_key="labels").n == 2
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(al.DataError):
        al.load_npz(tmp_path / "trunc.npz")


def test_stratified_sample_is_reproducible(digits_test):
    a = digits_test.stratified_sample(100, seed=3)
    b = digits_test.stratified_sample(100, seed=3)
    c = digits_test.stratified_sample(100, seed=4)
    assert a.sha256 == b.sha256 != c.sha256
    assert np.bincount(a.y, minlength=10).min() >= 9
    with pytest.raises(al.ConfigError, match="larger than the data"):
        digits_test.stratified_sample(451)
