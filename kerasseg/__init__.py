"""kerasseg: U-Net, FCN-8s and DeepLabv3+ for medical image segmentation in Keras 3.

The public API:

* :func:`build` and :func:`list_models` build the model families: the 2-D (image) ones
  above, and a 3-D U-Net and a V-Net for volumes (``list_models(spatial_dims=3)``), which
  :func:`train` does not accept yet;
* :mod:`kerasseg.losses` and :mod:`kerasseg.metrics` hold segmentation losses and metrics;
* :mod:`kerasseg.data` reads 2-D folders, Decathlon NIfTI and PROMISE12 MetaImage data
  (imported on first use, since it pulls in SimpleITK, OpenCV and albumentations).

Example:
    >>> import kerasseg
    >>> model = kerasseg.build("unet", input_shape=(128, 128, 1), num_classes=3)
"""

import importlib
import os
import sys

from kerasseg import verbosity as _verbosity

if _verbosity.running_as_command():
    # The `kerasseg` command is quiet unless given -v (see kerasseg.verbosity).
    _verbosity.set_environment(_verbosity.verbosity_from_argv(sys.argv[1:]) or None)
# TensorFlow's start-up lines below TF_CPP_MIN_LOG_LEVEL, which it prints regardless, held back.
_verbosity.import_tensorflow()

from kerasseg import losses, metrics, models  # noqa: E402
from kerasseg._version import __version__  # noqa: E402
from kerasseg.models import list_models  # noqa: E402

_LAZY_SUBMODULES = ("data", "training", "modelfile", "evaluation", "report", "reporting", "inference", "ensemble", "export", "zoo", "serving", "cli")


def build(name, /, *, input_shape=None, num_classes=2, weights=None, **options):
    """Build a segmentation model by family name, with random, saved or zoo weights.

    :func:`kerasseg.models.build` with one addition: ``weights`` may name a zoo entry.
    (The models layer does not know the zoo, which sits above it; see ``.importlinter``.)

    Args:
        name: a name from :func:`kerasseg.list_models` (2-D: ``"unet"``, ``"fcn8s"``,
            ``"deeplab"``; 3-D: ``"unet3d"``, ``"vnet"``) or an alias
            (``"deeplabv3plus"``); case-insensitive.
        input_shape: ``(height, width, channels)`` for a 2-D family, ``(depth, height,
            width, channels)`` for a 3-D one. Spatial sizes may be ``None`` (any size that
            is a multiple of the model's stride on that axis); channels is any positive
            count. ``None`` (the default) means any size and one channel.
        num_classes: number of output channels (classes including background; 1 for a
            single sigmoid output).
        weights: ``None`` (random initialization), a path to a ``.weights.h5`` file, or
            the name of a zoo entry (see :mod:`kerasseg.zoo`): any string that does not
            end in ``.h5`` and is not an existing path.
        **options: family-specific options such as ``depth`` or ``backbone``; see each
            family's builder (``kerasseg.models.unet.build_unet`` and so on).

    Returns:
        A Keras 3 functional ``keras.Model`` mapping ``(B, H, W, C)`` images to
        ``(B, H, W, num_classes)`` outputs, or ``(B, D, H, W, C)`` volumes to
        ``(B, D, H, W, num_classes)`` (logits unless ``output_activation`` says otherwise;
        a 3-D U-Net with ``deep_supervision`` has more outputs, see
        :func:`kerasseg.models.unet3d.build_unet3d`).

    Raises:
        ValueError: for an unknown name, an unknown option (the valid ones are listed),
            an invalid ``input_shape`` or ``num_classes``, an option value the family
            rejects, an unknown zoo entry or one incompatible with the request.
        FileNotFoundError: if ``weights`` is a path that does not exist.

    Example:
        >>> import kerasseg
        >>> model = kerasseg.build("unet", input_shape=(256, 256, 1), num_classes=3,
        ...                        depth=4, base_filters=32)
        >>> model.output_shape
        (None, 256, 256, 3)
    """
    from kerasseg.models.build import check_request

    canonical, input_shape = check_request(name, input_shape, num_classes, weights, options)
    if weights is not None and not str(weights).endswith(".h5") and not os.path.exists(weights):
        from kerasseg import zoo  # a zoo entry by name

        return zoo.build_from_zoo(str(weights), arch=canonical, input_shape=input_shape,
                                  num_classes=num_classes, **options)
    return models.build(canonical, input_shape=input_shape, num_classes=num_classes,
                        weights=weights, **options)


def __getattr__(name):
    if name == "train":
        from kerasseg.training import train

        return train
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"kerasseg.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'kerasseg' has no attribute {name!r}")


__all__ = ["build", "list_models", "train", "losses", "metrics", "__version__"]
