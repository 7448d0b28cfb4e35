"""The three layouts: detection, pairing, options, classes and geometry."""

import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from kerasseg.data import load_dataset
from kerasseg.data.errors import DataError
from kerasseg.data.sources import detect_format

from .conftest import DIRECTION, SPACING


def _square(value, size=8):
    mask = np.zeros((size, size), np.uint8)
    mask[2:6, 3:7] = value
    return mask


# ----------------------------------------------------------------------------- detection


def test_detect_format(sample_dir, promise12_tree):
    assert detect_format(sample_dir) == "decathlon"
    assert detect_format(promise12_tree[0]) == "promise12"


def test_detect_folder_format(isbi_dir):
    assert detect_format(isbi_dir) == "folder"


def test_unknown_layout_names_path_layouts_and_a_matching_subfolder(isbi_dir):
    with pytest.raises(DataError) as info:
        load_dataset(isbi_dir.parent)
    message = str(info.value)
    assert f"Cannot recognise the data layout of {isbi_dir.parent}" in message
    for layout in ("dataset.json", "CaseNN.mhd", "image/ or images/"):
        assert layout in message
    assert f"Did you mean {isbi_dir}" in message


# ----------------------------------------------------------------------------- folder


def test_isbi_folder(isbi_dir):
    import cv2

    ds = load_dataset(isbi_dir)
    assert (ds.format, len(ds), ds.spatial_dims, ds.modalities) == ("folder", 30, 2, ["gray"])
    assert ds.class_names == ["background", "foreground"] and ds.has_labels
    assert ds.case_ids[:11] == [str(i) for i in range(11)]  # natural order
    case = ds["7"]
    image, label, geometry, roi = case.load()
    assert image.shape == (1, 512, 512, 1) and image.dtype == np.float32
    stored = cv2.imread(case.label_path, cv2.IMREAD_UNCHANGED)
    assert set(np.unique(stored).tolist()) == {0, 255}
    np.testing.assert_array_equal(label[0], (stored == 255).astype(int))
    assert set(np.unique(label).tolist()) == {0, 1} and roi is None
    assert "binary masks (values [0, 255]" in ds.describe()


def test_rgb_folder_with_jpeg_tiff_gif_and_id_pattern(tmp_path, files):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0], colour[..., 1] = 220, 40  # flat red-orange: survives JPEG
    images = {
        "21_training.jpg": colour,
        "22_training.tif": colour[:, ::-1],
        "23_training.gif": None,
    }
    for name, image in images.items():
        if image is not None:
            files.planar(tmp_path / "images" / name, image)
    # 23: an RGB image whose three channels are equal, written as GIF with Pillow
    from PIL import Image

    Image.fromarray(np.dstack([_square(90)] * 3)).convert("RGB").save(
        tmp_path / "images" / "23_training.gif"
    )
    for k in (21, 22, 23):
        files.gif(tmp_path / "masks" / f"{k}_manual1.gif", _square(255))
    files.planar(tmp_path / "roi" / "21_mask.png", np.full((8, 8), 255, np.uint8))
    files.planar(tmp_path / "previews" / "x.png", colour)

    ds = load_dataset(tmp_path, id_pattern=r"^(?P<id>\d+)_", class_names=["background", "vessel"])
    assert ds.case_ids == ["21", "22", "23"]
    assert ds.modalities == ["red", "green", "blue"]
    assert ds.class_names == ["background", "vessel"]
    assert "ignored subfolders: previews/" in ds.describe()
    jpeg = ds["21"].load()
    assert jpeg.image.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(jpeg.image[0, 4, 4], [220, 40, 0], atol=3)  # RGB order, not BGR
    assert jpeg.roi is not None and jpeg.roi.all()
    tiff = ds["22"].load()
    np.testing.assert_array_equal(tiff.image[0], colour[:, ::-1])
    assert tiff.roi is None
    gif = ds["23"].load()
    np.testing.assert_array_equal(gif.image[0, ..., 1], _square(90))
    np.testing.assert_array_equal(gif.label[0], _square(1))


def test_folder_label_values_list_and_dict(tmp_path, files):
    stored = np.array([[0, 128], [255, 128]], np.uint8)
    files.folder(tmp_path, {"a": (stored, stored)})
    ds = load_dataset(tmp_path, label_values=[0, 128, 255])
    assert ds.class_names == ["background", "class_1", "class_2"]
    np.testing.assert_array_equal(ds[0].load().label[0], [[0, 1], [2, 1]])
    ds = load_dataset(tmp_path, label_values={0: 0, 128: 2, 255: 1}, class_names=["bg", "a", "b"])
    np.testing.assert_array_equal(ds[0].load().label[0], [[0, 2], [1, 2]])


def test_folder_infers_consecutive_classes(tmp_path, files):
    files.folder(
        tmp_path,
        {
            "a": (_square(9), _square(0)),
            "b": (_square(9), _square(1)),
            "c": (_square(9), np.eye(8, dtype=np.uint8) * 2),
        },
    )
    ds = load_dataset(tmp_path)
    assert ds.class_names == ["background", "class_1", "class_2"]
    assert "3 classes found in the mask values 0..2" in ds.describe()


def test_folder_missing_masks_skip_and_keep(tmp_path, files):
    files.folder(
        tmp_path,
        {"a": (_square(9), _square(255)), "b": (_square(9), None), "c": (_square(9), None)},
    )
    with pytest.warns(UserWarning, match=r"Skipped 2 image\(s\) .* without a mask: b.png, c.png"):
        ds = load_dataset(tmp_path, on_missing_label="skip")
    assert ds.case_ids == ["a"]
    assert "skipped 2 image(s) without a mask" in ds.describe()
    ds = load_dataset(tmp_path, on_missing_label="keep")
    assert ds.case_ids == ["a", "b", "c"] and not ds.has_labels
    assert ds.cases_with_labels().case_ids == ["a"]
    assert ds.cases_without_labels().case_ids == ["b", "c"]
    assert ds["b"].load().label is None


def test_folder_with_images_only_for_prediction(tmp_path, files):
    files.planar(tmp_path / "images" / "x.png", _square(9))
    ds = load_dataset(tmp_path, on_missing_label="keep", class_names=["background", "cell"])
    assert len(ds) == 1 and ds[0].label_path is None
    assert "(no label/, labels/, mask/ or masks/ folder was found)" in ds.describe()


def test_folder_custom_dirs(tmp_path, files):
    files.planar(tmp_path / "imgs" / "1_scan.png", _square(9))
    files.planar(tmp_path / "1st_manual" / "1_gt.png", _square(255))
    files.planar(tmp_path / "fov" / "1_fov.png", _square(255))
    ds = load_dataset(
        tmp_path, image_dir="imgs", label_dir="1st_manual", roi_dir="fov", id_pattern=r"^(\d+)_"
    )
    data = ds["1"].load()
    np.testing.assert_array_equal(data.roi[0], _square(255) > 0)


def test_folder_volumes(tmp_path, files):
    files.volume(tmp_path / "images" / "p1.nii.gz", np.ones((4, 5, 6), np.float32))
    files.volume(tmp_path / "labels" / "p1.nii.gz", np.ones((4, 5, 6), np.uint8))
    ds = load_dataset(tmp_path, class_names=["background", "organ"])
    assert ds.spatial_dims == 3
    data = ds[0].load()
    np.testing.assert_allclose(data.geometry.spacing, SPACING)


# ----------------------------------------------------------------------------- decathlon


def test_decathlon_multimodal_4d(tmp_path, files):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, 4, 5, 2)).astype(np.float32)
    label = np.zeros((3, 4, 5), np.float32)
    label[1, 1:3, 1:4] = 2.0  # float labels, as some Decathlon files have
    files.decathlon(
        tmp_path,
        {"BRATS_001": (image, label), "BRATS_002": (image * 2, label)},
        labels={"0": "background", "1": "edema", "2": "tumour"},
        modality={"0": "FLAIR", "1": "T1w"},
        test={"BRATS_900": np.zeros((3, 4, 5), np.float32)},
    )
    (tmp_path / "imagesTr" / "._BRATS_001.nii.gz").write_bytes(
        b"\x00\x05\x16\x07 macOS resource fork"
    )
    ds = load_dataset(tmp_path)
    assert ds.format == "decathlon" and ds.case_ids == ["BRATS_001", "BRATS_002"]
    assert ds.modalities == ["FLAIR", "T1w"] and ds.class_names == ["background", "edema", "tumour"]
    data = ds[0].load()
    np.testing.assert_array_equal(data.image, image)
    assert data.label.dtype == np.int32
    np.testing.assert_array_equal(data.label, label.astype(int))
    report = ds.describe()
    assert "ignored 1 macOS '._' file(s) in imagesTr/" in report
    assert "1 test case(s) without labels not included" in report
    assert load_dataset(tmp_path, subset="test").case_ids == ["BRATS_900"]
    everything = load_dataset(tmp_path, subset="all")
    assert everything.case_ids == ["BRATS_001", "BRATS_002", "BRATS_900"]
    assert everything.cases_without_labels().case_ids == ["BRATS_900"]


def test_decathlon_nnunet_style_channel_files(tmp_path, files):
    for channel in range(2):
        files.volume(
            tmp_path / "imagesTr" / f"la_003_000{channel}.nii.gz",
            np.full((2, 3, 4), channel, np.float32),
        )
    files.volume(tmp_path / "labelsTr" / "la_003.nii.gz", np.zeros((2, 3, 4), np.uint8))
    (tmp_path / "dataset.json").write_text(
        '{"channel_names": {"0": "T2", "1": "ADC"}, "labels": {"background": 0, "prostate": 1}, "file_ending": ".nii.gz"}'
    )
    ds = load_dataset(tmp_path)
    assert ds.class_names == ["background", "prostate"] and ds.modalities == ["T2", "ADC"]
    assert len(ds[0].image_paths) == 2
    image = ds[0].load().image
    assert image.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(image[..., 1], 1.0)


# ----------------------------------------------------------------------------- PROMISE12


def test_promise12_cases_and_geometry(promise12_tree):
    root, sources, origins = promise12_tree
    ds = load_dataset(root)
    assert (ds.format, ds.case_ids, ds.class_names) == (
        "promise12",
        ["Case00", "Case01", "Case02"],
        ["background", "prostate"],
    )
    assert ds.spatial_dims == 3 and ds.has_labels
    assert "1 test case(s) without a mask not included" in ds.describe()
    for case in ds:
        image, label, geometry, _ = case.load()
        source_image, source_label = sources[case.case_id]
        np.testing.assert_array_equal(
            image[..., 0], sitk.GetArrayFromImage(sitk.ReadImage(str(source_image)))
        )
        np.testing.assert_array_equal(
            label, sitk.GetArrayFromImage(sitk.ReadImage(str(source_label))) > 0
        )
        np.testing.assert_allclose(geometry.spacing, SPACING)
        np.testing.assert_allclose(geometry.origin, origins[case.case_id])
        np.testing.assert_allclose(geometry.direction, DIRECTION, atol=1e-12)
    everything = load_dataset(root, subset="all")
    assert everything.case_ids == ["Case00", "Case01", "Case02", "Case10"]
    assert everything["Case10"].label_path is None and everything["Case10"].load().label is None
    assert load_dataset(root, format="promise12", subset="test").case_ids == ["Case10"]


def test_promise12_repeated_names_carry_their_folder(tmp_path, files):
    for folder in ("TrainingData_Part1", "TestData"):
        files.volume(tmp_path / folder / "Case00.mhd", np.zeros((2, 2, 2), np.int16))
    files.volume(
        tmp_path / "TrainingData_Part1" / "Case00_segmentation.mhd", np.zeros((2, 2, 2), np.uint8)
    )
    assert load_dataset(tmp_path).case_ids == ["Case00"]
    assert load_dataset(tmp_path, subset="all").case_ids == [
        "TestData/Case00",
        "TrainingData_Part1/Case00",
    ]


def test_skip_warning_points_at_the_caller(tmp_path, files):
    files.folder(tmp_path, {"a": (_square(9), _square(255)), "b": (_square(9), None)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(tmp_path, on_missing_label="skip")
    assert caught[0].filename == __file__
