"""Inference: whole volumes slice by slice, tiles with overlap blending, shift averaging,
and flip TTA; predictions written in the input's format and geometry.

Scoring a model per case is in :mod:`kerasseg.scoring`, int8 calibration images in
:mod:`kerasseg.export.calibration`.

A model saved by training (see :mod:`kerasseg.modelfile`) carries its preprocessing spec,
class names and training patch size, so :class:`Predictor` needs no other options:

1. the case is preprocessed as in training (normalization, resampling);
2. each slice (with its 2.5-D neighbours) is zero-padded to a multiple of the model
   stride; a slice larger than the training patch is predicted in overlapping tiles of
   the patch size whose softmax outputs are blended with Gaussian weights (nnU-Net).
   A model with instance or group normalization (statistics over the whole image, zero
   padding included) sees each slice on a canvas of its training patch size, as in
   training, so that those statistics are the ones it learned with;
3. with ``tta=True`` the softmax of the flipped inputs is averaged with the plain one:
   every combination of the flips the model was trained with (its info's ``flip_axes``;
   horizontal, vertical and both for models without that record). A model trained
   without flips (e.g. where anterior and posterior are separate classes) refuses TTA;
4. a model whose info lists ``shift_offsets`` (row and column offsets in pixels) predicts
   each slice once per offset, moved by it on a zero-padded canvas, moves the softmax
   back and averages. Models that predict at a fraction of the input resolution
   (DeepLabv3+ at 1/4, FCN-8s at 1/8) place boundaries on a coarse grid; offsets below
   that grid step (:func:`shift_grid`) refine it. The zoo's DeepLabv3+ entry carries
   them, so its measured metrics include it;
5. a multi-view model (a spec with several slicing axes) predicts the volume across each
   axis and averages the views' softmax outputs;
6. class probabilities are taken back to the original grid (linear) and the label map
   is their argmax, so the prediction has the input's shape and geometry.

A 3-D model (spec mode ``"3d"``) predicts the preprocessed volume by sliding window
(:mod:`kerasseg.sliding_window`): windows of its training patch overlapping by ``overlap``
(0.5), blended with Gaussian importance weights (sigma = patch / 8), with ``tta=True``
mirrored on every combination of the axes its training mirrored; then step 6.
"""

import os

import numpy as np

from kerasseg.description import ModelInfo

# Normalization layers whose statistics are taken over the image (padding included).
SPATIAL_STATISTICS = ("instance", "group")

TTA_FLIPS = ((), (1,), (2,), (1, 2))  # batch axes: 1 = rows, 2 = columns


def tta_flips(flip_axes):
    """Return the flips that test-time augmentation averages for a model.

    Args:
        flip_axes: the image axes (0 = rows, 1 = columns) that the model's training
            flipped, its info's ``flip_axes``; ``None`` (a model from before that was
            recorded) assumes both.

    Returns:
        A tuple of batch-axis tuples (1 = rows, 2 = columns), the identity ``()`` first.

    Example:
        >>> tta_flips([1])
        ((), (2,))
        >>> tta_flips(None)
        ((), (1,), (2,), (1, 2))
    """
    axes = (0, 1) if flip_axes is None else tuple(flip_axes)
    return tuple(flips for flips in TTA_FLIPS if all(axis - 1 in axes for axis in flips))


def supports_tta(info):
    """Whether a model can be predicted with flip test-time augmentation.

    Args:
        info: the model's :class:`~kerasseg.description.ModelInfo`.

    Returns:
        ``True`` when training flipped at least one axis the prediction can flip back: any
        mirrored axis for a 3-D model (every subset of them is averaged), a row or column
        flip for a 2-D or 2.5-D model (see :func:`tta_flips`).

    Example:
        >>> from kerasseg.description import ModelInfo, Preprocessing
        >>> info = ModelInfo(model="unet3d", num_classes=2, channels=1, patch_size=(8, 8, 8),
        ...                  stride=4, preprocessing=Preprocessing(mode="3d", patch_size=(8, 8, 8)),
        ...                  flip_axes=[2])
        >>> supports_tta(info)
        True
    """
    if info.preprocessing.mode == "3d":
        return bool(info.flip_axes)
    return len(tta_flips(info.flip_axes)) > 1


def shift_grid(step):
    """Return the offsets of a two-by-two grid of shifts ``step`` pixels apart.

    Args:
        step: offset in pixels along rows and columns; ``0`` means no shift averaging.

    Returns:
        A list of ``(row, column)`` offsets, ``(0, 0)`` first.

    Raises:
        ValueError: if ``step`` is not a non-negative integer.

    Example:
        >>> shift_grid(2)
        [(0, 0), (0, 2), (2, 0), (2, 2)]
        >>> shift_grid(0)
        [(0, 0)]
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"`step` must be a non-negative integer. Received: step={step!r}")
    step = int(step)
    return [(0, 0), (0, step), (step, 0), (step, step)] if step else [(0, 0)]


def _check_shifts(shifts):
    def integer(value):
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    pairs = list(shifts) if isinstance(shifts, (list, tuple)) else []
    if not pairs or not all(isinstance(pair, (list, tuple)) and len(pair) == 2
                            and all(integer(value) for value in pair) for pair in pairs):
        raise ValueError(
            "`shifts` (or the model info's `shift_offsets`) must be a non-empty list of "
            f"(row, column) integer pixel offsets, e.g. [[0, 0], [2, 2]]. Received: {shifts!r}")
    return [(int(row), int(column)) for row, column in pairs]


def _gaussian_window(height, width, sigma_scale=0.125):
    def axis(n):
        x = np.arange(n) - (n - 1) / 2.0
        return np.exp(-0.5 * (x / max(n * sigma_scale, 1e-6)) ** 2)

    window = np.outer(axis(height), axis(width)).astype("float32")
    return np.maximum(window / window.max(), 1e-3)


def _tile_starts(size, tile, overlap):
    if size <= tile:
        return [0]
    step = max(1, int(tile * (1.0 - overlap)))
    starts = list(range(0, size - tile + 1, step))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def _round_up(value, multiple):
    return int(-(-value // multiple) * multiple)


class Predictor:
    """Predicts label maps for cases, files or arrays with a trained model.

    Args:
        model: a ``.keras`` path (with the info written by training), a zoo entry name,
            or a Keras model (then pass ``info``).
        info: the model's :class:`kerasseg.description.ModelInfo` (or its dict form,
            validated); read from the model file when ``model`` is a path. Its
            ``output_activation`` (``"logits"``, ``"softmax"`` or ``"sigmoid"``, written by
            training; else read from the model's last layer) says whether the outputs
            still need a softmax/sigmoid.
        tta: average over the flips the model was trained with (see module docstring).
        shifts: ``(row, column)`` pixel offsets whose predictions are averaged (see
            :func:`shift_grid`); ``None`` takes the info's ``shift_offsets`` (none when it
            has none), ``[(0, 0)]`` predicts once.
        overlap: tile overlap fraction for slices larger than the patch size.
        batch_size: slices or tiles per forward pass.

    Raises:
        ValueError: if the info is missing or invalid, its ``output_activation`` is
            invalid, ``overlap`` is outside [0, 1), or
            ``tta`` is asked of a model trained without flips, or ``shifts`` is not a
            list of integer pairs.

    Example:
        >>> predictor = Predictor("runs/hippo/best.keras", tta=True)  # doctest: +SKIP
        >>> label = predictor.predict_case(dataset[0])  # doctest: +SKIP
    """

    def __init__(self, model, info=None, tta=False, overlap=0.5, batch_size=16, shifts=None):
        if isinstance(model, (str, os.PathLike)):
            model, info = load_any(model)
        if isinstance(info, dict):
            info = ModelInfo.from_dict(info)
        if not isinstance(info, ModelInfo):
            raise ValueError(
                "`info` must be the model's ModelInfo (written with the model by kerasseg "
                f"training). Received: info={info!r}"
            )
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"`overlap` must be in [0, 1). Received: overlap={overlap!r}")
        self.model = model
        self.info = info
        self.spec = info.preprocessing.to_dict()  # the pipeline's spec dict
        self.patch = info.patch_size
        self.stride = info.stride
        self.num_classes = info.num_classes
        # Instance and group normalization average over the image, padding included:
        # predict on the training canvas so that the statistics match training's.
        normalization = dict(info.model_options or {}).get("normalization")
        self.canvas = self.patch if normalization in SPATIAL_STATISTICS else (0, 0)
        self.activation = _activation(model, info, self.num_classes)
        self.tta = bool(tta)
        self.volumetric = info.preprocessing.mode == "3d"
        if self.volumetric:
            # The axes training mirrored: with tta, every subset of them is predicted
            # (see predict_volume).
            self.mirror_axes = tuple(info.flip_axes or ())
            if shifts is not None and list(shifts) not in ([(0, 0)], [[0, 0]]):
                raise ValueError("`shifts` are for 2-D models; a 3-D model predicts by "
                                 f"sliding window. Received: shifts={shifts!r}")
        else:
            self.flips = tta_flips(info.flip_axes)
        if self.tta and not supports_tta(info):
            raise ValueError(
                "flip test-time augmentation needs a model trained with flips; this one was "
                f"trained without (its info has flip_axes={info.flip_axes}), so a "
                "flipped input shows it anatomy it never saw. Predict without `tta`."
            )
        self.shifts = _check_shifts(list(info.shift_offsets or [(0, 0)]) if shifts is None
                                    else shifts)
        largest = max(abs(value) for pair in self.shifts for value in pair)
        self._margin = _round_up(largest, self.stride)
        self.overlap = float(overlap)
        self.batch_size = int(batch_size)
        self._functions = {}

    # -------------------------------------------------------------- slices to scores

    def _call(self, batch):
        """Logits of a batch: one traced function per slice shape on TensorFlow.

        ``model.predict`` relaxes a retraced input shape to unknown height and width after a
        few different shapes, which models with fixed-factor bilinear resizes (DeepLabv3+,
        bilinear U-Net) cannot run; a function per ``(H, W, C)`` keeps them static.
        """
        import keras

        if keras.backend.backend() != "tensorflow":
            return self.model.predict(batch, verbose=0, batch_size=self.batch_size)
        import tensorflow as tf

        key = tuple(int(d) for d in batch.shape[1:])
        function = self._functions.get(key)
        if function is None:
            model = self.model
            function = tf.function(lambda x: model(x, training=False),
                                   input_signature=[tf.TensorSpec((None,) + key, tf.float32)])
            self._functions[key] = function
        return np.concatenate([function(tf.constant(batch[start:start + self.batch_size])).numpy()
                               for start in range(0, len(batch), self.batch_size)])

    def _forward(self, batch):
        """Class probabilities of a batch: softmax/sigmoid only for a model of logits."""
        out = np.asarray(self._call(batch))
        out = out.astype("float32")
        if self.num_classes == 1:
            prob = 1.0 / (1.0 + np.exp(-out)) if self.activation == "logits" else out
            return np.concatenate([1.0 - prob, prob], axis=-1)
        if self.activation != "logits":
            return out
        out = out - out.max(axis=-1, keepdims=True)
        exp = np.exp(out)
        return exp / exp.sum(axis=-1, keepdims=True)

    def _scores(self, batch):
        flips = self.flips if self.tta else ((),)
        margin = self._margin
        if margin:  # a zero border wide enough that no shift wraps image content around
            batch = np.pad(batch, ((0, 0), (margin, margin), (margin, margin), (0, 0)))
        total = 0.0
        for axes in flips:
            for shift in self.shifts:
                moved = np.roll(batch, shift, axis=(1, 2)) if any(shift) else batch
                moved = np.flip(moved, axis=axes) if axes else moved
                scores = self._forward(np.ascontiguousarray(moved))
                scores = np.flip(scores, axis=axes) if axes else scores
                back = tuple(-value for value in shift)
                total = total + (np.roll(scores, back, axis=(1, 2)) if any(shift) else scores)
        total = total / (len(flips) * len(self.shifts))
        if margin:
            total = total[:, margin:-margin, margin:-margin]
        return total

    def predict_slices(self, slices):
        """Class probabilities for a stack of preprocessed slices.

        Args:
            slices: float32 ``(N, H, W, C)`` preprocessed slices (any H, W).

        Returns:
            float32 ``(N, H, W, K')`` probabilities (``K' = 2`` for a one-channel model).
        """
        slices = np.asarray(slices, dtype="float32")
        n, height, width, _ = slices.shape
        tile_h, tile_w = self.patch
        if height <= tile_h and width <= tile_w:
            ph = max(_round_up(height, self.stride), self.canvas[0])
            pw = max(_round_up(width, self.stride), self.canvas[1])
            padded = np.zeros((n, ph, pw, slices.shape[-1]), "float32")
            top, left = (ph - height) // 2, (pw - width) // 2
            padded[:, top:top + height, left:left + width] = slices
            return self._scores(padded)[:, top:top + height, left:left + width]
        return self._predict_tiled(slices)

    def _predict_tiled(self, slices):
        n, height, width, channels = slices.shape
        tile_h, tile_w = self.patch
        ph, pw = max(height, tile_h), max(width, tile_w)
        padded = np.zeros((n, ph, pw, channels), "float32")
        padded[:, :height, :width] = slices
        window = _gaussian_window(tile_h, tile_w)[None, :, :, None]
        total = None
        weight = np.zeros((1, ph, pw, 1), "float32")
        for top in _tile_starts(ph, tile_h, self.overlap):
            for left in _tile_starts(pw, tile_w, self.overlap):
                tile = padded[:, top:top + tile_h, left:left + tile_w]
                scores = self._scores(tile) * window
                if total is None:
                    total = np.zeros((n, ph, pw, scores.shape[-1]), "float32")
                total[:, top:top + tile_h, left:left + tile_w] += scores
                weight[:, top:top + tile_h, left:left + tile_w] += window
        return (total / weight)[:, :height, :width]

    def predict_volume(self, volume):
        """Class probabilities of a 3-D model for a preprocessed volume, by sliding window.

        Windows of the training patch overlap by ``overlap`` and are blended with Gaussian
        importance weights (sigma = patch / 8); with ``tta`` every combination of the axes
        the model was trained mirrored on is predicted and averaged.

        Args:
            volume: float32 ``(D, H, W, C)`` preprocessed as the model expects (any size;
                axes shorter than the patch are padded).

        Returns:
            float32 ``(D, H, W, K')`` probabilities (``K' = 2`` for a one-channel model).

        Raises:
            ValueError: for a 2-D model, or a volume whose channels differ from the model's.

        Example:
            >>> probs = Predictor("runs/h3d/best.keras").predict_volume(volume)  # doctest: +SKIP
        """
        from kerasseg.sliding_window import sliding_window_predict

        if not self.volumetric:
            raise ValueError("predict_volume is for 3-D models (spec mode '3d'); this one "
                             f"was trained in mode {self.spec['mode']!r}: use predict_slices.")
        volume = np.asarray(volume, dtype="float32")
        expected = self.model.input_shape[-1]
        if volume.ndim != 4 or volume.shape[-1] != expected:
            raise ValueError(f"`volume` must be (D, H, W, {expected}) for this model. "
                             f"Received: volume of shape {volume.shape}")
        mirror = self.mirror_axes if self.tta else ()
        return sliding_window_predict(
            volume, self._forward, tuple(self.patch), 2 if self.num_classes == 1 else self.num_classes,
            overlap=self.overlap, batch_size=max(1, min(self.batch_size, 2)),
            mirror_axes=mirror)

    # ----------------------------------------------------------------- whole cases

    def predict_case(self, case, return_probabilities=False):
        """Predict one case at its original shape and geometry.

        Args:
            case: a ``Case`` (from :func:`kerasseg.data.load_dataset`) or a ``CaseData``.
            return_probabilities: also return the class probabilities on the original grid.

        Returns:
            ``label`` int32 ``(D, H, W)`` on the case's original grid, or
            ``(label, probabilities)``.

        Raises:
            kerasseg.data.DataError: if the case cannot be read or is invalid.
        """
        from kerasseg.data.prepare import prepare_case, restore_prediction
        from kerasseg.data.spec import slice_axes
        from kerasseg.data.preprocess import extract_slices

        prepared = prepare_case(case, self.spec)
        if self.volumetric:
            scores = restore_prediction(self.predict_volume(prepared.image), prepared, order=1)
            label = np.argmax(scores, axis=-1).astype("int32")
            return (label, scores) if return_probabilities else label
        axes = slice_axes(self.spec)
        scores = None
        for axis in axes:
            slices = extract_slices(prepared.image, axis=axis, context=int(self.spec["context"]))
            expected = self.model.input_shape[-1]
            if slices.shape[-1] != expected:
                raise ValueError(
                    f"The model expects {expected} input channel(s); case "
                    f"{prepared.case_id} gives {slices.shape[-1]} after preprocessing "
                    f"(mode {self.spec['mode']}, context {self.spec['context']})."
                )
            view = np.concatenate(
                [self.predict_slices(slices[i:i + 64]) for i in range(0, len(slices), 64)], axis=0
            )
            view = np.moveaxis(view, 0, axis)
            scores = view if scores is None else scores + view
        if len(axes) > 1:
            scores /= len(axes)
        scores = restore_prediction(scores, prepared, order=1)
        label = np.argmax(scores, axis=-1).astype("int32")
        return (label, scores) if return_probabilities else label


def _activation(model, info, num_classes):
    """The model's output activation: its info's ``output_activation`` (written by training),
    else what its last layer declares (:func:`kerasseg.models.output_activation`)."""
    from kerasseg.models.blocks import check_output_activation, output_activation

    declared = info.output_activation or output_activation(model)
    return check_output_activation(declared, num_classes)


def load_any(model):
    """Load a ``.keras`` model path or a zoo entry name, with its info, computing in float32.

    A model trained under mixed precision is rebuilt with float32 policies (its variables
    are float32 already), so that prediction, evaluation and every export compute the same
    numbers.

    Args:
        model: a ``.keras`` path or a zoo entry name.

    Returns:
        ``(keras_model, info)``, ``info`` a :class:`kerasseg.description.ModelInfo` (``None``
        for a ``.keras`` file saved without one).

    Raises:
        FileNotFoundError: for a path that does not exist.
        ValueError: for an unknown zoo entry, or invalid info in the file.

    Example:
        >>> model, info = load_any("hippocampus-unet")  # doctest: +SKIP
        >>> info.zoo_entry, info.patch_size  # doctest: +SKIP
        ('hippocampus-unet', (64, 64))
    """
    model = os.fspath(model)
    if model.endswith(".keras") or os.path.sep in model or os.path.exists(model):
        from kerasseg.modelfile import load_model

        from kerasseg.modelfile import float32_model

        if not os.path.exists(model):
            raise FileNotFoundError(f"Model file not found: {model}")
        loaded, info = load_model(model)
        return float32_model(loaded), info
    from kerasseg import zoo

    return zoo.load(model, return_info=True)


def _input_files(input_path):
    from kerasseg.data.io import is_supported

    if os.path.isfile(input_path):
        return [input_path]
    if not os.path.isdir(input_path):
        raise FileNotFoundError(f"`input` not found: {input_path}")
    files = []
    for root, _, names in sorted(os.walk(input_path)):
        for name in sorted(names):
            path = os.path.join(root, name)
            stem = name.split(".")[0]
            if name.startswith("._") or stem.endswith("_segmentation") or not is_supported(path):
                continue
            files.append(path)
    if not files:
        raise FileNotFoundError(
            f"`input` {input_path} holds no image file of a supported type "
            "(NIfTI, MetaImage, NRRD, PNG, JPEG, TIFF, BMP, GIF)."
        )
    return files


def predict_path(model, input_path, output_dir, tta=False, overlap=0.5, predictor=None,
                 shifts=None):
    """Predict every image under ``input_path`` and write each label map in its input's format.

    A PROMISE12 test case ``Case05.mhd`` gives ``Case05_segmentation.mhd``, a NIfTI file a
    NIfTI file of the same name, a PNG/JPEG/TIFF image a PNG label map (class indices;
    for a two-class model trained on a folder data set, 0 and 255 as such masks are
    usually stored). Each prediction has its input's shape and geometry; files are
    written atomically.

    Args:
        model: a ``.keras`` path or a zoo entry name (or a predictor, used as ``predictor``).
        input_path: an image file or a folder (searched recursively; files named
            ``*_segmentation.*`` are skipped).
        output_dir: folder for the predictions (created).
        tta: flip test-time augmentation.
        overlap: tile overlap for images larger than the model's training patch.
        predictor: an existing :class:`Predictor` (or any predictor with its ``info``,
            ``num_classes`` and ``predict_case``, such as a
            :class:`kerasseg.ensemble.EnsemblePredictor`) to use instead of ``model``.
        shifts: pixel offsets to average (see :class:`Predictor`); ``None`` uses the
            model's own.

    Returns:
        List of ``(input_file, output_file)`` pairs.

    Raises:
        FileNotFoundError: if ``input_path`` does not exist or holds no image.
        kerasseg.data.DataError: for an unreadable or invalid image (named).

    Example:
        >>> predict_path("hippocampus-unet", "imagesTs", "predictions")  # doctest: +SKIP
    """
    from kerasseg.data.io import prediction_path, read_image, write_label
    from kerasseg.data.types import CaseData

    if predictor is None:
        predictor = model if hasattr(model, "predict_case") else Predictor(
            model, tta=tta, overlap=overlap, shifts=shifts)
    written = []
    binary_folder = predictor.info.format == "folder" and predictor.num_classes <= 2
    for path in _input_files(input_path):
        image, geometry = read_image(path)
        label = predictor.predict_case(CaseData(image, None, geometry))
        target = prediction_path(path, output_dir)
        planar = target.endswith(".png")
        values = predictor.info.label_values or (
            [0, 255] if planar and binary_folder else None)
        write_label(target, label, geometry=geometry, label_values=values)
        written.append((path, target))
    return written
