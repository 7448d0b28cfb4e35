"""One normalization registry: the NumPy (training, inference) and TensorFlow (exported graph)
implementations give the same numbers and reject the same descriptions with the same words."""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg.data import normalization as registry
from kerasseg.data.preprocess import Normalizer
from kerasseg.export import normalization as exported

# Every method of the registry with a few parameter sets (defaults first).
CASES = {
    "none": [{}],
    "scale": [{"scale": 1 / 255}, {"scale": 0.5, "offset": -1.0}, {"scale": [0.5, 2.0],
                                                                  "offset": [1.0, -3.0]}],
    "fixed": [{"mean": 40.0, "std": 12.5}, {"mean": [10.0, 90.0], "std": [5.0, 30.0]}],
    "zscore": [{}, {"nonzero": True}],
    "minmax": [{}, {"min": 20.0, "max": 150.0}],
    "percentile_clip": [{}, {"lower": 2.5, "upper": 97.5}, {"lower": 1.0, "upper": 99.0,
                                                            "rescale": True}],
    "percentile_zscore": [{}, {"lower": 5.0, "upper": 95.0, "nonzero": True}],
    "ct_window": [{"center": 40.0, "width": 400.0}, {"center": 100.0, "width": 60.0}],
}
PAIRS = [(method, params) for method, sets in CASES.items() for params in sets]


def test_every_registered_method_is_compared():
    assert set(CASES) == set(registry.NORMALIZATION_METHODS)
    assert exported.NORMALIZATION_METHODS is registry.NORMALIZATION_METHODS
    assert registry.NAMED_NORMALIZATIONS == (
        "none", "zscore", "minmax", "percentile_clip", "percentile_zscore")


def _images():
    rng = np.random.default_rng(7)
    gamma = rng.gamma(2.0, 40.0, size=(37, 29, 2)).astype(np.float32)
    gamma[:6] = 0.0  # a zero border, as skull-stripped MRI has, for the nonzero variants
    uniform = rng.uniform(-300.0, 500.0, size=(16, 24, 2)).astype(np.float32)
    return [gamma, uniform]


@pytest.mark.parametrize("method, params", PAIRS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(PAIRS)])
def test_numpy_and_tensorflow_give_the_same_numbers(method, params):
    spec = {"method": method, "params": params}
    for image in _images():
        expected = registry.normalize_array(image, spec)
        in_graph = registry.normalize_tensor(tf.constant(image), spec).numpy()
        assert expected.dtype == in_graph.dtype == np.float32
        np.testing.assert_allclose(in_graph, expected, rtol=1e-5, atol=1e-5, err_msg=method)
        # Training's Normalizer is the NumPy implementation; a volume of one slice is the image.
        np.testing.assert_allclose(Normalizer(method, **params)(image[None])[0], expected,
                                   rtol=1e-6, atol=1e-6)
        # Inside a traced function, as in the exported serving signature.
        traced = tf.function(lambda x: exported.normalize_image(x, spec))(tf.constant(image))
        np.testing.assert_allclose(traced.numpy(), expected, rtol=1e-5, atol=1e-5)


BAD = [
    {"method": "robust"},
    "ct_window",
    "scale",
    {"method": "zscore", "mean": 3},
    {"method": "zscore", "params": {"clip": True}},
    {"method": "ct_window", "center": 40},
    {"method": "ct_window", "center": 40, "width": 0},
    {"method": "ct_window", "center": [40, 50], "width": 400},
    {"method": "fixed", "mean": 1, "std": 0},
    {"method": "fixed", "mean": [], "std": 1},
    {"method": "scale", "scale": float("nan")},
    {"method": "scale", "scale": "2"},
    {"method": "minmax", "min": 0},
    {"method": "minmax", "min": 5, "max": 5},
    {"method": "percentile_clip", "lower": 60, "upper": 40},
    {"method": "percentile_zscore", "upper": 101},
    {"method": "zscore", "nonzero": 1},
    {"method": "percentile_clip", "rescale": "yes"},
    {"method": "zscore", "params": [1]},
    42,
    {"params": {}},
]


@pytest.mark.parametrize("spec", BAD, ids=[str(i) for i in range(len(BAD))])
def test_both_reject_the_same_bad_specs_with_the_same_message(spec):
    messages = []
    attempts = [
        lambda: registry.normalization_spec(spec),
        lambda: Normalizer.from_spec(spec),
        lambda: registry.normalize_array(np.ones((4, 4, 1), np.float32), spec),
        lambda: exported.normalization_spec(spec),
        lambda: exported.normalize_image(tf.ones((4, 4, 1)), spec),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError) as info:
            attempt()
        messages.append(str(info.value))
    assert len(set(messages)) == 1, messages


def test_keyword_form_of_the_normalizer_is_validated_alike():
    with pytest.raises(ValueError) as keyword:
        Normalizer("ct_window", center=40, width=-1)
    with pytest.raises(ValueError) as spec:
        registry.normalization_spec({"method": "ct_window", "params": {"center": 40, "width": -1}})
    assert str(keyword.value) == str(spec.value) == (
        "Normalization 'ct_window': `width` must be positive. Received: width=-1")


def test_defaults_fill_the_canonical_form_and_round_trip():
    for method, params in PAIRS:
        spec = registry.normalization_spec({"method": method, **params})
        assert set(spec["params"]) == set(registry.METHOD_PARAMS[method])
        assert registry.normalization_spec(spec) == spec
        assert Normalizer.from_spec(spec).to_dict() == spec
    assert registry.normalization_spec("percentile_zscore")["params"] == {
        "lower": 0.5, "upper": 99.5, "nonzero": False}


def test_per_channel_parameters_must_fit_the_channels():
    spec = {"method": "fixed", "mean": [0.0, 1.0, 2.0], "std": 1.0}
    message = "`mean` must be one number or one per channel (2)"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.normalize_array(np.ones((3, 3, 2), np.float32), spec)
    registry.check_channels(registry.normalization_spec(spec), 3)
