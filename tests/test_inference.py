"""Inference: tiling with overlap blending, flip TTA, padding to the stride, 3-D restore."""

import keras
import numpy as np
import pytest

from kerasseg.data.spec import make_preprocessing_spec
from kerasseg.data.types import CaseData, Geometry
from kerasseg.description import ModelInfo
from kerasseg.inference import Predictor, _tile_starts


def _pixelwise_model(channels=1, classes=2):
    """A 1x1-convolution model: each pixel's output depends on that pixel only."""
    inputs = keras.Input((None, None, channels))
    layer = keras.layers.Conv2D(classes, 1)
    model = keras.Model(inputs, layer(inputs))
    weights = np.zeros((1, 1, channels, classes), "float32")
    weights[0, 0, 0, 1] = 4.0  # class 1 logit grows with intensity
    layer.set_weights([weights, np.array([0.0, -2.0], "float32")])
    return model


def _info(patch, stride=4, spec=None):
    spec = spec or make_preprocessing_spec(normalization="none")
    return ModelInfo(model="unet", num_classes=2, channels=1, preprocessing=spec,
                     patch_size=patch, stride=stride)


def test_tile_starts_cover_the_image():
    assert _tile_starts(100, 64, 0.5) == [0, 32, 36]
    assert _tile_starts(64, 64, 0.5) == [0]
    starts = _tile_starts(513, 128, 0.25)
    assert starts[0] == 0 and starts[-1] == 513 - 128
    assert all(b - a <= 96 for a, b in zip(starts, starts[1:]))


def test_tiled_prediction_equals_whole_image_for_pixelwise_model():
    model = _pixelwise_model()
    image = np.random.default_rng(0).uniform(0, 1, size=(2, 150, 90, 1)).astype("float32")
    tiled = Predictor(model, _info((64, 64)), overlap=0.5).predict_slices(image)
    whole = Predictor(model, _info((256, 256))).predict_slices(image)
    assert tiled.shape == whole.shape == (2, 150, 90, 2)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    np.testing.assert_allclose(tiled.sum(-1), 1.0, atol=1e-5)
    # Probability of class 1 is sigmoid(4x - 2) pixel by pixel.
    expected = 1.0 / (1.0 + np.exp(-(4.0 * image[..., 0] - 2.0)))
    np.testing.assert_allclose(tiled[..., 1], expected, atol=1e-5)


def test_padding_to_stride_does_not_shift_the_image():
    model = _pixelwise_model()
    image = np.zeros((1, 13, 21, 1), "float32")
    image[0, 6, 10, 0] = 1.0
    scores = Predictor(model, _info((32, 32), stride=16)).predict_slices(image)
    assert scores.shape == (1, 13, 21, 2)
    assert np.unravel_index(np.argmax(scores[0, ..., 1]), (13, 21)) == (6, 10)


def test_flip_tta_of_flip_equivariant_model_is_unchanged():
    model = _pixelwise_model()
    image = np.random.default_rng(1).uniform(size=(1, 32, 32, 1)).astype("float32")
    plain = Predictor(model, _info((32, 32))).predict_slices(image)
    tta = Predictor(model, _info((32, 32)), tta=True).predict_slices(image)
    np.testing.assert_allclose(tta, plain, atol=1e-6)


def test_tta_averages_flipped_predictions():
    # A model that looks at its left neighbour is not flip-equivariant: TTA must average.
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(2, (1, 3), padding="same", use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((1, 3, 1, 2), "float32")
    kernel[0, 0, 0, 1] = 5.0  # class 1 fires right of a bright pixel
    conv.set_weights([kernel])
    image = np.zeros((1, 8, 8, 1), "float32")
    image[0, 4, 4, 0] = 1.0
    tta = Predictor(model, _info((8, 8)), tta=True).predict_slices(image)
    # The horizontal flips move the response to the left neighbour: both sides get half.
    assert tta[0, 4, 5, 1] == pytest.approx(tta[0, 4, 3, 1], abs=1e-6)
    assert tta[0, 4, 5, 1] > 0.5


def test_tta_uses_only_the_flips_the_model_was_trained_with():
    from kerasseg.inference import tta_flips

    assert tta_flips(None) == ((), (1,), (2,), (1, 2))
    assert tta_flips([0, 1]) == ((), (1,), (2,), (1, 2))
    assert tta_flips([1]) == ((), (2,))
    assert tta_flips([0]) == ((), (1,))
    model = _neighbour_model()
    image = np.random.default_rng(4).normal(size=(1, 8, 8, 3)).astype("float32")
    plain = Predictor(model, _info((8, 8))).predict_slices(image)
    columns = Predictor(model, _info((8, 8))).predict_slices(image[:, :, ::-1])[:, :, ::-1]
    info = _info((8, 8)).replace(flip_axes=[1])
    tta = Predictor(model, info, tta=True).predict_slices(image)
    np.testing.assert_allclose(tta, (plain + columns) / 2, atol=1e-6)
    both = Predictor(model, _info((8, 8)), tta=True).predict_slices(image)
    assert np.abs(both - tta).max() > 1e-3  # the row flips would have changed it


def test_tta_of_a_model_trained_without_flips_is_a_clear_error():
    info = _info((8, 8)).replace(flip_axes=[])
    with pytest.raises(ValueError, match=r"trained without \(its info has flip_axes=\(\)\)"):
        Predictor(_pixelwise_model(), info, tta=True)
    Predictor(_pixelwise_model(), info)  # plain prediction is fine


def test_predict_case_returns_the_original_grid():
    model = _pixelwise_model()
    spec = make_preprocessing_spec(normalization="none", target_spacing=(1.0, 1.0, None))
    image = np.zeros((3, 10, 12, 1), "float32")
    image[1, 2:5, 3:9] = 1.0
    data = CaseData(image, None, Geometry(spacing=(0.5, 0.5, 2.0)))
    label = Predictor(model, _info((16, 16), spec=spec)).predict_case(data)
    assert label.shape == (3, 10, 12)
    assert label[1, 3, 5] == 1 and label[0, 3, 5] == 0 and label[1, 8, 1] == 0


def test_missing_info_is_a_clear_error():
    with pytest.raises(ValueError, match="`info` must be the model's ModelInfo"):
        Predictor(_pixelwise_model())
    # A dict is validated as a ModelInfo: the missing field is named.
    with pytest.raises(ValueError, match=r"lacks the required field\(s\) \['stride'\]"):
        Predictor(_pixelwise_model(), {"model": "unet", "num_classes": 2, "channels": 1,
                                       "preprocessing": {"mode": "2d"}, "patch_size": [8, 8]})
    with pytest.raises(ValueError, match="`overlap` must be in"):
        Predictor(_pixelwise_model(), _info((8, 8)), overlap=1.0)


def _neighbour_model():
    """A 2.5-D model (context 1) whose class-1 logit weighs the three slices differently, so
    its prediction depends on the axis the volume is sliced across."""
    inputs = keras.Input((None, None, 3))
    layer = keras.layers.Conv2D(2, 3, padding="same")
    model = keras.Model(inputs, layer(inputs))
    weights = np.random.default_rng(3).normal(size=(3, 3, 3, 2)).astype("float32")
    layer.set_weights([weights, np.zeros(2, "float32")])
    return model


def test_multi_view_prediction_averages_the_views_probabilities():
    model = _neighbour_model()
    image = np.random.default_rng(4).uniform(0, 1, size=(6, 9, 7, 1)).astype("float32")
    data = CaseData(image, None, Geometry())

    def predict(axes):
        spec = make_preprocessing_spec(mode="2.5d", context=1, normalization="none",
                                       slice_axis=axes)
        return Predictor(model, _info((16, 16), spec=spec)).predict_case(
            data, return_probabilities=True)

    views = [predict(axis)[1] for axis in (0, 1, 2)]
    label, scores = predict([0, 1, 2])
    assert scores.shape == (6, 9, 7, 2)
    np.testing.assert_allclose(scores, (views[0] + views[1] + views[2]) / 3, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(label, np.argmax(scores, -1))
    # The views disagree somewhere, so the average is not any single view.
    assert not np.allclose(views[0], views[1], atol=1e-3)
    assert not np.allclose(scores, views[0], atol=1e-3)


def _strided_model():
    """Predicts at half resolution: 2x2 average pooling, a 1x1 classifier, nearest upsampling.
    Its class-1 logit is 8 * (mean of the pixel's 2x2 block) - 1."""
    inputs = keras.Input((None, None, 1))
    pooled = keras.layers.AveragePooling2D(2)(inputs)
    layer = keras.layers.Conv2D(2, 1)
    outputs = keras.layers.UpSampling2D(2)(layer(pooled))
    layer.set_weights([np.array([[[[0.0, 8.0]]]], "float32"), np.array([0.0, -1.0], "float32")])
    return keras.Model(inputs, outputs)


def _class1(value):
    return 1.0 / (1.0 + np.exp(-(8.0 * value - 1.0)))


def test_shift_grid_lists_the_offsets():
    from kerasseg.inference import shift_grid

    assert shift_grid(2) == [(0, 0), (0, 2), (2, 0), (2, 2)]
    assert shift_grid(0) == [(0, 0)]
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="`step` must be a non-negative integer"):
            shift_grid(bad)


def test_shift_averaging_of_a_translation_equivariant_model_is_unchanged():
    model = _pixelwise_model()
    image = np.random.default_rng(5).uniform(0, 1, size=(2, 13, 21, 1)).astype("float32")
    plain = Predictor(model, _info((32, 32))).predict_slices(image)
    shifted = Predictor(model, _info((32, 32)), shifts=[(0, 0), (0, 3), (5, -1)])
    np.testing.assert_allclose(shifted.predict_slices(image), plain, atol=1e-6)
    # Tiled prediction (slices larger than the patch) shifts every tile the same way.
    np.testing.assert_allclose(
        Predictor(model, _info((8, 8)), shifts=[(0, 0), (2, 2)]).predict_slices(image), plain,
        atol=1e-5)


def test_shift_averaging_refines_a_model_that_predicts_at_half_resolution():
    model = _strided_model()
    image = np.zeros((1, 8, 8, 1), "float32")
    image[0, 4, 5, 0] = 1.0
    info = _info((8, 8), stride=2)
    plain = Predictor(model, info).predict_slices(image)[0, ..., 1]
    # Without shifts the bright pixel's 2x2 block (rows 4-5, columns 4-5) lights up.
    assert plain[5, 4] == pytest.approx(_class1(0.25), abs=1e-6)
    assert plain[3, 6] == pytest.approx(_class1(0.0), abs=1e-6)
    # Moved by (1, 1), the pixel falls in the block of rows 4-5, columns 6-7; moved back,
    # that block covers rows 3-4, columns 5-6. The average gives full weight only to the
    # pixel both blocks share and half weight to those in one block.
    both = Predictor(model, info, shifts=[(0, 0), (1, 1)]).predict_slices(image)[0, ..., 1]
    half = (_class1(0.25) + _class1(0.0)) / 2
    assert both[4, 5] == pytest.approx(_class1(0.25), abs=1e-6)
    assert both[5, 4] == pytest.approx(half, abs=1e-6)
    assert both[3, 6] == pytest.approx(half, abs=1e-6)
    assert both[0, 0] == pytest.approx(_class1(0.0), abs=1e-6)
    assert both[6, 6] == pytest.approx(_class1(0.0), abs=1e-6)
    # The model info's offsets are the default; an explicit list overrides them.
    stored = info.replace(shift_offsets=[[0, 0], [1, 1]])
    np.testing.assert_allclose(Predictor(model, stored).predict_slices(image)[0, ..., 1], both)
    np.testing.assert_allclose(
        Predictor(model, stored, shifts=[(0, 0)]).predict_slices(image)[0, ..., 1], plain)


def test_shift_averaging_combines_with_flip_tta():
    model = _strided_model()
    image = np.random.default_rng(6).uniform(0, 1, size=(1, 8, 10, 1)).astype("float32")
    info = _info((8, 8), stride=2).replace(flip_axes=[1])

    def predict(x, shifts):
        return Predictor(model, info, shifts=shifts).predict_slices(x)

    shifts = [(0, 0), (1, 1)]
    expected = (predict(image, shifts) + predict(image[:, :, ::-1], shifts)[:, :, ::-1]) / 2
    tta = Predictor(model, info, tta=True, shifts=shifts).predict_slices(image)
    np.testing.assert_allclose(tta, expected, atol=1e-6)


@pytest.mark.parametrize("bad", [[], [(1,)], [(0, 0.5)], "2", [(True, 0)]])
def test_bad_shift_offsets_are_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"`shifts` \(or the model info's `shift_offsets`\)"):
        Predictor(_pixelwise_model(), _info((8, 8)), shifts=bad)
    with pytest.raises(ValueError, match="integer pixel offsets"):
        Predictor(_pixelwise_model(), {**_info((8, 8)).to_dict(), "shift_offsets": bad})


def _canvas_mean_model():
    """Class-1 logit = pixel minus the image mean (zero padding included), as instance norm."""
    inputs = keras.Input((None, None, 1))
    centred = inputs - keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
    return keras.Model(inputs, keras.ops.concatenate([keras.ops.zeros_like(centred),
                                                      4.0 * centred], axis=-1))


@pytest.mark.parametrize("normalization, canvas", [("instance", 32), ("group", 32),
                                                   ("batch", 16), (None, 16)])
def test_spatial_statistics_models_predict_on_the_training_canvas(normalization, canvas):
    # A 10x12 slice of ones: padded to the stride (16x16) its mean is 120/256, on the
    # 32x32 training canvas 120/1024. Only instance and group normalization average over
    # the image, so only they get the training canvas.
    info = _info((32, 32), stride=8)
    if normalization:
        info = info.replace(model_options={"normalization": normalization})
    scores = Predictor(_canvas_mean_model(), info).predict_slices(np.ones((1, 10, 12, 1),
                                                                           "float32"))
    expected = 1.0 / (1.0 + np.exp(-4.0 * (1.0 - 120.0 / canvas**2)))
    np.testing.assert_allclose(scores[..., 1], expected, rtol=1e-5)
