"""Ensembles: several models' class probabilities averaged at each case's original grid.

As nnU-Net ensembles its 2-D and 3-D configurations, :class:`EnsemblePredictor` lets each
member predict a case on its own terms (its own preprocessing, resampling, slicing axes,
views, shifts and TTA, see :mod:`kerasseg.inference`), takes every member's class
probabilities back to the case's original grid, averages them (weighted; equal weights by
default) and returns the argmax. Members may therefore mix 2-D, 2.5-D and multi-view
models, and any other predictor whose ``predict_case(case, return_probabilities=True)``
gives probabilities on the original grid; they must agree on the classes they predict
(count, names and stored mask values).

An ensemble is used wherever a :class:`~kerasseg.inference.Predictor` is:
:func:`kerasseg.scoring.evaluate_model` and :func:`kerasseg.inference.predict_path` take it
as their ``predictor``, and the command line builds one from several ``--model`` options
(``kerasseg predict --model A --model B ...``) or from a zoo entry that is an ensemble of
other entries (see :func:`kerasseg.zoo.ensemble_members`); :func:`predictor` picks a
:class:`Predictor` or an :class:`EnsemblePredictor` for what it is given.

Example:
    >>> import numpy as np
    >>> mean = EnsemblePredictor.combine([np.array([[0.25, 0.75]]), np.array([[1.0, 0.0]])],
    ...                                  weights=[1, 1])
    >>> mean.tolist(), mean.argmax(-1).tolist()  # the first member alone says class 1
    ([[0.625, 0.375]], [0])
"""

import math
import os

import numpy as np

from kerasseg.inference import Predictor

__all__ = ["EnsemblePredictor", "predictor"]


def _is_predictor(model):
    """Anything that predicts cases like a Predictor: ``predict_case`` and ``info``."""
    return hasattr(model, "predict_case") and hasattr(model, "info")


def _is_ensemble_entry(model):
    """Whether ``model`` names a zoo entry that is an ensemble (not a file path)."""
    if not isinstance(model, str) or model.endswith(".keras") or os.path.sep in model \
            or os.path.exists(model):
        return False
    from kerasseg import zoo

    return zoo.is_ensemble(model)


def _check_weights(weights, count):
    """Weights as floats normalized to sum 1: one positive, finite number per member."""
    if weights is None:
        return tuple(1.0 / count for _ in range(count))
    values = list(weights) if isinstance(weights, (list, tuple, np.ndarray)) else None
    valid = values is not None and len(values) == count and all(
        isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        and math.isfinite(value) and value > 0 for value in values)
    if not valid:
        raise ValueError(
            f"`weights` must be one positive number per member ({count}). "
            f"Received: weights={weights!r}")
    total = float(sum(values))
    return tuple(float(value) / total for value in values)


def _member_name(model, predictor, index):
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(predictor, EnsemblePredictor):
        return f"member {index + 1} (an ensemble of {', '.join(predictor.names)})"
    info = getattr(predictor, "info", None)
    entry = getattr(info, "zoo_entry", None)
    family = getattr(info, "model", "?")
    return entry or f"member {index + 1} (a {type(predictor).__name__} of {family})"


class EnsemblePredictor:
    """Predicts cases with several models: the argmax of their (weighted) mean probabilities.

    Each member predicts the case at its original grid with its own preprocessing
    (:meth:`kerasseg.inference.Predictor.predict_case` with ``return_probabilities=True``);
    the ensemble averages those probabilities with the normalized weights and takes the
    argmax. It has the attributes that :func:`kerasseg.scoring.evaluate_model` and
    :func:`kerasseg.inference.predict_path` read from a predictor:

    * ``info``: the **first member's** :class:`~kerasseg.description.ModelInfo`, not a
      description of the ensemble. The members agree on what prediction and writing use
      from it (``num_classes``, ``class_names``, ``label_values``; checked here), but its
      preprocessing, patch size, model family, ``format`` and ``zoo_entry`` are the first
      member's own;
    * ``num_classes``: the members' common class count;
    * ``tta``: whether every member predicts with flip TTA;
    * ``shifts``: the **first member's** pixel offsets (each member averages its own; see
      :meth:`member_settings` for all of them).

    Args:
        models: the members: a list of ``.keras`` paths, zoo entry names,
            :class:`~kerasseg.inference.Predictor` objects or other ensembles, mixed as
            needed; or the name of a zoo entry that is an ensemble (its members and weights
            are the registry's, see :func:`kerasseg.zoo.ensemble_members`).
        weights: one positive number per member, normalized to sum 1; ``None`` weighs the
            members equally (or takes a zoo ensemble's own weights).
        tta: flip TTA for the members built here from paths or names (a member given as a
            ``Predictor`` keeps its own settings).
        overlap: tile overlap for the members built here.
        shifts: pixel offsets for the members built here; ``None`` keeps each model's own
            (see :class:`~kerasseg.inference.Predictor`).
        batch_size: slices or tiles per forward pass for the members built here.

    Raises:
        ValueError: for no members, invalid ``weights``, members that disagree on the
            number of classes, their names or their mask values (the message names the
            two members and both values), or whatever a member's
            :class:`~kerasseg.inference.Predictor` refuses (an unknown zoo entry, TTA of
            a model trained without flips, ...).
        FileNotFoundError: for a model path that does not exist.

    Example:
        >>> ensemble = EnsemblePredictor(  # doctest: +SKIP
        ...     ["hippocampus-unet", "hippocampus-fcn8s"])
        >>> label = ensemble.predict_case(dataset[0])  # doctest: +SKIP
        >>> weighted = EnsemblePredictor(  # doctest: +SKIP
        ...     ["runs/a/best.keras", "runs/b/best.keras"], weights=[0.7, 0.3])
    """

    def __init__(self, models, weights=None, tta=False, overlap=0.5, shifts=None,
                 batch_size=16):
        if isinstance(models, (str, os.PathLike)):
            name = os.fspath(models)
            if not _is_ensemble_entry(name):
                raise ValueError(
                    "`models` must be a list of models (paths, zoo entry names or "
                    "Predictors) or the name of a zoo entry that is an ensemble; "
                    f"{name!r} is neither. Received: models={models!r}")
            from kerasseg import zoo

            models, registry_weights = zoo.ensemble_members(name)
            weights = registry_weights if weights is None else weights
        elif _is_predictor(models):
            models = [models]
        models = list(models)
        if not models:
            raise ValueError("`models` must name at least one model. Received: models=[]")
        self.weights = _check_weights(weights, len(models))
        options = dict(tta=tta, overlap=overlap, shifts=shifts, batch_size=batch_size)
        self.members, self.names = [], []
        for index, model in enumerate(models):
            member = predictor(model, **options) if not _is_predictor(model) else model
            self.members.append(member)
            self.names.append(_member_name(model, member, index))
        self._check_agreement()
        first = self.members[0]
        self.info = first.info
        self.num_classes = first.num_classes
        self.tta = all(bool(getattr(member, "tta", False)) for member in self.members)
        self.shifts = [tuple(shift) for shift in getattr(first, "shifts", [(0, 0)])]
        self.overlap = float(overlap)

    def _check_agreement(self):
        first, first_name = self.members[0], self.names[0]
        for member, name in zip(self.members[1:], self.names[1:]):
            for what, value in (
                    ("the number of classes", lambda p: p.num_classes),
                    ("the class names", lambda p: tuple(p.info.class_names or ())),
                    ("the mask values of the classes (label_values)",
                     lambda p: None if p.info.label_values is None
                     else tuple(p.info.label_values))):
                if value(first) != value(member):
                    raise ValueError(
                        f"Ensemble members {first_name!r} and {name!r} disagree on {what}: "
                        f"{value(first)!r} and {value(member)!r}. An ensemble averages the "
                        "probabilities of the same classes; use models trained on the same "
                        "labels.")

    @staticmethod
    def combine(probabilities, weights):
        """Return the weighted mean of several members' class probabilities.

        Args:
            probabilities: arrays of one shape (``(..., K)``), one per member.
            weights: one positive number per member (normalized here).

        Returns:
            float32 array of that shape: ``sum(w_i * p_i) / sum(w_i)``.

        Raises:
            ValueError: for invalid weights, or arrays of different shapes.

        Example:
            >>> p = EnsemblePredictor.combine([np.array([1.0, 0.0]), np.array([0.0, 1.0])],
            ...                               weights=[3, 1])
            >>> p.tolist()
            [0.75, 0.25]
        """
        probabilities = list(probabilities)
        weights = _check_weights(weights, len(probabilities))
        total = None
        for index, (scores, weight) in enumerate(zip(probabilities, weights)):
            scores = np.asarray(scores, dtype="float32")
            if total is None:
                total = scores * np.float32(weight)
            elif scores.shape != total.shape:
                raise ValueError(
                    f"Member {index + 1} gives probabilities of shape {scores.shape}, member 1 "
                    f"of shape {total.shape}; the members must predict the same grid and "
                    "classes.")
            else:
                total += scores * np.float32(weight)
        return total

    def predict_case(self, case, return_probabilities=False):
        """Predict one case at its original shape and geometry with every member.

        Args:
            case: a ``Case`` (from :func:`kerasseg.data.load_dataset`) or a ``CaseData``.
            return_probabilities: also return the averaged class probabilities.

        Returns:
            ``label`` int32 ``(D, H, W)``, the argmax of the weighted mean of the members'
            probabilities on the case's original grid, or ``(label, probabilities)`` with
            the float32 ``(D, H, W, K')`` mean (``K' = 2`` for one-channel models).

        Raises:
            kerasseg.data.DataError: if the case cannot be read or is invalid.
            ValueError: if the members' probabilities differ in shape.

        Example:
            >>> label, mean = ensemble.predict_case(dataset[0],  # doctest: +SKIP
            ...                                     return_probabilities=True)
        """
        probabilities = []
        for member in self.members:
            _, scores = member.predict_case(case, return_probabilities=True)
            probabilities.append(scores)
        mean = self.combine(probabilities, self.weights)
        label = np.argmax(mean, axis=-1).astype("int32")
        return (label, mean) if return_probabilities else label

    def member_settings(self):
        """Return each member's name, weight and prediction settings (for reports).

        Returns:
            A list of dicts ``{"model", "weight", "tta", "shifts"}``, in member order.

        Example:
            >>> ensemble.member_settings()[0]  # doctest: +SKIP
            {'model': 'hippocampus-unet', 'weight': 0.5, 'tta': False, 'shifts': [[0, 0]]}
        """
        return [{"model": name, "weight": weight, "tta": bool(getattr(member, "tta", False)),
                 "shifts": [list(shift) for shift in getattr(member, "shifts", [(0, 0)])]}
                for name, weight, member in zip(self.names, self.weights, self.members)]

    def __repr__(self):
        members = ", ".join(f"{name!r}: {weight:.3g}"
                            for name, weight in zip(self.names, self.weights))
        return f"EnsemblePredictor({{{members}}})"


def predictor(model, weights=None, **options):
    """Return the predictor for a model, several models or a zoo entry.

    Args:
        model: a ``.keras`` path or a zoo entry name (a :class:`Predictor`), the name of a
            zoo entry that is an ensemble (an :class:`EnsemblePredictor` of its members),
            a list of them (one element: as that element; several: an ensemble), or an
            existing predictor (returned as it is).
        weights: the members' weights for an ensemble (see :class:`EnsemblePredictor`).
        **options: ``tta``, ``overlap``, ``shifts``, ``batch_size``, passed on.

    Returns:
        A :class:`~kerasseg.inference.Predictor` or an :class:`EnsemblePredictor`.

    Raises:
        ValueError: for ``weights`` given with one model that is not an ensemble, or what
            :class:`Predictor` and :class:`EnsemblePredictor` refuse.
        FileNotFoundError: for a model path that does not exist.

    Example:
        >>> predictor("hippocampus-unet")  # doctest: +SKIP
        <kerasseg.inference.Predictor object at ...>
        >>> predictor(["hippocampus-unet", "hippocampus-fcn8s"], weights=[2, 1])  # doctest: +SKIP
        EnsemblePredictor({'hippocampus-unet': 0.667, 'hippocampus-fcn8s': 0.333})
    """
    if _is_predictor(model):
        if weights is not None:
            raise ValueError("`weights` weighs the members of an ensemble; an existing "
                             "predictor was given.")
        return model
    if isinstance(model, (list, tuple)):
        if len(model) == 1 and weights is None:
            return predictor(model[0], **options)
        return EnsemblePredictor(list(model), weights=weights, **options)
    if _is_ensemble_entry(model):
        return EnsemblePredictor(model, weights=weights, **options)
    if weights is not None:
        raise ValueError(f"`weights` weighs the members of an ensemble; {model!r} is one "
                         f"model. Received: weights={weights!r}")
    return Predictor(model, **options)
