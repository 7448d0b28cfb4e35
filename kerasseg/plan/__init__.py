"""Settings from the data: a data set's fingerprint and the plan drawn from it.

:func:`fingerprint` reads every labelled case once; :func:`plan_training` turns the
fingerprint into training settings by fixed rules (see :mod:`kerasseg.plan.planner`);
:func:`kerasseg.train` and ``kerasseg plan`` use them for every option left unset.

Example:
    >>> from kerasseg.data import load_dataset
    >>> from kerasseg.sample import hippocampus_path
    >>> plan = plan_training(fingerprint(load_dataset(hippocampus_path())), "unet")
    >>> plan["batch_size"], plan["steps_per_epoch"]
    (32, 100)
"""

from kerasseg.plan.fingerprint import Fingerprint, IntensityStats, fingerprint
from kerasseg.plan.planner import (
    PLANNED, PLANNED_MODEL_OPTIONS, Plan, PlanRow, auto_patch_size, parse_duration, plan_training,
    plan_volumetric, trainable_model)

__all__ = ["PLANNED", "PLANNED_MODEL_OPTIONS", "Fingerprint", "IntensityStats", "Plan", "PlanRow", "auto_patch_size",
           "fingerprint", "parse_duration", "plan_training", "plan_volumetric",
           "trainable_model"]
