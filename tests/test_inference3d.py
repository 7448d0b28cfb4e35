"""3-D models predict whole volumes by sliding window: known answers, mirroring, refusals."""

import numpy as np
import pytest

from kerasseg.data.spec import make_preprocessing_spec, patch_shape
from kerasseg.data.types import CaseData, Geometry
from kerasseg.description import ModelInfo, Preprocessing
from kerasseg.inference import Predictor


def _pointwise_model():
    """Logits (0, x) at every voxel: P(class 1) = sigmoid(x), whatever the window."""
    import keras

    inputs = keras.Input((None, None, None, 1))
    conv = keras.layers.Conv3D(2, 1, use_bias=False)
    outputs = conv(inputs)
    model = keras.Model(inputs, outputs)
    conv.set_weights([np.array([0.0, 1.0], "float32").reshape(1, 1, 1, 1, 2)])
    return model


def _info(patch=(4, 4, 4), flip_axes=(0, 1, 2), normalization="none"):
    return ModelInfo(model="unet3d", num_classes=2, channels=1, patch_size=patch, stride=4,
                     preprocessing=Preprocessing(mode="3d", normalization={"method": normalization,
                                                                           "params": {}},
                                                 patch_size=patch),
                     flip_axes=flip_axes, output_activation="logits")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("shape", [(9, 7, 6), (3, 2, 5)], ids=["larger", "smaller-than-patch"])
@pytest.mark.parametrize("tta", [False, True])
def test_pointwise_model_gives_pointwise_probabilities(shape, tta):
    """Each voxel's blended probability is the same in every window, so the blend equals it."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=shape + (1,)).astype("float32")
    predictor = Predictor(_pointwise_model(), _info(), tta=tta)
    label, probs = predictor.predict_case(CaseData(image, None, Geometry()),
                                          return_probabilities=True)
    expected = _sigmoid(image[..., 0])
    assert probs.shape == shape + (2,)
    np.testing.assert_allclose(probs[..., 1], expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(label, (image[..., 0] > 0).astype(np.int32))


def test_mirroring_averages_the_mirrored_predictions():
    """A model that sees position (a ramp along depth added to the logits) is not mirror
    equivariant: with TTA on axis 0, the result is the mean of the plain and mirrored views."""
    import keras

    patch = (4, 4, 4)
    inputs = keras.Input(patch + (1,))
    ramp = np.arange(4, dtype="float32").reshape(1, 4, 1, 1, 1)
    logit = keras.layers.Lambda(lambda x: x * 0.0 + ramp)(inputs)
    outputs = keras.layers.Concatenate()([keras.layers.Lambda(lambda x: x * 0.0)(inputs), logit])
    model = keras.Model(inputs, outputs)
    image = np.zeros((4, 4, 4, 1), "float32")
    plain = Predictor(model, _info(patch, flip_axes=[0])).predict_volume(image)
    mirrored = Predictor(model, _info(patch, flip_axes=[0]), tta=True).predict_volume(image)
    depth = np.arange(4, dtype="float32")
    np.testing.assert_allclose(plain[:, 0, 0, 1], _sigmoid(depth), atol=1e-5)
    np.testing.assert_allclose(mirrored[:, 0, 0, 1],
                               (_sigmoid(depth) + _sigmoid(depth[::-1])) / 2, atol=1e-5)


def test_tta_needs_mirrored_training_and_volumes_need_a_3d_model():
    with pytest.raises(ValueError, match="trained without"):
        Predictor(_pointwise_model(), _info(flip_axes=[]), tta=True)
    with pytest.raises(ValueError, match=r"`volume` must be \(D, H, W, 1\)"):
        Predictor(_pointwise_model(), _info()).predict_volume(np.zeros((4, 4, 4, 2)))
    with pytest.raises(ValueError, match="shifts"):
        Predictor(_pointwise_model(), _info(), shifts=[(0, 0), (2, 2)])


def test_spec_and_description_in_mode_3d():
    spec = make_preprocessing_spec(mode="3d", patch_size=32)
    assert spec["patch_size"] == [32, 32, 32] and spec["context"] == 0
    assert patch_shape((8, 16, 16), 3) == [8, 16, 16]
    with pytest.raises(ValueError, match="`context` must be 0 when mode='3d'"):
        make_preprocessing_spec(mode="3d", context=1)
    with pytest.raises(ValueError, match="`slice_axis` must be 0 when mode='3d'"):
        make_preprocessing_spec(mode="3d", slice_axis=[0, 1, 2])
    with pytest.raises(ValueError, match=r"3 positive ints \(d, h, w\)"):
        make_preprocessing_spec(mode="3d", patch_size=(32, 32))
    info = _info(patch=(8, 16, 16))
    again = ModelInfo.from_dict(info.to_dict())
    assert again == info and again.patch_size == (8, 16, 16)
    with pytest.raises(ValueError, match=r"Preprocessing.patch_size.*\(depth, height, width\)"):
        Preprocessing(mode="3d", patch_size=(16, 16))
    with pytest.raises(ValueError, match=r"Preprocessing.patch_size.*\(height, width\)"):
        Preprocessing(mode="2d", patch_size=(4, 16, 16))
    with pytest.raises(ValueError, match="Preprocessing.context"):
        Preprocessing(mode="3d", context=1)


def test_supports_tta_asks_for_any_mirrored_axis_in_3d_and_a_row_or_column_flip_in_2d():
    from kerasseg.inference import supports_tta

    # 3-D: any mirrored axis, the depth axis alone included (2-D flips know only rows/columns).
    assert supports_tta(_info(flip_axes=[2]))
    assert supports_tta(_info(flip_axes=[0]))
    assert not supports_tta(_info(flip_axes=[]))
    assert not supports_tta(_info(flip_axes=None))
    flat = ModelInfo(model="unet", num_classes=2, channels=1, patch_size=(8, 8), stride=4,
                     preprocessing=Preprocessing(mode="2d", patch_size=(8, 8)), flip_axes=[1])
    assert supports_tta(flat)
    assert not supports_tta(flat.replace(flip_axes=[]))
    assert supports_tta(flat.replace(flip_axes=None))  # recorded before flips were: both
    model = _pointwise_model()
    with pytest.raises(ValueError, match="needs a model trained with flips"):
        Predictor(model, _info(flip_axes=[]), tta=True)
    assert Predictor(model, _info(flip_axes=[2]), tta=True).mirror_axes == (2,)
