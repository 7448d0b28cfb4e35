"""The 3-D network topology and patch planned from the data's spacing and shape (nnU-Net's rules).

For a 3-D U-Net the planner chooses, from the median volume shape at the target spacing:

* **pooling per level**: an axis is pooled (by 2) while its current spacing is at most
  twice the finest current spacing and its feature map keeps at least
  :data:`MIN_FEATURE` voxels; thick-slice axes therefore wait until the in-plane axes have
  been pooled to a similar spacing (nnU-Net's ``get_pool_and_conv_props``);
* **kernels per level**: 3 along an axis whose current spacing is at most twice the
  finest, 1 along a coarser one (a 3x3 in-plane convolution on thick slices); the same rule for
  the bottleneck;
* **the patch**: the median volume, each side rounded up to its axis' stride; while it holds
  more than :data:`MAX_PATCH_VOXELS` voxels, the side with the largest physical extent
  shrinks by one stride step (nnU-Net shrinks the axis that is largest relative to the
  median shape; the physical extent keeps the patch's field of view balanced);
* **the batch**: as many patches as fill :data:`VOXELS_PER_BATCH`, between
  :data:`MIN_BATCH_3D` and :data:`MAX_BATCH_3D`.

The budgets are set for CPU training (two to a few dozen cores): a 64-cube patch at batch
2 is nnU-Net's smallest configuration; a larger GPU budget would only change the constants.
"""

import dataclasses
import math
from typing import List, Tuple

__all__ = ["Topology", "plan_topology", "MAX_PATCH_VOXELS", "VOXELS_PER_BATCH", "MIN_FEATURE"]

MAX_PATCH_VOXELS = 64**3
VOXELS_PER_BATCH = 2 * 64**3
MIN_BATCH_3D, MAX_BATCH_3D = 2, 8
MIN_FEATURE = 4
MAX_DEPTH_3D = 5


@dataclasses.dataclass
class Topology:
    """A planned 3-D network layout and patch.

    Attributes:
        patch_size: ``[d, h, w]``, each a multiple of its axis' stride.
        pool_sizes: per encoder level, the ``(d, h, w)`` pooling (1 or 2).
        kernel_sizes: per level and the bottleneck, the ``(d, h, w)`` kernel (1 or 3).
        stride: the total downsampling per axis.
        batch_size: patches per batch.
        reason: the rules that fired, in words.
    """

    patch_size: List[int]
    pool_sizes: List[Tuple[int, int, int]]
    kernel_sizes: List[Tuple[int, int, int]]
    stride: Tuple[int, int, int]
    batch_size: int
    reason: str

    @property
    def depth(self):
        """The number of pooling levels."""
        return len(self.pool_sizes)


def _layout(spacing, size, max_depth, min_feature, isotropic=False):
    """Pool and kernel sizes for a patch of ``size`` voxels at ``spacing`` (nnU-Net's rule).

    At least one level is planned (on the finest axes) however small the patch; with
    ``isotropic`` every level pools all three axes (a V-Net's strided convolutions)."""
    spacing, size = [float(s) for s in spacing], [float(n) for n in size]
    pools, kernels = [], []
    for level in range(max_depth):
        finest = min(spacing)
        if isotropic:
            fits = all(n / 2 >= min_feature for n in size)
            pool = (2, 2, 2) if fits or level == 0 else (1, 1, 1)
        else:
            pool = tuple(2 if s <= 2 * finest and n / 2 >= min_feature else 1
                         for s, n in zip(spacing, size))
            if level == 0 and max(pool) == 1:
                pool = tuple(2 if s <= 2 * finest else 1 for s in spacing)
        if max(pool) == 1:
            break
        kernels.append(tuple(3 if s <= 2 * finest else 1 for s in spacing))
        pools.append(pool)
        spacing = [s * p for s, p in zip(spacing, pool)]
        size = [n / p for n, p in zip(size, pool)]
    finest = min(spacing)
    kernels.append(tuple(3 if s <= 2 * finest else 1 for s in spacing))
    return pools, kernels


def _stride(pools):
    stride = [1, 1, 1]
    for pool in pools:
        stride = [s * p for s, p in zip(stride, pool)]
    return tuple(stride)


def plan_topology(spacing_zyx, median_shape_zyx, max_voxels=MAX_PATCH_VOXELS,
                  voxels_per_batch=VOXELS_PER_BATCH, max_depth=MAX_DEPTH_3D,
                  min_feature=MIN_FEATURE, isotropic=False):
    """Plan the 3-D U-Net's pooling, kernels, patch and batch for volumes of a data set.

    Args:
        spacing_zyx: the target spacing per array axis ``(z, y, x)``, in mm.
        median_shape_zyx: the median volume shape at that spacing, in voxels.
        max_voxels: the largest patch, in voxels.
        voxels_per_batch: the voxels a batch may hold.
        max_depth: the most pooling levels.
        min_feature: the smallest feature-map side an axis may be pooled to.
        isotropic: pool all three axes at every level (for a V-Net, whose strided
            convolutions halve every axis); the pooling stops when one axis would fall
            below ``min_feature``.

    Returns:
        A :class:`Topology`.

    Raises:
        ValueError: for spacings or shapes that are not three positive numbers.

    Example:
        >>> t = plan_topology((1.0, 1.0, 1.0), (36, 50, 35))
        >>> t.patch_size, t.pool_sizes, t.batch_size
        ([40, 56, 40], [(2, 2, 2), (2, 2, 2), (2, 2, 2)], 5)
    """
    for name, values in (("spacing_zyx", spacing_zyx), ("median_shape_zyx", median_shape_zyx)):
        if len(values) != 3 or any(not (float(v) > 0) for v in values):
            raise ValueError(f"`{name}` must hold 3 positive numbers (z, y, x). "
                             f"Received: {name}={tuple(values)!r}")
    spacing = [float(s) for s in spacing_zyx]
    patch = [max(1, int(round(n))) for n in median_shape_zyx]
    shrunk = False
    for _ in range(1000):
        pools, kernels = _layout(spacing, patch, max_depth, min_feature, isotropic)
        stride = _stride(pools)
        rounded = [int(math.ceil(n / s) * s) for n, s in zip(patch, stride)]
        if math.prod(rounded) <= max_voxels or all(r <= s for r, s in zip(rounded, stride)):
            patch = rounded
            break
        extents = [n * s if n > st else -1.0 for n, s, st in zip(rounded, spacing, stride)]
        axis = extents.index(max(extents))
        patch = list(rounded)
        patch[axis] -= stride[axis]
        shrunk = True
    pools, kernels = _layout(spacing, patch, max_depth, min_feature, isotropic)
    stride = _stride(pools)
    patch = [int(math.ceil(n / s) * s) for n, s in zip(patch, stride)]
    voxels = math.prod(patch)
    batch = int(min(MAX_BATCH_3D, max(MIN_BATCH_3D, voxels_per_batch // voxels)))
    shape = "x".join(str(int(round(n))) for n in median_shape_zyx)
    size = "x".join(str(n) for n in patch)
    reason = (f"median volume {shape} at the target spacing: "
              + (f"shrunk to {size} (at most {max_voxels} voxels, the largest physical "
                 "extent first)" if shrunk else f"whole, padded to {size}")
              + f"; strides {stride}")
    return Topology(patch_size=patch, pool_sizes=pools, kernel_sizes=kernels, stride=stride,
                    batch_size=batch, reason=reason)
