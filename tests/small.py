"""The small model settings of the tests, defined once and imported everywhere.

``SMALL_OPTIONS`` holds a small configuration of every registered family: fast to build and
run, yet deep enough to use every block (tests/models/test_all_models.py checks that each
family in the registry has one). ``TINY_OPTIONS`` are the smallest settings, for training
runs of a few seconds.
"""

import keras

import kerasseg

SMALL_OPTIONS = {
    "unet": {"depth": 3, "base_filters": 8},
    "fcn8s": {"base_filters": 8, "fc_filters": 32, "dropout": 0.0},
    "deeplab": {"backbone": "small", "aspp_filters": 32, "dropout": 0.0},
}

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
