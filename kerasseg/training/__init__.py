"""Training: :func:`train`, strategies, mixed precision and resumable checkpoints."""

from kerasseg.training.trainer import TrainResult, train

__all__ = ["train", "TrainResult"]
