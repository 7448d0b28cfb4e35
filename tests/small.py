"""The small model settings of the tests, defined once and imported everywhere.

``SMALL_OPTIONS`` holds a small configuration of every registered family: fast to build and
run, yet deep enough to use every block (tests/models/test_all_models.py checks that each
family in the registry has one). ``TINY_OPTIONS`` are the smallest settings, for training
runs of a few seconds.

:func:`input_shape` gives a family an input of its dimensionality: an image
``(height, width, channels)`` for a 2-D family, a volume ``(depth, height, width,
channels)`` for a 3-D one, small enough (16x32x32 voxels by default) that 3-D tests run in
seconds.
"""

import keras

import kerasseg
from kerasseg.models import registry

SMALL_OPTIONS = {
    "unet": {"depth": 3, "base_filters": 8},
    "fcn8s": {"base_filters": 8, "fc_filters": 32, "dropout": 0.0},
    "deeplab": {"backbone": "small", "aspp_filters": 32, "dropout": 0.0},
    # 3-D: stride 4, 4 filters at full resolution.
    "unet3d": {"depth": 2, "base_filters": 4},
    "vnet": {"depth": 2, "base_filters": 4},
}

SPATIAL_SIZES = {2: (64, 64), 3: (16, 32, 32)}
"""The default spatial sizes of :func:`input_shape` by spatial dimensionality."""


def input_shape(name, channels=1, sizes=None):
    """An input shape for family ``name``: spatial sizes by its dimensionality, then channels.

    Args:
        name: a family name.
        channels: the channel count.
        sizes: ``None`` for :data:`SPATIAL_SIZES`, or a dict ``{2: (h, w), 3: (d, h, w)}``
            (an entry may be ``None`` for every axis of any size).

    Returns:
        E.g. ``(64, 64, channels)`` for a 2-D family and ``(16, 32, 32, channels)`` for a
        3-D one.
    """
    dims = registry.spatial_dims(name)
    spatial = (sizes or SPATIAL_SIZES)[dims]
    if spatial is None:
        spatial = (None,) * dims
    assert len(spatial) == dims, (name, spatial)
    return tuple(spatial) + (channels,)

TINY_OPTIONS = {
    "unet": {"depth": 2, "base_filters": 4},
    "fcn8s": {"base_filters": 4, "fc_filters": 8, "dropout": 0.0},
}
TINY_UNET = TINY_OPTIONS["unet"]


def build_small(name, input_shape, num_classes, seed=None, **options):
    """A model of family ``name`` in its ``SMALL_OPTIONS`` configuration.

    ``options`` override or extend that configuration; ``seed`` fixes the random weights.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return kerasseg.build(name, input_shape=input_shape, num_classes=num_classes,
                          **{**SMALL_OPTIONS[name], **options})
