from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.models.spec import check_input_shape, normalize_clip_values, resolve_layout


@pytest.mark.parametrize("shape", [(), None, (1, 0, 8), (1, -8), (1.5, 8), "1,8,8", (1, 2, 3, 4, 5)])
def test_bad_input_shape(shape):
    with pytest.raises(al.ConfigError, match="input_shape"):
        check_input_shape(shape)


def test_clip_values_normalization():
    assert normalize_clip_values((0, 1), (1, 8, 8)) == (0.0, 1.0)
    lo, hi = normalize_clip_values(([0, 0, 0], [1, 2, 3]), (3, 4, 4))
    assert lo.shape == (3, 1, 1) and hi[2, 0, 0] == 3
    lo, hi = normalize_clip_values((np.zeros((1, 4, 4)), 1.0), (1, 4, 4))
    assert lo.shape == (1, 4, 4)


@pytest.mark.parametrize("clip,match", [
    ((1.0, 0.0), "reversed"),
    ((0.5, 0.5), "reversed"),
    ((float("nan"), 1.0), "finite"),
    ((0.0, float("inf")), "finite"),
    ((0.0,), "pair"),
    (None, "required"),
    (("a", 1.0), "numbers"),
    (([0, 0], [1, 1]), "one value per channel"),
])
def test_bad_clip_values(clip, match):
    with pytest.raises(al.ConfigError, match=match):
        normalize_clip_values(clip, (3, 4, 4))


def test_layout_resolution():
    assert resolve_layout((1, 8, 8), (1, 8, 8), None, default_channels_first=False) == "channels_first"
    assert resolve_layout((1, 8, 8), (8, 8, 1), None, default_channels_first=False) == "channels_last"
    assert resolve_layout((1, 8, 8), (64,), None, default_channels_first=False) == "flat"
    assert resolve_layout((1, 8, 8), (None, None, 1), None, default_channels_first=False) == "channels_last"
    assert resolve_layout((1, 8, 8), None, False, default_channels_first=True) == "channels_last"
    with pytest.raises(al.IncompatibleModelError, match="does not match the model's declared input shape"):
        resolve_layout((1, 8, 8), (28, 28, 1), None, default_channels_first=False)
    with pytest.raises(al.IncompatibleModelError, match="contradicts"):
        resolve_layout((1, 8, 8), (8, 8, 1), True, default_channels_first=False)
