"""kerasseg: U-Net, FCN-8s and DeepLabv3+ for medical image segmentation in Keras 3.

The public API:

* :func:`build` and :func:`list_models` build the model families;
* :mod:`kerasseg.losses` and :mod:`kerasseg.metrics` hold segmentation losses and metrics;
* :mod:`kerasseg.data` reads 2-D folders, Decathlon NIfTI and PROMISE12 MetaImage data
  (imported on first use, since it pulls in SimpleITK, OpenCV and albumentations).

Example:
    >>> import kerasseg
    >>> model = kerasseg.build("unet", input_shape=(128, 128, 1), num_classes=3)
"""

import importlib

from kerasseg import losses, metrics
from kerasseg.models import build, list_models

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("data", "training", "modelfile", "evaluation", "report", "reporting", "inference", "export", "zoo", "serving", "cli")


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
