"""Shared fixtures for the data tests: small files written on the fly, and a PROMISE12 tree.

The data sets themselves come from tests/conftest.py: the bundled hippocampus sample
(``sample_dir``, ``sample``) and the real data sets (``hippocampus_dir``, ``isbi_dir``), which
are read-only, so every test writes under ``tmp_path``.
"""

import json
import pathlib

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

# A geometry far from the identity, used wherever geometry must survive a round trip.
SPACING = (0.625, 0.7, 3.6)
ORIGIN = (-120.5, 33.25, 7.0)
ANGLE = np.deg2rad(20)
DIRECTION = (
    np.cos(ANGLE),
    -np.sin(ANGLE),
    0.0,
    np.sin(ANGLE),
    np.cos(ANGLE),
    0.0,
    0.0,
    0.0,
    -1.0,
)


@pytest.fixture(scope="session")
def hippocampus(hippocampus_dir):
    """The full hippocampus data set (208 cases), loaded once per session."""
    from kerasseg.data import load_dataset

    return load_dataset(hippocampus_dir)


class Files:
    """Writers of small test files, independent of the code under test."""

    @staticmethod
    def planar(path, array):
        """Write a 2-D image with OpenCV; ``array`` is (H, W) or (H, W, 3) in RGB order."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.asarray(array)
        if array.ndim == 3:
            array = array[..., ::-1]
        assert cv2.imwrite(str(path), np.ascontiguousarray(array)), path
        return path

    @staticmethod
    def gif(path, array):
        """Write a grey 2-D array as a GIF with Pillow."""
        from PIL import Image

        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
        return path

    @staticmethod
    def volume(path, array, spacing=SPACING, origin=ORIGIN, direction=DIRECTION):
        """Write a (D, H, W) array with SimpleITK and the given geometry."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image = sitk.GetImageFromArray(np.asarray(array))
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(direction)
        sitk.WriteImage(image, str(path))
        return path

    @staticmethod
    def folder(root, pairs, image_ext=".png", label_ext=".png"):
        """Write ``{case_id: (image, label)}`` as a folder layout under root/images, root/masks."""
        root = pathlib.Path(root)
        for case_id, (image, label) in pairs.items():
            Files.planar(root / "images" / f"{case_id}{image_ext}", image)
            if label is not None:
                Files.planar(root / "masks" / f"{case_id}{label_ext}", label)
        return root

    @staticmethod
    def decathlon(root, cases, labels=None, modality=None, test=()):
        """Write a Decathlon tree: ``cases`` maps id -> (image array, label array or None).

        Images with a trailing channel axis (D, H, W, C) are written as 4-D NIfTI files.
        """
        root = pathlib.Path(root)
        training = []
        for case_id, (image, label) in cases.items():
            image = np.asarray(image)
            if image.ndim == 4:
                channels = [
                    sitk.GetImageFromArray(np.ascontiguousarray(image[..., c]))
                    for c in range(image.shape[-1])
                ]
                (root / "imagesTr").mkdir(parents=True, exist_ok=True)
                sitk.WriteImage(
                    sitk.JoinSeries(channels), str(root / "imagesTr" / f"{case_id}.nii.gz")
                )
            else:
                Files.volume(
                    root / "imagesTr" / f"{case_id}.nii.gz",
                    image,
                    (1.0, 1.0, 1.0),
                    (0.0, 0.0, 0.0),
                    (1, 0, 0, 0, 1, 0, 0, 0, 1),
                )
            entry = {
                "image": f"./imagesTr/{case_id}.nii.gz",
                "label": f"./labelsTr/{case_id}.nii.gz",
            }
            if label is not None:
                Files.volume(
                    root / "labelsTr" / f"{case_id}.nii.gz",
                    label,
                    (1.0, 1.0, 1.0),
                    (0.0, 0.0, 0.0),
                    (1, 0, 0, 0, 1, 0, 0, 0, 1),
                )
            training.append(entry)
        for case_id, image in dict(test).items():
            Files.volume(
                root / "imagesTs" / f"{case_id}.nii.gz",
                image,
                (1.0, 1.0, 1.0),
                (0.0, 0.0, 0.0),
                (1, 0, 0, 0, 1, 0, 0, 0, 1),
            )
        meta = {
            "name": "Synthetic",
            "modality": modality or {"0": "CT"},
            "labels": labels or {"0": "background", "1": "organ"},
            "numTraining": len(training),
            "training": training,
            "test": [f"./imagesTs/{case_id}.nii.gz" for case_id in dict(test)],
        }
        (root / "dataset.json").write_text(json.dumps(meta))
        return root


@pytest.fixture
def files():
    """The :class:`Files` writers."""
    return Files


@pytest.fixture(scope="session")
def promise12_tree(tmp_path_factory, sample_dir):
    """A PROMISE12 tree made from three sample hippocampus cases, plus a test case without mask.

    The three cases hold a uint8 image, float32 image and label files, and a float32 image
    with a uint8 label. Returns ``(root, sources, origins)``: ``sources`` maps case id ->
    (image path, label path) of the hippocampus files it was made from, ``origins`` case id ->
    origin written.
    """
    root = tmp_path_factory.mktemp("promise12")
    picked = {
        "Case00": ("TrainingData_Part1", "hippocampus_001"),
        "Case01": ("TrainingData_Part1", "hippocampus_243"),
        "Case02": ("TrainingData_Part2", "hippocampus_008"),
    }
    origin_of = {}
    for k, (case_id, (folder, source)) in enumerate(picked.items()):
        origin = (ORIGIN[0] + k, ORIGIN[1], ORIGIN[2] - 2 * k)
        origin_of[case_id] = origin
        for suffix, sub in (("", "imagesTr"), ("_segmentation", "labelsTr")):
            image = sitk.ReadImage(str(sample_dir / sub / f"{source}.nii.gz"))
            array = sitk.GetArrayFromImage(image)
            if suffix:
                array = (array > 0).astype(np.uint8)  # one class, as PROMISE12's prostate
            Files.volume(
                root / folder / f"{case_id}{suffix}.mhd", array, SPACING, origin, DIRECTION
            )
    test_image = sitk.GetArrayFromImage(
        sitk.ReadImage(str(sample_dir / "imagesTr" / "hippocampus_019.nii.gz"))
    )
    Files.volume(root / "TestData" / "Case10.mhd", test_image)
    sources = {
        case_id: (
            sample_dir / "imagesTr" / f"{s}.nii.gz",
            sample_dir / "labelsTr" / f"{s}.nii.gz",
        )
        for case_id, (_, s) in picked.items()
    }
    return root, sources, origin_of
