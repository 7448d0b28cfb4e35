"""The ``serving_volume`` signature: raw volumes in, the Predictor's probabilities and labels out.

Every export of a model trained on volumes gets it. Its answers are compared with
``Predictor(...).predict_case`` (what ``kerasseg predict`` runs) on held-out cases of the
bundled hippocampus sample with the shipped zoo entries, and on synthetic volumes with
tiny models that reach every branch: resampling with a kept axis, tiling of slices larger
than the patch, the instance-normalization canvas, shift averaging, several image
channels, and the 3-D sliding window with axes longer and shorter than the window.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg import zoo
from kerasseg.data import load_dataset
from kerasseg.data.normalization import NORMALIZATION_METHODS, normalize_array
from kerasseg.data.preprocess import _resampled_shape, resample_to_shape
from kerasseg.data.types import CaseData, Geometry
from kerasseg.deploy import export_trained
from kerasseg.description import ModelInfo, Preprocessing
from kerasseg.export import read_export_metadata
from kerasseg.export.volume import normalize_volume, resample_volume, target_shape
from kerasseg.inference import Predictor
from kerasseg.sample import hippocampus_path
from tests.export.helpers import build_small

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def hippocampus():
    return load_dataset(hippocampus_path())


def _held_out(dataset, name, count):
    """The first ``count`` cases of the entry's test split that the sample holds."""
    ids = [case_id for case_id in zoo.entry(name)["split"]["test"] if case_id in dataset.case_ids]
    assert len(ids) >= count
    return [dataset[dataset.case_ids.index(case_id)] for case_id in ids[:count]]


def _export(predictor, tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("volume") / name
    version_dir = export_trained(predictor, saved_model_dir=folder)["saved_model"]
    return version_dir, tf.saved_model.load(version_dir).signatures["serving_volume"]


def _serve(signature, image, geometry, squeeze=True):
    """Call ``serving_volume`` with a (D, H, W, C) image, as (D, H, W) when it has one channel."""
    inputs = {"volume": tf.constant(image[..., 0] if squeeze and image.shape[-1] == 1 else image)}
    if "spacing" in signature.structured_input_signature[1]:
        inputs["spacing"] = tf.constant(geometry.spacing, tf.float32)
    out = signature(**inputs)
    return out["label"].numpy(), out["probabilities"].numpy()


def _compare(predictor, signature, case, squeeze=True):
    """The largest probability difference, after checking shapes, dtypes and labels."""
    data = case.load() if hasattr(case, "load") else case
    label, probabilities = predictor.predict_case(case, return_probabilities=True)
    served_label, served = _serve(signature, np.asarray(data[0], np.float32), data[2], squeeze)
    assert served.shape == probabilities.shape and served.dtype == np.float32
    assert served_label.dtype == np.int32
    difference = float(np.abs(served - probabilities).max())
    assert difference <= TOLERANCE
    np.testing.assert_array_equal(served_label, label)
    return difference


# ------------------------------------------------------------------ shipped zoo entries


@pytest.mark.parametrize("name", ["hippocampus-unet", "hippocampus-fcn8s"])
def test_zoo_entry_volume_signature_matches_predict_case(name, hippocampus, tmp_path_factory):
    """Two held-out cases: the same probabilities (within 1e-4) and the same labels as the
    Predictor. The U-Net keeps the data's 1 mm grid; FCN-8s resamples to 0.3333 mm and back."""
    predictor = Predictor(name)
    version_dir, signature = _export(predictor, tmp_path_factory, name)
    spec = predictor.info.preprocessing
    inputs = signature.structured_input_signature[1]
    assert sorted(inputs) == (["spacing", "volume"] if spec.target_spacing else ["volume"])
    differences = [_compare(predictor, signature, case) for case in
                   _held_out(hippocampus, name, 2)]
    print(f"{name}: max |probability difference| per case {differences}")
    metadata = read_export_metadata(version_dir)
    # The slice signature stays as it was; the volume one is listed beside it.
    assert sorted(metadata["signatures"]) == ["serving_default", "serving_volume"]
    assert metadata["signatures"]["serving_default"]["inputs"]["image"]["shape"] == [-1, -1, -1, 5]
    assert metadata["signatures"]["serving_volume"] == {
        "inputs": dict({"volume": {"dtype": "float32", "shape": [-1, -1, -1, 1]}},
                       **({"spacing": {"dtype": "float32", "shape": [3]}}
                          if spec.target_spacing else {})),
        "outputs": {"probabilities": {"dtype": "float32", "shape": [-1, -1, -1, 3]},
                    "label": {"dtype": "int32", "shape": [-1, -1, -1]}},
    }
    assert metadata["volume"]["patch_size"] == list(predictor.info.patch_size)


def test_deeplab_volume_signature_averages_its_shifts(hippocampus, tmp_path_factory):
    """DeepLabv3+ (four shifts, resampling to 0.5 mm, bilinear upsampling by fixed factors)
    on one held-out case, cropped small to keep the test short."""
    name = "hippocampus-deeplab"
    predictor = Predictor(name)
    assert len(predictor.shifts) == 4
    version_dir, signature = _export(predictor, tmp_path_factory, name)
    image, _, geometry = _held_out(hippocampus, name, 1)[0].load()[:3]
    crop = CaseData(np.ascontiguousarray(image[10:30, 8:40, 6:30]), None, geometry)
    difference = _compare(predictor, signature, crop)
    print(f"{name}: max |probability difference| {difference}")
    # The slice signature still runs at the training patch (the model's fixed-factor
    # resizes are traced at a known size there).
    assert read_export_metadata(version_dir)["input_size"] == [120, 120]


def test_card_says_the_volume_signature_does_the_recipe(tmp_path):
    predictor = Predictor("hippocampus-unet")
    export_trained(predictor, saved_model_dir=tmp_path / "hippo")
    card = (tmp_path / "hippo" / "MODEL_CARD.md").read_text()
    section = card[card.index("## Volumes"):card.index("## Serve")]
    assert "`serving_volume` takes a whole volume of raw intensities and does every step " \
           "below inside the graph; `serving_default` takes prepared slices" in section
    assert "1. Normalize the whole volume" in section  # the manual steps stay
    assert "### Whole volumes: `serving_volume`" in section
    assert '"signature_name": "serving_volume", "inputs": inputs' in section
    assert "| `serving_volume` | output | `label` | int32 | `[-1, -1, -1]` |" in card


# --------------------------------------------------------------- tiny synthetic models


def _tiny_25d():
    """A 2.5-D U-Net with instance normalization (so slices sit on the patch canvas), two
    image channels with one neighbour each (6 channels), three views, shifts, and a
    target spacing that keeps the y axis."""
    import keras

    keras.utils.set_random_seed(1)
    model = kerasseg.build("unet", input_shape=(None, None, 6), num_classes=3, depth=2,
                           base_filters=4, normalization="instance")
    info = ModelInfo(
        model="unet", num_classes=3, channels=6, patch_size=(16, 16), stride=4,
        preprocessing=Preprocessing(
            mode="2.5d", context=1, slice_axis=[0, 1, 2], patch_size=(16, 16),
            normalization={"method": "percentile_zscore", "params": {}},
            target_spacing=(0.9, None, 1.1)),
        output_activation="logits", spatial_dims=3, shift_offsets=((0, 0), (1, 3)),
        model_options={"normalization": "instance"})
    return model, info


def _tiny_3d():
    import keras

    keras.utils.set_random_seed(2)
    model = kerasseg.build("unet3d", input_shape=(None, None, None, 1), num_classes=2, depth=2,
                           base_filters=4)
    info = ModelInfo(
        model="unet3d", num_classes=2, channels=1, patch_size=(8, 8, 8), stride=4,
        preprocessing=Preprocessing(mode="3d", patch_size=(8, 8, 8),
                                    normalization={"method": "zscore", "params": {}},
                                    target_spacing=(1.2, 1.2, 1.2)),
        flip_axes=(0, 1, 2), output_activation="logits")
    return model, info


def _volume(shape, seed, channels=1):
    """Smooth random intensities (blocks of 3 voxels) around 100, like a scanner's."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=tuple(-(-n // 3) for n in shape) + (channels,)) * 30 + 100
    for axis in range(3):
        coarse = np.repeat(coarse, 3, axis=axis)
    return np.ascontiguousarray(coarse[:shape[0], :shape[1], :shape[2]]).astype("float32")


def test_tiny_25d_model_tiles_pads_shifts_and_resamples(tmp_path_factory):
    """Resampled to (15, 27, 16): slices across axes 0 and 2 are larger than the 16 x 16
    patch (tiled with Gaussian blending), those across axis 1 fit (padded to the canvas)."""
    model, info = _tiny_25d()
    predictor = Predictor(model, info)
    assert predictor.canvas == (16, 16)
    version_dir, signature = _export(predictor, tmp_path_factory, "tiny25d")
    geometry = Geometry(spacing=(1.0, 0.8, 1.5))
    case = CaseData(_volume((11, 27, 14), seed=0, channels=2), None, geometry)
    difference = _compare(predictor, signature, case)
    print(f"tiny 2.5-D: max |probability difference| {difference}")
    meta = read_export_metadata(version_dir)["signatures"]["serving_volume"]
    assert meta["inputs"]["volume"]["shape"] == [-1, -1, -1, 2]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(D, H, W, 2\)"):
        signature(volume=tf.zeros([4, 5, 6]), spacing=tf.ones([3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="positive voxel sizes"):
        signature(volume=tf.zeros([4, 5, 6, 2]), spacing=tf.constant([1.0, 0.0, 1.0]))


def test_tiny_3d_model_sliding_window_matches_predict_case(tmp_path_factory):
    """A 3-D U-Net: Gaussian-blended 8^3 windows over a volume larger than the window on
    every axis (13 x 19 x 21 voxels, resampled to 16 x 13 x 18), and over one whose height
    is shorter than it (padded, centred); (D, H, W) and (D, H, W, 1) inputs."""
    model, info = _tiny_3d()
    predictor = Predictor(model, info)
    version_dir, signature = _export(predictor, tmp_path_factory, "tiny3d")
    geometry = Geometry(spacing=(1.0, 0.8, 1.5))
    differences = [
        _compare(predictor, signature, CaseData(_volume((13, 19, 21), seed=3), None, geometry)),
        _compare(predictor, signature, CaseData(_volume((13, 6, 21), seed=4), None, geometry),
                 squeeze=False),
    ]
    print(f"tiny 3-D: max |probability difference| {differences}")
    metadata = read_export_metadata(version_dir)
    assert metadata["input_size"] == [8, 8, 8]
    assert sorted(metadata["signatures"]) == ["serving_default", "serving_volume"]
    # The window signature takes normalized windows of the patch size.
    window = tf.saved_model.load(version_dir).signatures["serving_default"]
    assert window(image=tf.zeros([2, 8, 8, 8, 1]))["mask"].shape == (2, 8, 8, 8)
    card = (Path(version_dir).parent / "MODEL_CARD.md").read_text()
    assert "Cut windows of 8 x 8 x 8 voxels (D x H x W) overlapping by half" in card


# ------------------------------------------------------------------ the graph's pieces


@pytest.mark.parametrize("method", NORMALIZATION_METHODS)
def test_volume_normalization_is_the_numpy_one(method):
    params = {"scale": {"scale": [0.01, 0.02]}, "fixed": {"mean": 100.0, "std": 30.0},
              "ct_window": {"center": 100.0, "width": 80.0},
              "minmax": {}}.get(method, {})
    spec = {"method": method, "params": params}
    image = _volume((7, 9, 5), seed=5, channels=2)
    image[:2] = 0.0  # zeros, for the nonzero variants
    expected = normalize_array(image, spec)
    np.testing.assert_allclose(normalize_volume(tf.constant(image), spec).numpy(), expected,
                               rtol=0, atol=2e-6)


@pytest.mark.parametrize("shape, new", [((7, 9, 5), (14, 18, 10)), ((7, 9, 5), (3, 20, 5)),
                                        ((1, 9, 5), (3, 4, 11)), ((6, 6, 6), (6, 6, 6))])
def test_resampling_is_scipy_zoom_on_aligned_grids(shape, new):
    image = _volume(shape, seed=6, channels=2) / 100.0
    out = resample_volume(tf.constant(image), tf.constant(new, tf.int32)).numpy()
    np.testing.assert_allclose(out, resample_to_shape(image, new, order=1), rtol=0, atol=1e-6)


def test_target_shape_rounds_as_the_preprocessing():
    for shape, spacing, target in [((13, 19, 21), (1.0, 0.8, 1.5), (1.2, 1.2, 1.2)),
                                   ((10, 35, 7), (0.5, 1.0, 3.0), (2.0, None, 2.0)),
                                   ((40, 48, 36), (1.0, 1.0, 1.0), (0.3333,) * 3),
                                   ((5, 5, 5), (1.0, 1.0, 1.0), (4.0, 4.0, 4.0))]:
        zyx = tuple(reversed(target))
        expected = _resampled_shape(shape, tuple(reversed(spacing)), zyx)
        got = target_shape(tf.constant(shape), tf.constant(spacing, tf.float32), target)
        assert tuple(got.numpy()) == expected, (shape, spacing, target)


def test_exports_whose_volume_signature_cannot_match_are_refused(tmp_path):
    model, _ = _tiny_3d()
    with pytest.raises(ValueError, match="3-D model is exported with `volume`"):
        kerasseg.export.saved_model(model, tmp_path / "m")
    with pytest.raises(ValueError, match="does not fit a 3-D model"):
        kerasseg.export.saved_model(model, tmp_path / "m", input_size=(8, 8, 8), volume={
            "mode": "2.5d", "context": 0, "slice_axis": 0})
    assert not (tmp_path / "m").exists()
    with pytest.raises(ValueError, match="windows of \\(8, 8, 8\\) voxels only"):
        kerasseg.export.saved_model(
            kerasseg.build("unet3d", input_shape=(8, 8, 8, 1), depth=2, base_filters=4),
            tmp_path / "m", volume={"mode": "3d", "context": 0, "slice_axis": 0,
                                    "patch_size": [16, 16, 16]}, input_size=(8, 8, 8))
    fixed = build_small("unet", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="cannot average shifted predictions"):
        kerasseg.export.saved_model(fixed, tmp_path / "m", volume={
            "mode": "2.5d", "context": 1, "slice_axis": 0, "shift_offsets": [[0, 0], [2, 2]]})
    assert not (tmp_path / "m").exists()
