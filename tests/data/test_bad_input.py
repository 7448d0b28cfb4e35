"""Bad input: each problem gives a DataError (or the stated error) naming the file and the problem."""

import json
import shutil

import numpy as np
import pytest

from kerasseg.data import DataError, load_dataset, validate

from .conftest import DIRECTION, ORIGIN, SPACING


def _square(value, size=8):
    mask = np.zeros((size, size), np.uint8)
    mask[2:6, 3:7] = value
    return mask


@pytest.fixture
def two_cases(tmp_path, files):
    """A good folder data set with cases a and b (binary 0/255 masks)."""
    files.folder(tmp_path, {"a": (_square(50), _square(255)), "b": (_square(60), _square(255))})
    return tmp_path


def _load_error(dataset, case_id):
    with pytest.raises(DataError) as info:
        dataset[case_id].load()
    return str(info.value)


# ----------------------------------------------------------------------------- at load_dataset time


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"Data set path not found: {tmp_path / 'nowhere'}"):
        load_dataset(tmp_path / "nowhere")


def test_bad_format_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError) as info:
        load_dataset(tmp_path, format="nifti")
    assert str(info.value) == (
        "`format` must be one of ['auto', 'folder', 'decathlon', 'promise12']. Received: format='nifti'"
    )


def test_unrecognised_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(
        DataError, match=f"Cannot recognise the data layout of {tmp_path}.*holds: notes.txt"
    ):
        load_dataset(tmp_path)


def test_empty_image_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'images'}: no image files"):
        load_dataset(tmp_path)


def test_empty_decathlon(tmp_path, files):
    files.decathlon(tmp_path, {})
    with pytest.raises(DataError, match=f"{tmp_path}: no case found in the decathlon layout"):
        load_dataset(tmp_path)


def test_empty_dataset_in_validate(sample):
    with pytest.raises(DataError, match="the data set is empty"):
        validate(sample[:0])


def test_image_without_mask(two_cases, files):
    files.planar(two_cases / "images" / "c.png", _square(9))
    with pytest.raises(DataError) as info:
        load_dataset(two_cases)
    message = str(info.value)
    assert (
        f"1 image(s) in {two_cases / 'images'} have no mask in {two_cases / 'masks'}: c.png"
        in message
    )
    assert "on_missing_label='skip'" in message


def test_decathlon_missing_label_file(tmp_path, files):
    files.decathlon(
        tmp_path,
        {"p1": (np.zeros((2, 3, 4)), np.zeros((2, 3, 4))), "p2": (np.zeros((2, 3, 4)), None)},
    )
    with pytest.raises(
        DataError, match=r"1 training case\(s\) have no label file in labelsTr/: p2"
    ):
        load_dataset(tmp_path)
    with pytest.warns(UserWarning, match="without a label file: p2"):
        assert load_dataset(tmp_path, on_missing_label="skip").case_ids == ["p1"]


def test_decathlon_invalid_json(tmp_path):
    (tmp_path / "dataset.json").write_text('{"labels": {"0": "background",}')
    with pytest.raises(DataError, match=f"{tmp_path / 'dataset.json'}: not valid JSON"):
        load_dataset(tmp_path)


def test_decathlon_json_without_labels(tmp_path, files):
    files.decathlon(tmp_path, {"p1": (np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))})
    meta = json.loads((tmp_path / "dataset.json").read_text())
    del meta["labels"]
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="dataset.json: no 'labels' entry"):
        load_dataset(tmp_path)


def test_decathlon_listed_image_missing(tmp_path, files):
    files.decathlon(tmp_path, {"p1": (np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))})
    (tmp_path / "imagesTr" / "p1.nii.gz").unlink()
    with pytest.raises(
        DataError, match=r"training entry 0 lists ./imagesTr/p1.nii.gz, which does not exist"
    ):
        load_dataset(tmp_path)


def test_two_files_with_one_case_id(two_cases, files):
    files.planar(two_cases / "images" / "a.bmp", _square(9))
    with pytest.raises(DataError, match=r"two files give the case id 'a': a.bmp and a.png"):
        load_dataset(two_cases)


def test_id_pattern_that_does_not_match(two_cases):
    with pytest.raises(
        DataError,
        match=r"id_pattern '\^\(\\\\d\+\)_' does not match 2 file name\(s\): a.png, b.png",
    ):
        load_dataset(two_cases, id_pattern=r"^(\d+)_")


@pytest.mark.parametrize(
    "options, expected",
    [
        (
            {"on_missing_label": "ignore"},
            "`on_missing_label` must be one of ['error', 'skip', 'keep']. Received: on_missing_label='ignore'",
        ),
        ({"id_pattern": r"(\d+)_(\d+)"}, "`id_pattern` must have exactly one group"),
        ({"label_values": [0, 0]}, "`label_values` must be a list of distinct stored values"),
        ({"class_names": "vessel"}, "`class_names` must be a list of at least 2 names"),
        ({"channels": 0}, "`channels` must be a positive integer. Received: channels=0"),
        ({"subset": "train"}, "Option(s) ['subset'] are not used by the folder layout"),
    ],
)
def test_bad_options(two_cases, options, expected):
    with pytest.raises(ValueError) as info:
        load_dataset(two_cases, **options)
    assert expected in str(info.value)


# ----------------------------------------------------------------------------- at load() time


def test_unreadable_file(two_cases):
    (two_cases / "images" / "a.png").write_bytes(b"this is not a PNG")
    message = _load_error(load_dataset(two_cases), "a")
    assert message.startswith(
        f"{two_cases / 'images' / 'a.png'}: cannot decode the file as a PNG image"
    )


def test_truncated_png(two_cases, isbi_dir):
    data = (isbi_dir / "image" / "0.png").read_bytes()
    (two_cases / "images" / "a.png").write_bytes(data[: len(data) // 2])
    message = _load_error(load_dataset(two_cases), "a")
    assert f"{two_cases / 'images' / 'a.png'}: cannot decode" in message and "truncated" in message


@pytest.mark.parametrize("compressed", [True, False])
def test_truncated_nifti(tmp_path, sample_dir, compressed):
    # SimpleITK reads a truncated NIfTI silently (zeros); the reader must not.
    import SimpleITK as sitk

    shutil.copytree(
        sample_dir / "labelsTr",
        tmp_path / "labelsTr",
        ignore=lambda d, names: [n for n in names if n != "hippocampus_001.nii.gz"],
    )
    (tmp_path / "imagesTr").mkdir()
    source = sample_dir / "imagesTr" / "hippocampus_001.nii.gz"
    name = "hippocampus_001.nii.gz"
    if not compressed:
        sitk.WriteImage(sitk.ReadImage(str(source)), str(tmp_path / "full.nii"))
        data = (tmp_path / "full.nii").read_bytes()
    else:
        data = source.read_bytes()
    (tmp_path / "imagesTr" / name).write_bytes(data[: len(data) * 2 // 3])
    if not compressed:
        # keep the name the json lists but with .nii content: write it as .nii and list it
        (tmp_path / "imagesTr" / name).unlink()
        name = "hippocampus_001.nii"
        (tmp_path / "imagesTr" / name).write_bytes(data[: len(data) * 2 // 3])
    meta = {
        "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
        "modality": {"0": "MRI"},
        "training": [{"image": f"./imagesTr/{name}", "label": "./labelsTr/hippocampus_001.nii.gz"}],
    }
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    message = _load_error(load_dataset(tmp_path), 0)
    assert message.startswith(f"{tmp_path / 'imagesTr' / name}: the file is truncated")


def test_metaimage_with_missing_and_short_raw(promise12_tree, tmp_path):
    root = tmp_path / "p12"
    shutil.copytree(promise12_tree[0], root)
    (root / "TrainingData_Part1" / "Case00.raw").unlink()
    raw = root / "TrainingData_Part1" / "Case01_segmentation.raw"
    raw.write_bytes(raw.read_bytes()[:100])
    ds = load_dataset(root)
    message = _load_error(ds, "Case00")
    assert message.startswith(
        f"{root / 'TrainingData_Part1' / 'Case00.mhd'}: the header refers to the data file Case00.raw, which does not exist"
    )
    message = _load_error(ds, "Case01")
    assert message.startswith(
        f"{raw.with_suffix('.mhd')}: the data file Case01_segmentation.raw is truncated"
    )


def test_image_mask_shape_mismatch(two_cases, files):
    files.planar(two_cases / "masks" / "b.png", np.zeros((8, 9), np.uint8))
    message = _load_error(load_dataset(two_cases), "b")
    assert message.startswith(
        f"{two_cases / 'masks' / 'b.png'}: the mask has shape (1, 8, 9) (D, H, W)"
    )
    assert f"its image {two_cases / 'images' / 'b.png'} has (1, 8, 8)" in message


def test_image_mask_geometry_mismatch(tmp_path, files):
    files.volume(tmp_path / "images" / "p.nii.gz", np.zeros((3, 4, 5), np.float32))
    files.volume(
        tmp_path / "labels" / "p.nii.gz",
        np.zeros((3, 4, 5), np.uint8),
        spacing=SPACING[:2] + (4.0,),
    )
    message = _load_error(load_dataset(tmp_path, class_names=["bg", "fg"]), "p")
    assert message.startswith(
        f"{tmp_path / 'labels' / 'p.nii.gz'}: the mask's geometry differs from its image"
    )
    assert "spacing (0.625, 0.7, 4) vs (0.625, 0.7, 3.6)" in message
    # within the tolerance: accepted
    files.volume(
        tmp_path / "labels" / "p.nii.gz",
        np.zeros((3, 4, 5), np.uint8),
        origin=(ORIGIN[0] + 1e-5,) + ORIGIN[1:],
        direction=DIRECTION,
    )
    assert load_dataset(tmp_path, class_names=["bg", "fg"])["p"].load().label.shape == (3, 4, 5)


def test_mask_values_outside_classes(two_cases, files):
    files.planar(two_cases / "masks" / "b.png", _square(3))
    message = _load_error(load_dataset(two_cases, class_names=["background", "cell"]), "b")
    assert message.startswith(
        f"{two_cases / 'masks' / 'b.png'}: the mask holds the values [3], outside the declared classes 0..1 ['background', 'cell']"
    )


def test_mask_values_outside_label_values(two_cases, files):
    files.planar(
        two_cases / "masks" / "b.png",
        np.array([[0, 128], [255, 7]], np.uint8).repeat(4, 0).repeat(4, 1),
    )
    message = _load_error(load_dataset(two_cases, label_values=[0, 128, 255]), "b")
    assert message.startswith(
        f"{two_cases / 'masks' / 'b.png'}: the mask holds the values [7], which are not in label_values (declared stored values: [0, 128, 255])"
    )


def test_non_integer_float_label(tmp_path, files):
    files.volume(tmp_path / "images" / "p.nii.gz", np.zeros((2, 2, 2), np.float32))
    files.volume(tmp_path / "labels" / "p.nii.gz", np.full((2, 2, 2), 0.5, np.float32))
    message = _load_error(load_dataset(tmp_path, class_names=["bg", "fg"]), "p")
    assert message.startswith(
        f"{tmp_path / 'labels' / 'p.nii.gz'}: the mask holds non-integer values (e.g. [0.5])"
    )


@pytest.mark.parametrize(
    "bad, words", [(np.nan, "1 NaN and 0 infinite"), (np.inf, "0 NaN and 1 infinite")]
)
def test_nan_or_infinite_intensities(tmp_path, files, bad, words):
    image = np.zeros((2, 3, 4), np.float32)
    image[1, 2, 3] = bad
    files.volume(tmp_path / "images" / "p.nii.gz", image)
    files.volume(tmp_path / "labels" / "p.nii.gz", np.zeros((2, 3, 4), np.uint8))
    message = _load_error(load_dataset(tmp_path, class_names=["bg", "fg"]), "p")
    assert (
        message
        == f"{tmp_path / 'images' / 'p.nii.gz'}: the image holds {words} intensity value(s); expected finite numbers."
    )


def test_rgb_found_where_one_channel_declared(two_cases, files):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 200
    files.planar(two_cases / "images" / "b.png", colour)
    message = _load_error(load_dataset(two_cases, channels=1), "b")
    assert message.startswith(
        f"{two_cases / 'images' / 'b.png'}: expected 1 channel(s), found 3 (RGB colour)"
    )
    # grey stored as three equal channels is accepted as one channel
    files.planar(two_cases / "images" / "b.png", np.dstack([_square(60)] * 3))
    assert load_dataset(two_cases, channels=1)["b"].load().image.shape == (1, 8, 8, 1)


def test_modalities_differing_between_cases(two_cases, files):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 2] = 99
    files.planar(two_cases / "images" / "b.png", colour)
    ds = load_dataset(two_cases)
    assert ds.modalities == ["gray"]  # from the first case
    message = _load_error(ds, "b")
    assert f"{two_cases / 'images' / 'b.png'}: expected 1 channel(s), found 3" in message
    assert "same channels (modalities)" in message


def test_decathlon_case_with_wrong_modality_count(tmp_path, files):
    files.decathlon(
        tmp_path,
        {"p1": (np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))},
        modality={"0": "FLAIR", "1": "T1w"},
    )
    message = _load_error(load_dataset(tmp_path), "p1")
    assert message.startswith(
        f"{tmp_path / 'imagesTr' / 'p1.nii.gz'}: expected 2 channel(s), found 1"
    )


# ----------------------------------------------------------------------------- validate


def _dataset_with_two_bad_cases(root, files):
    files.folder(root, {k: (_square(50), _square(255)) for k in "abcd"})
    (root / "images" / "b.png").write_bytes(b"broken")
    files.planar(root / "masks" / "d.png", _square(3))
    return load_dataset(root)


def test_validate_raise_lists_every_bad_case(tmp_path, files):
    ds = _dataset_with_two_bad_cases(tmp_path, files)
    with pytest.raises(DataError) as info:
        validate(ds)
    message = str(info.value)
    assert message.startswith(f"2 of 4 case(s) in {tmp_path} failed validation:")
    assert f"  - b: {tmp_path / 'images' / 'b.png'}: cannot decode" in message
    assert f"  - d: {tmp_path / 'masks' / 'd.png'}: the mask holds the values [3]" in message


def test_validate_skip_warns_and_excludes(tmp_path, files):
    ds = _dataset_with_two_bad_cases(tmp_path, files)
    with pytest.warns(UserWarning) as caught:
        kept = ds.validate(on_error="skip")
    assert kept.case_ids == ["a", "c"]
    warning = str(caught[0].message)
    assert warning.startswith(f"Skipped 2 of 4 case(s) in {tmp_path} that failed validation:")
    assert "- b: " in warning and "- d: " in warning and "cannot decode" in warning
    assert caught[0].filename == __file__
    assert "validate() skipped 2 case(s): b, d" in kept.describe()


def test_validate_skip_with_nothing_left(tmp_path, files):
    files.folder(tmp_path, {"a": (_square(50), _square(7))})
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no case passed validation"):
        validate(load_dataset(tmp_path, class_names=["bg", "fg"]), on_error="skip")


def test_validate_bad_on_error(sample):
    with pytest.raises(
        ValueError,
        match=r"`on_error` must be one of \['raise', 'skip'\]. Received: on_error='ignore'",
    ):
        validate(sample, on_error="ignore")


def test_mask_values_that_are_no_class_indices(two_cases, files):
    files.planar(two_cases / "masks" / "a.png", _square(128))
    with pytest.raises(DataError) as info:
        load_dataset(two_cases)
    message = str(info.value)
    expected = (
        f"The masks hold the values 0, 128, 255 (e.g. 255 in {two_cases / 'masks' / 'b.png'})"
    )
    assert expected in message
    assert "Pass class_names=[...] and label_values=" in message
