"""In-graph intensity normalization: hand-computed values and agreement with training's."""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg.data import preprocess
from kerasseg.export.normalization import normalization_spec, normalize_image


def run(image, spec):
    return normalize_image(tf.constant(np.asarray(image, np.float32)), spec).numpy()


def test_spec_forms_are_canonicalized():
    assert normalization_spec(None) == {"method": "none", "params": {}}
    assert normalization_spec("zscore") == {"method": "zscore", "params": {"nonzero": False}}
    assert normalization_spec({"method": "scale", "scale": 0.5}) == {
        "method": "scale", "params": {"scale": 0.5, "offset": 0.0}}
    assert normalization_spec({"method": "ct_window", "params": {"center": 40, "width": 400}}) == {
        "method": "ct_window", "params": {"center": 40.0, "width": 400.0}}

    class Described:  # anything with to_dict(), such as the data module's Normalizer
        def to_dict(self):
            return {"method": "percentile_clip", "params": {"lower": 1, "upper": 99}}

    assert normalization_spec(Described())["params"] == {
        "lower": 1.0, "upper": 99.0, "rescale": False}


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"method": "robust"}, "`normalization['method']` must be one of ['none', 'scale'"),
        ({"method": "zscore", "mean": 3}, "accepts parameters ['nonzero']. Received unknown"),
        ({"method": "ct_window", "center": 40}, "requires parameters ['width']"),
        ({"method": "fixed", "mean": 1, "std": 0}, "`std` must be positive"),
        ({"method": "minmax", "min": 0}, "give both `min` and `max`"),
        ({"method": "minmax", "min": 5, "max": 5}, "max > min"),
        ({"method": "percentile_clip", "lower": 60, "upper": 40},
         "`lower` and `upper` must satisfy 0 <= lower < upper <= 100"),
        ({"method": "zscore", "nonzero": 1}, "`nonzero` must be one of [True, False]"),
        (42, "`normalization` must be None, a method name, or a dict"),
    ],
)
def test_invalid_specs(spec, message):
    with pytest.raises(ValueError) as info:
        normalization_spec(spec)
    assert message in str(info.value)


def test_hand_computed_values():
    x = [[[1.0], [3.0]]]
    assert run(x, "none").ravel().tolist() == [1.0, 3.0]
    assert run(x, "zscore").ravel().tolist() == [-1.0, 1.0]
    assert run(x, {"method": "scale", "scale": 0.5, "offset": -1}).ravel().tolist() == [-0.5, 0.5]
    assert run(x, {"method": "fixed", "mean": 2, "std": 0.5}).ravel().tolist() == [-2.0, 2.0]
    assert run([[[2.0], [4.0], [6.0]]], "minmax").ravel().tolist() == [0.0, 0.5, 1.0]
    clipped = run([[[-10.0], [50.0], [300.0]]], {"method": "minmax", "min": 0, "max": 200})
    assert clipped.ravel().tolist() == [0.0, 0.25, 1.0]
    window = run([[[-200.0], [40.0], [240.0], [1000.0]]],
                 {"method": "ct_window", "center": 40, "width": 400})
    assert window.ravel().tolist() == [0.0, 0.5, 1.0, 1.0]
    # Nonzero z-score: statistics of {2, 4} (mean 3, std 1); zeros stay 0.
    assert run([[[0.0], [2.0]], [[4.0], [0.0]]],
               {"method": "zscore", "nonzero": True}).ravel().tolist() == [0.0, -1.0, 1.0, 0.0]
    # Per-channel constants.
    two = run([[[1.0, 10.0]]], {"method": "fixed", "mean": [0, 10], "std": [1, 2]})
    assert two.ravel().tolist() == [1.0, 0.0]


def test_percentiles_match_numpy():
    values = np.arange(101, dtype=np.float32).reshape(101, 1, 1)
    out = run(values, {"method": "percentile_clip", "lower": 1, "upper": 99})
    assert (out.min(), out.max()) == (1.0, 99.0)
    rng = np.random.RandomState(0)
    image = rng.gamma(2.0, 30.0, size=(17, 23, 2)).astype(np.float32)
    out = run(image, {"method": "percentile_clip", "lower": 2.5, "upper": 97.5})
    for c in range(2):
        lo, hi = np.percentile(image[..., c], [2.5, 97.5])
        np.testing.assert_allclose(out[..., c], np.clip(image[..., c], lo, hi), rtol=1e-6)


def test_matches_training_normalizer():
    rng = np.random.RandomState(1)
    image = rng.gamma(2.0, 40.0, size=(31, 29, 2)).astype(np.float32)
    image[:5] = 0.0
    for method, params in [
        ("none", {}),
        ("zscore", {}),
        ("zscore", {"nonzero": True}),
        ("minmax", {}),
        ("percentile_clip", {"lower": 1.0, "upper": 99.0, "rescale": True}),
        ("percentile_zscore", {"lower": 0.5, "upper": 99.5, "nonzero": True}),
        ("ct_window", {"center": 50.0, "width": 120.0}),
    ]:
        normalizer = preprocess.Normalizer(method, **params)
        expected = normalizer(image[None])[0]
        np.testing.assert_allclose(run(image, normalizer), expected, rtol=1e-4, atol=1e-4,
                                   err_msg=method)
