"""Starting a model from other weights: a zoo entry or a file, with a new head if needed."""

import logging
import os

log = logging.getLogger("kerasseg")

# Layer-name prefixes of the decoder and head; everything else counts as encoder.
_DECODER_PREFIXES = ("dec", "head", "score", "upscore", "fuse", "aspp", "decoder")


def _source_model(init_weights):
    from kerasseg.modelfile import load_model

    if os.path.exists(init_weights) and str(init_weights).endswith(".keras"):
        return load_model(init_weights)[0]
    from kerasseg import zoo

    return zoo.load(init_weights)


def source_info(init_weights):
    """Return the stored description of the model that ``init_weights`` names, if any.

    Args:
        init_weights: a ``.keras`` file, a ``.weights.h5`` file or a zoo entry name.

    Returns:
        The :class:`kerasseg.description.ModelInfo` stored with the model (``model``,
        ``model_options``, ``preprocessing``, ...), or ``None`` for a ``.weights.h5`` file
        or a ``.keras`` file saved without one.

    Raises:
        FileNotFoundError: if a ``.keras`` file does not exist.
        ValueError: for a name that is neither a file nor a zoo entry, or invalid info.

    Example:
        >>> source_info("hippocampus-unet").model_options["depth"]
        3
    """
    from kerasseg.modelfile import read_info

    init_weights = os.fspath(init_weights)
    if init_weights.endswith(".weights.h5"):
        return None
    if init_weights.endswith(".keras"):
        if not os.path.exists(init_weights):
            raise FileNotFoundError(f"`init_weights` file not found: {init_weights}")
        return read_info(init_weights)
    from kerasseg import zoo

    return read_info(zoo.fetch(init_weights))


def load_init_weights(model, init_weights):
    """Copy weights into ``model`` layer by layer, by layer name, where shapes match.

    Layers missing from the source, or whose weight shapes differ (typically the
    classifier when the class count changes, or the first convolution when the channel
    count changes), keep their fresh initialization; the log lists them. A classifier
    that is not copied (``head_*`` or ``score_*`` layers) starts at zero instead: uniform
    class probabilities, so the new head learns from the copied features from the first
    step rather than first undoing large random logits.

    Args:
        model: the freshly built target model.
        init_weights: a ``.keras`` file, a ``.weights.h5`` file of the same architecture,
            or a zoo entry name.

    Returns:
        A dict with the lists ``copied`` and ``skipped`` (layer names).

    Raises:
        FileNotFoundError: if a file path does not exist.
        ValueError: for an unknown zoo entry, or if no layer could be copied.

    Example:
        >>> load_init_weights(model, "hippocampus-unet")  # doctest: +SKIP
    """
    init_weights = os.fspath(init_weights)
    if init_weights.endswith(".weights.h5"):
        if not os.path.exists(init_weights):
            raise FileNotFoundError(f"`init_weights` file not found: {init_weights}")
        model.load_weights(init_weights)
        return {"copied": [layer.name for layer in model.layers], "skipped": []}
    if init_weights.endswith(".keras") and not os.path.exists(init_weights):
        raise FileNotFoundError(f"`init_weights` file not found: {init_weights}")
    source = _source_model(init_weights)
    by_name = {layer.name: layer for layer in source.layers}
    copied, skipped = [], []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        other = by_name.get(layer.name)
        other_weights = other.get_weights() if other is not None else None
        if other_weights is None or [w.shape for w in other_weights] != [w.shape for w in weights]:
            skipped.append(layer.name)
            if layer.name.startswith(("head", "score")):
                layer.set_weights([w * 0 for w in weights])
            continue
        layer.set_weights(other_weights)
        copied.append(layer.name)
    if not copied:
        raise ValueError(
            f"`init_weights` {init_weights!r} shares no layer (by name and shape) with the "
            f"model {model.name!r}: is it the same architecture?"
        )
    log.info("initialized %d layers from %s; kept fresh: %s", len(copied), init_weights,
             skipped or "none")
    return {"copied": copied, "skipped": skipped}


def set_encoder_trainable(model, trainable):
    """Freeze or unfreeze the encoder (every layer not in the decoder or head).

    Args:
        model: a kerasseg model.
        trainable: ``False`` to freeze the encoder, ``True`` to unfreeze it.

    Returns:
        The number of layers changed.
    """
    changed = 0
    for layer in model.layers:
        if not layer.weights or layer.name.startswith(_DECODER_PREFIXES):
            continue
        layer.trainable = trainable
        changed += 1
    return changed
