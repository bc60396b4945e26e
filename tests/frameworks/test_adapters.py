"""Streaming adapters: torch DataLoader and tf.data into the canonical Dataset."""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al


def test_torch_dataloader(digits_test):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    tds = TensorDataset(torch.from_numpy(np.array(digits_test.x)), torch.from_numpy(np.array(digits_test.y)))
    loader = DataLoader(tds, batch_size=32, shuffle=False)
    ds = al.from_torch_loader(loader, max_samples=70, nb_classes=10, clip_values=(0.0, 1.0))
    assert ds.n == 70 and ds.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(ds.x, digits_test.x[:70])
    np.testing.assert_array_equal(ds.y, digits_test.y[:70])
    full = al.from_torch_loader(loader)
    assert full.sha256 == al.from_arrays(digits_test.x, digits_test.y).sha256
    with pytest.raises(al.DataError, match=r"\(x, y\) pair"):
        al.from_torch_loader(DataLoader(TensorDataset(torch.zeros(4, 3)), batch_size=2))


def test_tf_dataset_batched_and_unbatched(digits_test):
    tf = pytest.importorskip("tensorflow")
    x_cl = np.transpose(digits_test.x[:50], (0, 2, 3, 1))
    y = digits_test.y[:50]
    batched = tf.data.Dataset.from_tensor_slices((x_cl, y)).batch(16)
    ds = al.from_tf_dataset(batched, max_samples=40)
    assert ds.n == 40 and ds.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(ds.x, digits_test.x[:40])
    unbatched = tf.data.Dataset.from_tensor_slices((x_cl, y))
    ds2 = al.from_tf_dataset(unbatched)
    assert ds2.n == 50
    np.testing.assert_array_equal(ds2.y, y)
    with pytest.raises(al.DataError, match="tf.data.Dataset"):
        al.from_tf_dataset([1, 2, 3])
