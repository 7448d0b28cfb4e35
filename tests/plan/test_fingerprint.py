"""The fingerprint: hand-computable statistics of tiny synthetic data sets, and real readers."""

import math

import cv2
import numpy as np
import pytest

from kerasseg.data import load_dataset
from kerasseg.data.errors import DataError
from kerasseg.data.types import Geometry
from kerasseg.plan import fingerprint
from kerasseg.sample import hippocampus_path


class _Case:
    def __init__(self, image, label, spacing_xyz):
        self.image, self.label = image, label
        self.geometry = Geometry(spacing=spacing_xyz, origin=(0.0,) * len(spacing_xyz),
                                 direction=tuple(np.eye(len(spacing_xyz)).ravel()))
        self.has_label = label is not None

    def load(self):
        return self.image, self.label, self.geometry, None


class _Dataset:
    """The attributes `fingerprint` reads, over arrays held in memory."""

    def __init__(self, cases, num_classes=2, modalities=("MRI",), spatial_dims=3):
        self.cases, self.num_classes = cases, num_classes
        self.class_names = ["background"] + [f"class{i}" for i in range(1, num_classes)]
        self.modalities, self.spatial_dims = list(modalities), spatial_dims
        self.format, self.root = "memory", "/in/memory"


def test_shapes_spacings_and_their_medians():
    cases = [
        _Case(np.zeros((2, 3, 4, 1), np.float32), np.ones((2, 3, 4), np.int64), (1.0, 1.0, 3.0)),
        _Case(np.zeros((4, 5, 6, 1), np.float32), np.ones((4, 5, 6), np.int64), (0.5, 1.0, 5.0)),
        _Case(np.zeros((6, 7, 8, 1), np.float32), np.ones((6, 7, 8), np.int64), (1.0, 2.0, 1.0)),
    ]
    fp = fingerprint(_Dataset(cases))
    assert fp.cases == 3 and fp.channels == 1 and fp.spatial_dims == 3
    assert fp.shapes == ((2, 3, 4), (4, 5, 6), (6, 7, 8))
    assert fp.spacings == ((3.0, 1.0, 1.0), (5.0, 1.0, 0.5), (1.0, 2.0, 1.0))
    assert fp.median_shape == (4.0, 5.0, 6.0)
    assert fp.median_spacing == (3.0, 1.0, 1.0)
    assert fp.is_volume and not fp.is_ct


def test_intensity_percentiles_inside_the_foreground():
    # Foreground voxels hold 1..100 over two cases; background holds -1000 (never counted).
    first = np.full((1, 10, 10, 1), -1000.0, np.float32)
    first[0, :4, :, 0] = np.arange(1, 41).reshape(4, 10)
    label_a = np.zeros((1, 10, 10), np.int64)
    label_a[0, :4] = 1
    second = np.full((1, 10, 10, 1), -1000.0, np.float32)
    second[0, :6, :, 0] = np.arange(41, 101).reshape(6, 10)
    label_b = np.zeros((1, 10, 10), np.int64)
    label_b[0, :6] = 1
    fp = fingerprint(_Dataset([_Case(first, label_a, (1.0, 1.0)),
                               _Case(second, label_b, (1.0, 1.0))], spatial_dims=2))
    stats = fp.intensity[0]
    # Linear interpolation between order statistics of 1..100: position (n - 1) * q.
    assert stats.p00_5 == pytest.approx(1 + 99 * 0.005)
    assert stats.median == pytest.approx(50.5)
    assert stats.p99_5 == pytest.approx(100 - 99 * 0.005)
    assert stats.mean == pytest.approx(50.5)
    assert stats.std == pytest.approx(math.sqrt((100**2 - 1) / 12))
    assert stats.voxels == 100
    assert fp.class_frequencies == pytest.approx((0.5, 0.5))
    assert not fp.is_volume and fp.shapes == ((1, 10, 10), (1, 10, 10))


def test_sampling_caps_the_voxels_per_case_and_is_seeded():
    image = np.arange(1000, dtype=np.float32).reshape(10, 10, 10, 1)
    label = np.ones((10, 10, 10), np.int64)
    data = _Dataset([_Case(image, label, (1.0, 1.0, 1.0))] * 2)
    fp = fingerprint(data, samples_per_case=50, seed=3)
    assert fp.intensity[0].voxels == 100
    assert fingerprint(data, samples_per_case=50, seed=3).intensity == fp.intensity


def test_class_frequencies_and_median_object_size_and_extent():
    # Class 1: objects of 2 and 4 voxels in case a, 9 voxels in case b -> median 4.
    # Class 2: one object of 6 voxels in case b; class 3 never occurs.
    label_a = np.zeros((2, 3, 4), np.int64)
    label_a[0, 0, 0:2] = 1
    label_a[1, 2, 0:4] = 1
    label_b = np.zeros((4, 5, 6), np.int64)
    label_b[1:4, 1:4, 0] = 1
    label_b[0, 0:2, 3:6] = 2
    cases = [_Case(np.zeros((2, 3, 4, 1), np.float32), label_a, (1.0, 1.0, 1.0)),
             _Case(np.zeros((4, 5, 6, 1), np.float32), label_b, (1.0, 1.0, 1.0))]
    fp = fingerprint(_Dataset(cases, num_classes=4))
    total = 24 + 120
    assert fp.class_frequencies == pytest.approx(
        ((total - 15 - 6) / total, 15 / total, 6 / total, 0.0))
    assert fp.object_sizes == (None, 4.0, 6.0, None)
    # Extents (z, y, x): (1,1,2), (1,1,4), (3,3,1) -> per-axis median (1, 1, 2).
    assert fp.object_extents == (None, (1.0, 1.0, 2.0), (1.0, 2.0, 3.0), None)


def test_unlabelled_cases_are_skipped_and_none_is_an_error():
    labelled = _Case(np.ones((1, 4, 4, 1), np.float32), np.ones((1, 4, 4), np.int64), (1.0, 1.0))
    bare = _Case(np.ones((1, 9, 9, 1), np.float32), None, (1.0, 1.0))
    assert fingerprint(_Dataset([labelled, bare], spatial_dims=2)).cases == 1
    with pytest.raises(DataError, match="/in/memory has none"):
        fingerprint(_Dataset([bare], spatial_dims=2))


def test_a_set_without_foreground_uses_every_voxel():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    fp = fingerprint(_Dataset([_Case(image, np.zeros((1, 4, 4), np.int64), (1.0, 1.0))],
                              spatial_dims=2))
    assert fp.intensity[0].median == pytest.approx(7.5) and fp.intensity[0].voxels == 16
    assert fp.object_sizes == (None, None)


def test_bundled_sample_matches_its_files():
    data = load_dataset(hippocampus_path()).subset([0, 1, 2])
    fp = fingerprint(data)
    loaded = [case.load() for case in data]
    assert fp.shapes == tuple(tuple(item.image.shape[:3]) for item in loaded)
    assert fp.spacings == tuple(item.geometry.spacing_zyx for item in loaded)
    assert fp.modalities == ("MRI",) and fp.format == "decathlon"
    labels = np.concatenate([item.label.ravel() for item in loaded])
    assert fp.class_frequencies == pytest.approx(
        tuple(np.bincount(labels, minlength=3) / labels.size))


def test_rgb_folder(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for index, (height, width) in enumerate(((30, 40), (50, 20), (40, 60))):
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), np.uint8)
        mask[5:15, 5:10] = 255
        cv2.imwrite(str(tmp_path / "images" / f"{index}.png"), rgb)
        cv2.imwrite(str(tmp_path / "masks" / f"{index}.png"), mask)
    fp = fingerprint(load_dataset(tmp_path))
    assert fp.spatial_dims == 2 and fp.channels == 3 and len(fp.intensity) == 3
    assert fp.shapes == ((1, 30, 40), (1, 50, 20), (1, 40, 60))
    assert fp.median_shape == (1.0, 40.0, 40.0)
    assert not fp.is_volume
    assert fp.object_sizes == (None, 50.0) and fp.object_extents == (None, (1.0, 10.0, 5.0))
    assert all(stats.voxels == 150 for stats in fp.intensity)
