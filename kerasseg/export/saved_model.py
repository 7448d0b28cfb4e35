"""Export a segmentation model as a SavedModel for TF Serving.

Layout written by :func:`saved_model` (``DIR`` is the model's base path)::

    DIR/
      <version>/                    the SavedModel (TF Serving loads numbered folders)
        saved_model.pb  variables/  fingerprint.pb
        assets.extra/kerasseg_export.json   what was exported (sizes, normalization, ...)
      models.config                 ModelServerConfig serving every version in DIR
      batching_parameters.txt       BatchingParameters for --enable_batching
      MODEL_CARD.md                 signatures, normalization and example requests

A model trained on volumes also gets ``serving_volume`` (whole raw volumes in, label
volumes out; :mod:`kerasseg.export.volume`).

The version folder is written to a hidden temporary folder beside it and renamed into
place, so TF Serving (which polls ``DIR`` for numbered folders) never sees half a model.
"""

import datetime
import json
import os

import tensorflow as tf

from kerasseg.export import model_card as _card
from kerasseg.export.normalization import check_channels, normalization_spec
from kerasseg.export.serving_config import (
    ModelEntry,
    check_model_name,
    check_version,
    present_versions,
    write_batching_config,
    write_model_config,
)
from kerasseg.export import volume as _volume
from kerasseg.export.signatures import (
    function_variables,
    BYTES_INPUT,
    BYTES_SIGNATURE,
    MASK_PAD_VALUE,
    TENSOR_INPUT,
    TENSOR_SIGNATURE,
    bytes_signature_spec,
    make_bytes_fn,
    make_tensor_fn,
    model_info,
    tensor_signature_spec,
)
from kerasseg.files import atomic_dir, write_text_atomic
from kerasseg.modelfile import float32_model

METADATA_FILE = os.path.join("assets.extra", "kerasseg_export.json")
DECODABLE_CHANNELS = (1, 3, 4)


_VOLUME_KEYS = ("mode", "context", "slice_axis", "target_spacing", "patch_size")


def _check_volume(volume, channels):
    """The volume preprocessing kept in the export metadata (validated, plain JSON)."""
    from kerasseg.data.spec import slice_axes

    if volume is None:
        return None
    if not isinstance(volume, dict) or "context" not in volume or "slice_axis" not in volume:
        raise ValueError(
            "`volume` must be the training preprocessing spec, a dict with at least "
            f"'context' and 'slice_axis'. Received: volume={volume!r}"
        )
    try:
        axes = slice_axes(volume)
    except ValueError as error:
        raise ValueError(
            "`volume['slice_axis']` must be distinct axes in 0..2. "
            f"Received: {volume['slice_axis']!r}"
        ) from error
    context = volume["context"]
    if not isinstance(context, int) or context < 0 or channels % (2 * context + 1):
        raise ValueError(
            f"`volume['context']` must be an integer >= 0 with the model's {channels} input "
            f"channel(s) a multiple of 2 * context + 1. Received: context={context!r}"
        )
    mode = volume.get("mode") or ("2.5d" if context else "2d")
    if mode not in ("2d", "2.5d", "3d") or mode == "3d" and (context or axes != [0]):
        raise ValueError(
            "`volume['mode']` must be '2d', '2.5d' or '3d' (with context 0 and slice axis 0). "
            f"Received: mode={volume.get('mode')!r}, context={context!r}, "
            f"slice_axis={volume['slice_axis']!r}")
    patch = volume.get("patch_size")
    if patch is not None and (
            not isinstance(patch, (list, tuple)) or len(patch) != (3 if mode == "3d" else 2)
            or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in patch)):
        raise ValueError(
            "`volume['patch_size']` must be the training patch, positive ints "
            f"({'(d, h, w)' if mode == '3d' else '(h, w)'}). Received: patch_size={patch!r}")
    out = {key: volume.get(key) for key in _VOLUME_KEYS}
    if volume.get("shift_offsets"):
        out["shift_offsets"] = [list(pair) for pair in volume["shift_offsets"]]
    out["slice_axis"] = axes
    out["mode"] = mode
    return json.loads(json.dumps(out))


def saved_model(
    model,
    export_dir,
    version=1,
    *,
    model_name=None,
    normalization=None,
    input_size=None,
    bytes_signature=None,
    output_activation="auto",
    stride=None,
    canvas=None,
    overwrite=False,
    serving_base_path="/models",
    batching=True,
    volume=None,
    class_names=None,
):
    """Export ``model`` for TF Serving as ``export_dir/<version>/`` with its signatures.

    Signatures (names, dtypes and shapes are the public contract):

    * ``serving_default``: input ``image`` float32 ``[batch, H, W, C]``, the model's own
      input (already normalized as in training); outputs ``probabilities`` float32
      ``[batch, H, W, K]`` (softmax, or sigmoid when ``K == 1``) and ``mask`` int32
      ``[batch, H, W]`` (argmax, or ``probability > 0.5`` when ``K == 1``). A fixed-size
      model (or one exported with ``input_size``) takes exactly its size; a dynamic-size
      model takes any size (zero-padded at the bottom and right to a multiple of its
      stride inside the graph, outputs cropped back).
    * ``serving_bytes``: input ``image_bytes`` string ``[batch]`` of PNG or JPEG files
      (REST clients send ``{"b64": ...}``); each image is decoded to its stored
      intensities (8- or 16-bit), resized bilinearly to the model's fixed size (a
      dynamic-size model keeps the image size and pads it to its stride), normalized
      as described by ``normalization`` (constants stored in the graph), and
      segmented; outputs ``mask`` int32 ``[batch, H_max, W_max]`` brought back to each
      image's original size (nearest neighbour), padded with ``-1`` to the largest image
      of the batch when sizes differ, and ``image_size`` int32 ``[batch, 2]`` (each
      image's height and width). Only for 2-D models with 1, 3 or 4 channels.
    * ``serving_volume`` (models exported with ``volume``, i.e. trained on volumes):
      input ``volume`` float32 ``[D, H, W]`` or ``[D, H, W, C]``, raw intensities of one
      volume of any size, array axes ``(z, y, x)`` as SimpleITK's ``GetArrayFromImage``
      and kerasseg's readers give them, and, when the spec has a ``target_spacing``,
      ``spacing`` float32 ``[3]``, the voxel size in ``(x, y, z)`` order (SimpleITK's
      ``GetSpacing()``, NIfTI's ``pixdim[1:4]``, :class:`kerasseg.data.types.Geometry`'s
      ``spacing``); outputs ``probabilities`` float32 ``[D, H, W, K]`` and ``label`` int32
      ``[D, H, W]`` on the input's grid. The graph runs
      :meth:`kerasseg.inference.Predictor.predict_case`'s recipe without flips:
      normalization over the volume, linear resampling to the target spacing, slices
      across each axis with context channels, padding/canvas/tiling and shift averaging
      (or, for a 3-D model, Gaussian-blended sliding windows of the patch), view
      averaging, resampling back and argmax (see :mod:`kerasseg.export.volume`).

    A 3-D model (inputs ``(B, D, H, W, C)``) is exported with ``volume`` (mode ``"3d"``);
    its ``serving_default`` takes windows ``[batch, d, h, w, C]`` of the training patch
    (``input_size``, by default ``volume["patch_size"]``), already normalized, and it has
    no ``serving_bytes``.

    Bad input fails inside the graph with an ``InvalidArgumentError`` that says what was
    expected (shape and channel count, PNG/JPEG bytes); a wrong dtype is refused by
    TensorFlow itself ("Expects arg[0] to be float but ... is provided").

    Next to the version folder the function writes ``models.config`` (every version
    present in ``export_dir``, base path ``serving_base_path/model_name``),
    ``batching_parameters.txt`` (when ``batching``) and ``MODEL_CARD.md``.

    Args:
        model: a Keras segmentation model ``(B, H, W, C) -> (B, H, W, K)`` giving logits
            or probabilities.
        export_dir: the model's base folder (holds the numbered versions).
        version: positive int, the version folder name.
        model_name: the name clients use; default: the base name of ``export_dir``.
        normalization: how training normalized intensities, applied by
            ``serving_bytes``; ``None`` means stored intensities as float32. See
            :mod:`kerasseg.export.normalization` for the dict format (it accepts
            ``Normalizer.to_dict()`` from :mod:`kerasseg.data.preprocess`).
        input_size: ``(height, width)``, multiples of the stride, to export a
            dynamic-size model at one fixed size (both signatures then behave as for a
            fixed-size model); needed for models that cannot be traced with unknown
            sizes. ``None`` keeps the model's own input size.
        bytes_signature: ``True`` to require ``serving_bytes``, ``False`` to leave it
            out, ``None`` (default) to add it when the channel count is 1, 3 or 4.
        output_activation: ``"auto"`` (detect a final softmax/sigmoid layer), ``"logits"``,
            ``"softmax"`` or ``"sigmoid"`` (the model already ends with it).
        stride: the model's total stride; inferred when ``None``.
        canvas: ``(height, width)`` that dynamic-size inputs are padded to at least, centred
            (the training patch of a model with instance or group normalization, whose
            statistics include the padding: :func:`kerasseg.deploy.export_trained` passes
            it); ``None`` pads to the stride only.
        overwrite: replace an existing ``export_dir/<version>``.
        serving_base_path: where ``export_dir``'s parent is mounted in the serving
            container; the config's base path is ``serving_base_path/model_name``.
        batching: write ``batching_parameters.txt``.
        volume: for a model trained on 3-D volumes, the training preprocessing spec
            (``mode``, ``context``, ``slice_axis``, ``target_spacing``, ``patch_size``, as
            stored by training), optionally with the ``shift_offsets`` its prediction
            averages (see :class:`kerasseg.inference.Predictor`); it adds the
            ``serving_volume`` signature, is kept in the export metadata, and the model
            card spells out how a client turns a volume into the model's input and back.
            ``patch_size`` is the tile size of slices larger than it (``None``: slices are
            never tiled) and the sliding window of a 3-D model. ``None`` for models of 2-D
            images.
        class_names: names of the output channels, listed in the metadata and the card.

    Returns:
        The path of the version folder, ``export_dir/<version>``.

    Raises:
        ValueError: for an invalid argument (the message names it and what is valid).
        FileExistsError: if the version exists and ``overwrite`` is False.

    Example:
        >>> model = kerasseg.build("unet", input_shape=(256, 256, 1), num_classes=2)
        >>> kerasseg.export.saved_model(model, "exported/unet", version=1,
        ...                             normalization={"method": "zscore"})  # doctest: +SKIP
        'exported/unet/1'
    """
    export_dir = os.fspath(export_dir)
    check_version(version)
    if model_name is None:
        model_name = os.path.basename(os.path.normpath(os.path.abspath(export_dir)))
    check_model_name(model_name)
    if bytes_signature not in (None, True, False):
        raise ValueError(
            "`bytes_signature` must be one of [None, True, False]. "
            f"Received: bytes_signature={bytes_signature!r}"
        )
    if not isinstance(serving_base_path, str) or not serving_base_path.startswith("/"):
        raise ValueError(
            "`serving_base_path` must be an absolute path inside the serving container, "
            f"such as '/models'. Received: serving_base_path={serving_base_path!r}"
        )
    spec = normalization_spec(normalization)
    model = float32_model(model)  # a mixed-precision model exports in float32
    three_d = len(model.inputs[0].shape) == 5 if getattr(model, "inputs", None) else False
    if three_d and volume is None:
        raise ValueError(
            "A 3-D model is exported with `volume`, its training preprocessing spec (mode "
            "'3d' and the patch size, the sliding window of `serving_volume`). "
            "Received: volume=None")
    if three_d and input_size is None and isinstance(volume, dict) and volume.get("patch_size"):
        input_size = tuple(volume["patch_size"])  # the window size serving_default takes
    info = model_info(model, output_activation=output_activation, stride=stride,
                      input_size=input_size, canvas=canvas)
    check_channels(spec, info.channels)
    volume = _check_volume(volume, info.channels)
    if volume is not None and (volume["mode"] == "3d") != info.volumetric:
        raise ValueError(
            f"`volume['mode']` {volume['mode']!r} does not fit a "
            f"{'3-D' if info.volumetric else '2-D'} model (mode '3d' is for 3-D models, "
            "'2d' and '2.5d' for slice models).")
    if volume is not None and info.volumetric and volume.get("patch_size") is None:
        volume["patch_size"] = [info.depth, info.height, info.width]
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        # A one-channel sigmoid model may name its two classes.
        if len(class_names) not in (info.num_classes, max(info.num_classes, 2)):
            raise ValueError(
                f"`class_names` must name the model's {info.num_classes} output channel(s). "
                f"Received: class_names={class_names!r}"
            )
    decodable = info.channels in DECODABLE_CHANNELS and not info.volumetric
    if bytes_signature and not decodable:
        if info.volumetric:
            raise ValueError(
                "`bytes_signature=True` is for 2-D models (PNG and JPEG hold images); "
                "a 3-D model is served by `serving_default` (windows) and `serving_volume`.")
        raise ValueError(
            "`bytes_signature=True` needs a model with 1, 3 or 4 input channels (what PNG "
            f"and JPEG hold). Received: a model with {info.channels} channels"
        )
    with_bytes = decodable if bytes_signature is None else bytes_signature
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"{target} already exists; pass overwrite=True to replace it, or choose "
            "another version."
        )

    try:
        signatures = _trace(model, info, spec, with_bytes)
    except TypeError as error:  # includes OperatorNotAllowedInGraphError
        if not info.dynamic:
            raise
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "Exception encountered" in line),
                      lines[-1] if lines else "")
        raise ValueError(
            f"Model {model.name!r} cannot be traced with unknown height and width "
            f"({type(error).__name__}: {reason}). Export it at a fixed size with "
            f"input_size=(height, width), multiples of its stride {info.stride}."
        ) from error
    recipe = None
    if volume is not None:
        # Whole volumes in, labels out: the recipe of Predictor.predict_case in the graph.
        recipe = _volume.volume_recipe(volume, info, spec, tuple(model.inputs[0].shape))
        signatures[_volume.VOLUME_SIGNATURE] = _volume.trace_volume_fn(model, recipe)
    # A bare tf.Module holding the functions and the tf.Variables they read: the
    # SavedModel then holds graphs and weights only, loadable without Keras or kerasseg.
    module = tf.Module()
    module.model_variables = function_variables(signatures.values())

    metadata = {
        "format": "kerasseg-export-1",
        "model_name": model_name,
        "version": version,
        "architecture": model.name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input_size": None if info.dynamic else [v for v in info.input_shape[:-1]],
        "dynamic_size": info.dynamic,
        "channels": info.channels,
        "num_classes": info.num_classes,
        "activation": info.activation,
        "stride": info.stride if info.dynamic else None,
        "normalization": spec,
        "mask_pad_value": MASK_PAD_VALUE,
        "signatures": _signature_table(info, with_bytes, recipe),
    }
    if class_names is not None:
        metadata["class_names"] = class_names
    if volume is not None:
        metadata["volume"] = volume

    with atomic_dir(target, overwrite) as saved:
        tf.saved_model.save(module, saved, signatures=signatures)
        write_text_atomic(os.path.join(saved, METADATA_FILE), json.dumps(metadata, indent=2))

    versions = present_versions(export_dir)
    base = serving_base_path.rstrip("/") + "/" + model_name
    write_model_config(os.path.join(export_dir, "models.config"),
                       [ModelEntry(model_name, base_path=base, versions=versions)])
    if batching:
        write_batching_config(os.path.join(export_dir, "batching_parameters.txt"))
    write_text_atomic(os.path.join(export_dir, "MODEL_CARD.md"),
                      _card.model_card(metadata, versions, serving_base_path,
                                       folder=os.path.basename(os.path.abspath(export_dir))))
    return target


def _trace(model, info, spec, with_bytes):
    """Trace the serving functions into concrete functions, by signature name."""
    signatures = {
        TENSOR_SIGNATURE: tf.function(
            make_tensor_fn(model, info), input_signature=[tensor_signature_spec(info)],
        ).get_concrete_function()
    }
    if with_bytes:
        signatures[BYTES_SIGNATURE] = tf.function(
            make_bytes_fn(model, info, spec), input_signature=[bytes_signature_spec()],
        ).get_concrete_function()
    return signatures


def _signature_table(info, with_bytes, recipe=None):
    spatial = [-1 if v is None else v for v in info.input_shape[:-1]]
    table = {
        TENSOR_SIGNATURE: {
            "inputs": {TENSOR_INPUT: {"dtype": "float32",
                                      "shape": [-1, *spatial, info.channels]}},
            "outputs": {
                "probabilities": {"dtype": "float32",
                                  "shape": [-1, *spatial, info.num_classes]},
                "mask": {"dtype": "int32", "shape": [-1, *spatial]},
            },
        }
    }
    if with_bytes:
        table[BYTES_SIGNATURE] = {
            "inputs": {BYTES_INPUT: {"dtype": "string", "shape": [-1]}},
            "outputs": {
                "mask": {"dtype": "int32", "shape": [-1, -1, -1]},
                "image_size": {"dtype": "int32", "shape": [-1, 2]},
            },
        }
    if recipe is not None:
        table[_volume.VOLUME_SIGNATURE] = _volume.volume_signature_table(recipe)
    return table


def read_export_metadata(version_dir):
    """Read the ``assets.extra/kerasseg_export.json`` written with a SavedModel.

    Args:
        version_dir: a version folder written by :func:`saved_model`.

    Returns:
        The metadata dict (sizes, normalization, signatures, ...).

    Raises:
        FileNotFoundError: if the folder has no such file.

    Example:
        >>> read_export_metadata("exported/unet/1")["signatures"].keys()  # doctest: +SKIP
        dict_keys(['serving_default', 'serving_bytes'])
    """
    path = os.path.join(os.fspath(version_dir), METADATA_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No kerasseg export metadata at {path}")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


__all__ = ["saved_model", "read_export_metadata"]
