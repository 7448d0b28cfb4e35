"""Reading and writing single files: arrays, channel order and geometry."""

import os

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

from kerasseg.data import io
from kerasseg.data.errors import DataError
from kerasseg.data.types import Geometry

from .conftest import DIRECTION, ORIGIN, SPACING


@pytest.mark.parametrize(
    "name, expected",
    [
        ("/a/hippocampus_001.nii.gz", ("hippocampus_001", ".nii.gz")),
        ("Case05_segmentation.MHD", ("Case05_segmentation", ".mhd")),
        ("21_training.tif", ("21_training", ".tif")),
        ("README", ("README", "")),
    ],
)
def test_split_extension(name, expected):
    assert io.split_extension(name) == expected


def test_read_hippocampus_volume(sample_dir):
    path = sample_dir / "imagesTr" / "hippocampus_001.nii.gz"
    image, geometry = io.read_image(path)
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert image.shape == (35, 51, 35, 1) and image.dtype == np.float32
    np.testing.assert_array_equal(image[..., 0], reference)
    assert geometry == Geometry(
        spacing=(1.0, 1.0, 1.0),
        origin=(-1.0, -1.0, 1.0),
        direction=(-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0),
    )
    assert io.read_info(path) == ((35, 51, 35, 1), geometry)


def test_read_float_label_file_as_integers(sample_dir):
    # hippocampus_243's label file is stored as float32
    path = sample_dir / "labelsTr" / "hippocampus_243.nii.gz"
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkFloat32
    label, _ = io.read_label(path)
    assert label.dtype == np.int32 and label.ndim == 3
    assert set(np.unique(label).tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(
        label, sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(int)
    )


def test_read_png_grey(isbi_dir):
    path = isbi_dir / "image" / "0.png"
    image, geometry = io.read_image(path)
    assert image.shape == (1, 512, 512, 1) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0, ..., 0], cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    assert geometry == Geometry.identity(2)


def test_rgb_files_are_read_in_rgb_order(tmp_path, files):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[..., 2] = 10  # blue
    for ext in (".png", ".bmp", ".tif"):
        image, _ = io.read_image(files.planar(tmp_path / f"x{ext}", rgb))
        np.testing.assert_array_equal(image[0], rgb.astype(np.float32))
    # RGBA: alpha is dropped
    rgba = np.dstack([rgb, np.full((4, 6), 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba[..., [2, 1, 0, 3]])
    image, _ = io.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(image[0], rgb)


def test_4d_nifti_modalities_become_channels(tmp_path):
    stacked = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (modality, z, y, x)
    volume = sitk.GetImageFromArray(stacked, isVector=False)
    volume.SetSpacing((0.5, 0.75, 2.0, 1.0))
    sitk.WriteImage(volume, str(tmp_path / "brats.nii.gz"))
    image, geometry = io.read_image(tmp_path / "brats.nii.gz")
    assert image.shape == (3, 4, 5, 2)
    np.testing.assert_array_equal(image[..., 1], stacked[1])
    assert geometry.spacing == (0.5, 0.75, 2.0)
    assert io.read_info(tmp_path / "brats.nii.gz")[0] == (3, 4, 5, 2)


def test_palette_masks(tmp_path):
    from PIL import Image

    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    colour = Image.fromarray(indices, "P")
    colour.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    colour.save(tmp_path / "voc.png")
    label, _ = io.read_label(tmp_path / "voc.png")  # colour palette: the indices
    np.testing.assert_array_equal(label[0], indices)
    grey = Image.fromarray(indices, "P")
    grey.putpalette([0, 0, 0, 255, 255, 255, 9, 9, 9] + [0] * (256 * 3 - 9))
    grey.save(tmp_path / "grey.gif")
    label, _ = io.read_label(tmp_path / "grey.gif")  # grey palette: the grey values
    np.testing.assert_array_equal(label[0], [[0, 255, 9], [9, 255, 0]])


def test_colour_mask_is_rejected(tmp_path, files):
    mask = np.zeros((3, 3, 3), np.uint8)
    mask[0, 0] = (255, 0, 0)
    path = files.planar(tmp_path / "mask.png", mask)
    with pytest.raises(DataError, match="mask.png: the mask has 3 channels with different values"):
        io.read_label(path)
    # three equal channels are one grey channel
    path = files.planar(tmp_path / "grey3.png", np.dstack([mask[..., 0]] * 3))
    np.testing.assert_array_equal(io.read_label(path)[0][0], mask[..., 0])


def _geometry():
    return Geometry(spacing=SPACING, origin=ORIGIN, direction=tuple(float(d) for d in DIRECTION))


def _assert_same_geometry(first, second):
    np.testing.assert_allclose(first.spacing, second.spacing, rtol=1e-6)
    np.testing.assert_allclose(first.origin, second.origin, atol=1e-5)
    np.testing.assert_allclose(first.direction, second.direction, atol=1e-6)


@pytest.mark.parametrize("ext", [".nii.gz", ".mhd", ".mha", ".nrrd"])
def test_write_label_round_trip_keeps_geometry(tmp_path, ext):
    label = np.zeros((3, 4, 5), np.int64)
    label[1, 1:3, 2:4] = 2
    label[2, 0, 0] = 1
    path = io.write_label(tmp_path / f"pred{ext}", label, _geometry())
    read, geometry = io.read_label(path)
    np.testing.assert_array_equal(read, label)
    _assert_same_geometry(geometry, _geometry())
    assert sitk.ReadImage(path).GetPixelID() == sitk.sitkUInt8
    leftovers = sorted(os.listdir(tmp_path))
    expected = ["pred.mhd", "pred.raw"] if ext == ".mhd" else [f"pred{ext}"]
    assert leftovers == expected  # no temporary files left


def test_write_label_png_round_trip(tmp_path):
    label = np.array([[0, 1, 2], [2, 2, 0]])
    path = io.write_label(tmp_path / "out" / "pred.png", label[None], Geometry.identity(2))
    read, geometry = io.read_label(path)
    np.testing.assert_array_equal(read[0], label)
    assert geometry == Geometry.identity(2)
    # stored values for viewers: class 1 -> 255
    path = io.write_label(tmp_path / "binary.png", (label == 2)[None], label_values=[0, 255])
    np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), (label == 2) * 255)


def test_write_label_takes_geometry_from_reference(tmp_path, sample_dir):
    reference = sample_dir / "imagesTr" / "hippocampus_001.nii.gz"
    label = np.ones((35, 51, 35), np.uint8)
    path = io.write_label(io.prediction_path(reference, tmp_path), label, reference=reference)
    assert path == str(tmp_path / "hippocampus_001.nii.gz")
    _assert_same_geometry(io.read_label(path)[1], io.read_image(reference)[1])
    with pytest.raises(ValueError, match=r"spatial shape \(35, 51, 36\).*\(35, 51, 35\)"):
        io.write_label(tmp_path / "bad.nii.gz", np.ones((35, 51, 36)), reference=reference)


def test_write_label_rejects_lossy_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="lossless format"):
        io.write_label(tmp_path / "pred.jpg", np.zeros((1, 2, 2), int))
    with pytest.raises(ValueError, match="whole class indices"):
        io.write_label(tmp_path / "pred.png", np.full((1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        io.write_label(tmp_path / "pred.png", np.full((1, 2, 2), -1))
    with pytest.raises(ValueError, match=r"no stored value for classes \[2\]"):
        io.write_label(tmp_path / "pred.png", np.full((1, 2, 2), 2), label_values=[0, 255])
    assert os.listdir(tmp_path) == []


def test_write_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    target = io.write_label(tmp_path / "pred.mhd", np.ones((2, 2, 2)), _geometry())
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}

    def broken(image, path, *args):
        with open(path, "wb") as stream:
            stream.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(io.sitk, "WriteImage", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        io.write_label(target, np.zeros((2, 2, 2)), _geometry())
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before


def test_write_image_round_trips(tmp_path):
    volume = np.random.default_rng(0).normal(size=(3, 4, 5, 2)).astype(np.float32)
    path = io.write_image(tmp_path / "multi.nii.gz", volume, _geometry())
    read, geometry = io.read_image(path)
    np.testing.assert_array_equal(read, volume)
    _assert_same_geometry(geometry, _geometry())
    assert sitk.ReadImage(path).GetDimension() == 4  # Decathlon-style 4-D file
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(1, 2, 3, 3) * 10
    read, _ = io.read_image(io.write_image(tmp_path / "rgb.png", rgb))
    np.testing.assert_array_equal(read, rgb)
    with pytest.raises(ValueError, match="integers 0..255"):
        io.write_image(tmp_path / "f.png", rgb / 7.0)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("data/TestData/Case05.mhd", "Case05_segmentation.mhd"),
        ("imagesTs/hippocampus_001.nii.gz", "hippocampus_001.nii.gz"),
        ("photos/img.jpg", "img.png"),
        ("scans/x.nrrd", "x.nrrd"),
    ],
)
def test_prediction_path(tmp_path, source, expected):
    assert io.prediction_path(source, tmp_path) == str(tmp_path / expected)


def test_prediction_path_refuses_to_overwrite_its_input(tmp_path):
    source = tmp_path / "hippocampus_001.nii.gz"
    with pytest.raises(ValueError, match="would overwrite"):
        io.prediction_path(source, tmp_path)
    assert io.prediction_path(source, tmp_path, suffix="_pred") == str(
        tmp_path / "hippocampus_001_pred.nii.gz"
    )


def test_geometry_difference():
    base = _geometry()
    assert io.geometry_difference(base, base) is None
    nudged = Geometry(SPACING, (ORIGIN[0] + 1e-5,) + ORIGIN[1:], base.direction)
    assert io.geometry_difference(base, nudged) is None
    shifted = Geometry(SPACING, (ORIGIN[0] + 1.0,) + ORIGIN[1:], base.direction)
    assert (
        io.geometry_difference(base, shifted) == "origin (-120.5, 33.25, 7) vs (-119.5, 33.25, 7)"
    )
    thicker = Geometry((0.625, 0.7, 4.0), ORIGIN, base.direction)
    assert io.geometry_difference(base, thicker).startswith(
        "spacing (0.625, 0.7, 3.6) vs (0.625, 0.7, 4)"
    )


def test_non_finite_values_survive_nifti_reading(tmp_path, files):
    # SimpleITK turns NaN/inf of a NIfTI file into 0; the reader must still see them.
    image = np.zeros((2, 3, 4), np.float32)
    image[0, 1, 2], image[1, 2, 3] = np.nan, -np.inf
    for ext in (".nii.gz", ".nii", ".mha"):
        path = files.volume(tmp_path / f"image{ext}", image)
        with pytest.raises(
            DataError, match=f"image{ext}: the image holds 1 NaN and 1 infinite intensity value"
        ):
            io.read_image(path)
    label = np.zeros((2, 3, 4), np.float32)
    label[1, 1, 1] = np.nan
    path = files.volume(tmp_path / "label.nii.gz", label)
    with pytest.raises(DataError, match=r"label.nii.gz: the mask holds 1 NaN or infinite values"):
        io.read_label(path)
