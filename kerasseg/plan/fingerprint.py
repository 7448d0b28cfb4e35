"""The fingerprint of a data set: what the planner needs to know about it.

One pass over the labelled cases records, per case, the array shape and voxel spacing, and
for the whole set the channels and modalities, intensity statistics inside the foreground
(per channel), the fraction of voxels of each class and the median size of connected
objects of each foreground class. :func:`kerasseg.plan.plan_training` turns it into
settings.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np

from kerasseg.data.errors import DataError

# Foreground voxels sampled per case for the intensity statistics (nnU-Net samples 10,000).
SAMPLES_PER_CASE = 10000
PERCENTILES = (0.5, 50.0, 99.5)


@dataclasses.dataclass(frozen=True)
class IntensityStats:
    """Intensity statistics of one channel inside the foreground of all cases.

    Attributes:
        p00_5, median, p99_5: the 0.5th, 50th and 99.5th percentiles.
        mean, std: mean and standard deviation.
        voxels: number of foreground voxels they were computed from (sampled).
    """

    p00_5: float
    median: float
    p99_5: float
    mean: float
    std: float
    voxels: int


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """What a data set looks like, in the terms the planner uses.

    Shapes and spacings are in array order ``(z, y, x)``; a 2-D image has ``z`` extent 1.

    Attributes:
        cases: number of labelled cases fingerprinted.
        spatial_dims: 2 for images, 3 for volumes.
        format: the data set's format name (``"decathlon"``, ``"folder"``, ...).
        modalities: modality names, one per channel (as the data set declares them).
        channels: number of image channels.
        class_names: the class names (index = class).
        shapes: per-case array shape ``(D, H, W)``.
        spacings: per-case voxel spacing in mm, ``(z, y, x)``.
        intensity: per-channel :class:`IntensityStats` inside the foreground (all voxels
            when a data set has no foreground at all).
        class_frequencies: fraction of all voxels that belong to each class.
        object_sizes: per foreground class, the median size in voxels of its connected
            objects (``None`` for a class that never occurs).
        object_extents: per foreground class, the median bounding-box extent ``(z, y, x)``
            in voxels of its connected objects (``None`` for a class that never occurs).

    Example:
        >>> from kerasseg.data import load_dataset
        >>> from kerasseg.sample import hippocampus_path
        >>> fp = fingerprint(load_dataset(hippocampus_path()))
        >>> fp.median_shape, fp.median_spacing
        ((36.0, 49.0, 35.0), (1.0, 1.0, 1.0))
    """

    cases: int
    spatial_dims: int
    format: str
    modalities: Tuple[str, ...]
    channels: int
    class_names: Tuple[str, ...]
    shapes: Tuple[Tuple[int, int, int], ...]
    spacings: Tuple[Tuple[float, float, float], ...]
    intensity: Tuple[IntensityStats, ...]
    class_frequencies: Tuple[float, ...]
    object_sizes: Tuple[Optional[float], ...]
    object_extents: Tuple[Optional[Tuple[float, float, float]], ...]

    @property
    def median_shape(self):
        """Median array shape ``(D, H, W)`` over the cases (floats)."""
        return tuple(float(v) for v in np.median(np.asarray(self.shapes, float), axis=0))

    @property
    def median_spacing(self):
        """Median spacing ``(z, y, x)`` in mm over the cases."""
        return tuple(float(v) for v in np.median(np.asarray(self.spacings, float), axis=0))

    @property
    def is_volume(self):
        """Whether the cases are volumes (more than one slice), not 2-D images."""
        return self.spatial_dims == 3 and max(shape[0] for shape in self.shapes) > 1

    @property
    def is_ct(self):
        """Whether every channel's modality is CT (intensities in Hounsfield units)."""
        return bool(self.modalities) and all(
            str(m).strip().lower() in ("ct", "computed tomography") for m in self.modalities)

    def to_dict(self):
        """Return a JSON-ready dict (tuples become lists).

        Example:
            >>> from kerasseg.data import load_dataset
            >>> from kerasseg.sample import hippocampus_path
            >>> fp = fingerprint(load_dataset(hippocampus_path())[:4])
            >>> fp.to_dict()["cases"], fp.to_dict()["median_spacing"]
            (4, [1.0, 1.0, 1.0])
        """
        out = dataclasses.asdict(self)
        out["median_shape"] = list(self.median_shape)
        out["median_spacing"] = list(self.median_spacing)
        return out


def _objects(label, num_classes):
    """Per foreground class: component sizes and bounding-box extents (z, y, x)."""
    from scipy import ndimage

    sizes, extents = [[] for _ in range(num_classes)], [[] for _ in range(num_classes)]
    for cls in range(1, num_classes):
        components, count = ndimage.label(label == cls)
        if not count:
            continue
        counts = np.bincount(components.ravel())[1:]
        sizes[cls].extend(int(c) for c in counts)
        for box in ndimage.find_objects(components):
            extents[cls].append(tuple(int(s.stop - s.start) for s in box))
    return sizes, extents


def _sample(values, limit, rng):
    if len(values) <= limit:
        return values
    return values[rng.choice(len(values), size=limit, replace=False)]


def fingerprint(dataset, samples_per_case=SAMPLES_PER_CASE, seed=0):
    """Read every labelled case of ``dataset`` once and describe it.

    Args:
        dataset: a :class:`kerasseg.data.CaseDataset` (or any object with ``cases``,
            ``num_classes``, ``class_names``, ``modalities``, ``spatial_dims`` and
            ``format``).
        samples_per_case: foreground voxels drawn per case (per channel) for the intensity
            statistics; cases with fewer contribute all of theirs.
        seed: seed of that sampling.

    Returns:
        A :class:`Fingerprint`.

    Raises:
        DataError: if the data set has no labelled case (the message names its root), or
            a case cannot be read (the message names the file).

    Example:
        >>> from kerasseg.data import load_dataset
        >>> from kerasseg.sample import hippocampus_path
        >>> fp = fingerprint(load_dataset(hippocampus_path()).subset([0, 1]))
        >>> fp.cases, fp.channels, fp.spatial_dims
        (2, 1, 3)
    """
    cases = [case for case in dataset.cases if case.has_label]
    if not cases:
        raise DataError(
            f"Planning needs labelled cases; the data set at {getattr(dataset, 'root', '?')} "
            "has none.")
    num_classes = int(dataset.num_classes)
    rng = np.random.default_rng(seed)
    shapes, spacings, counts = [], [], np.zeros(num_classes, np.int64)
    sizes, extents = [[] for _ in range(num_classes)], [[] for _ in range(num_classes)]
    samples, channels = None, None
    for case in cases:
        image, label, geometry, _ = case.load()
        channels = image.shape[-1] if channels is None else channels
        shapes.append(tuple(int(n) for n in image.shape[:3]))
        spacings.append(tuple(float(s) for s in geometry.spacing_zyx))
        counts += np.bincount(label.ravel(), minlength=num_classes)[:num_classes]
        case_sizes, case_extents = _objects(label if label.shape[0] > 1 else label[0],
                                            num_classes)
        for cls in range(num_classes):
            sizes[cls].extend(case_sizes[cls])
            extents[cls].extend(
                e if len(e) == 3 else (1,) + e for e in case_extents[cls])
        foreground = label > 0
        if samples is None:
            samples = [[] for _ in range(image.shape[-1])]
        for channel in range(image.shape[-1]):
            values = image[..., channel][foreground] if foreground.any() else \
                image[..., channel].ravel()
            samples[channel].append(_sample(values.astype(np.float64), samples_per_case, rng))
    intensity = []
    for channel_samples in samples:
        values = np.concatenate(channel_samples)
        low, median, high = np.percentile(values, PERCENTILES)
        intensity.append(IntensityStats(float(low), float(median), float(high),
                                        float(values.mean()), float(values.std()), len(values)))
    total = counts.sum()
    return Fingerprint(
        cases=len(cases),
        spatial_dims=int(dataset.spatial_dims),
        format=str(dataset.format),
        modalities=tuple(str(m) for m in dataset.modalities),
        channels=int(channels),
        class_names=tuple(dataset.class_names),
        shapes=tuple(shapes),
        spacings=tuple(spacings),
        intensity=tuple(intensity),
        class_frequencies=tuple(float(c / total) for c in counts),
        object_sizes=tuple(float(np.median(s)) if s else None for s in sizes),
        object_extents=tuple(
            tuple(float(v) for v in np.median(np.asarray(e, float), axis=0)) if e else None
            for e in extents),
    )
