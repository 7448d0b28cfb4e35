"""Plain value types shared by the data readers, preprocessing and writers.

Array conventions used everywhere in :mod:`kerasseg.data`:

* An image is a float32 array ``(D, H, W, C)``: ``D`` slices (``D == 1`` for a 2-D
  image), channels last (modalities of a Decathlon case, RGB of a photo).
* A label map is an integer array ``(D, H, W)`` holding class indices ``0..K-1``.
* Array axes follow NumPy/SimpleITK order ``(z, y, x)``; :class:`Geometry` stores the
  physical description in SimpleITK's ``(x, y, z)`` order, exactly as the file holds it,
  so that a prediction can be written back with the geometry of its input.
"""

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """Physical geometry of an image, in SimpleITK's (x, y, z) order.

    Attributes:
        spacing: voxel size in millimetres along x, y (and z).
        origin: physical position of the first voxel.
        direction: direction cosines, row-major, ``ndim * ndim`` values.

    Example:
        >>> g = Geometry(spacing=(0.5, 0.5, 3.0), origin=(0, 0, 0),
        ...              direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
        >>> g.spacing_zyx
        (3.0, 0.5, 0.5)
    """

    spacing: Tuple[float, ...] = (1.0, 1.0, 1.0)
    origin: Tuple[float, ...] = (0.0, 0.0, 0.0)
    direction: Tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    @property
    def ndim(self):
        """Number of spatial dimensions (2 or 3)."""
        return len(self.spacing)

    @property
    def spacing_zyx(self):
        """Spacing in array-axis order ``(z, y, x)``; a 2-D geometry gets ``z = 1.0``."""
        spacing = tuple(float(s) for s in reversed(self.spacing))
        return spacing if len(spacing) == 3 else (1.0,) + spacing

    @classmethod
    def identity(cls, ndim=3):
        """Return a unit-spacing geometry at the origin (used for plain 2-D images)."""
        return cls(
            spacing=(1.0,) * ndim,
            origin=(0.0,) * ndim,
            direction=tuple(np.eye(ndim).ravel().tolist()),
        )


class CaseData(NamedTuple):
    """What :meth:`Case.load` returns: ``image, label, geometry = case.load()``.

    Attributes:
        image: float32 array ``(D, H, W, C)``.
        label: int array ``(D, H, W)`` of class indices, or ``None`` when the case has no mask.
        geometry: the image's :class:`Geometry`.
        roi: optional boolean array ``(D, H, W)``, the region of interest, or ``None``.
    """

    image: np.ndarray
    label: Optional[np.ndarray]
    geometry: Geometry
    roi: Optional[np.ndarray] = None
