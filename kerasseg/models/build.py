"""Construct a registered model family by name (:func:`kerasseg.build` adds zoo weights)."""

import os

from kerasseg.models import registry


def _check_input_shape(input_shape):
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be a tuple (height, width, channels); height and width may "
            f"be None. Received: input_shape={input_shape!r}"
        )
    height, width, channels = input_shape
    for axis, value in (("height", height), ("width", width)):
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ValueError(
                f"`input_shape` {axis} must be a positive int or None. "
                f"Received: input_shape={input_shape!r}"
            )
    if not isinstance(channels, int) or channels <= 0:
        raise ValueError(
            "`input_shape` channels must be a positive int (the channel count cannot be None). "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(input_shape)


def check_request(name, input_shape, num_classes, weights, options):
    """Check a build request; return the canonical family name and the input shape.

    Args:
        name: a family name or alias, as :func:`build` takes it.
        input_shape: ``(height, width, channels)``.
        num_classes: the number of output channels.
        weights: ``None``, a path or a zoo entry name (only its type is checked here).
        options: the dict of family options.

    Returns:
        ``(canonical_name, input_shape_as_tuple)``.

    Raises:
        ValueError: for an unknown name, an unknown option (the valid ones are listed),
            an invalid ``input_shape`` or ``num_classes``, or a ``weights`` that is neither
            ``None`` nor a string or path.

    Example:
        >>> check_request("DeepLabV3Plus", (None, None, 1), 2, None, {"backbone": "small"})
        ('deeplab', (None, None, 1))
    """
    canonical = registry.resolve_name(name)
    input_shape = _check_input_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
        )
    valid = registry.builder_options(canonical)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for model {canonical!r}. "
            f"Valid options are {valid}."
        )
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "`weights` must be None, a path to a .weights.h5 file or a zoo entry name. "
            f"Received: weights={weights!r}"
        )
    return canonical, input_shape


def build(name, /, *, input_shape=(None, None, 1), num_classes=2, weights=None, **options):
    """Build a segmentation model by family name, with random or saved weights.

    This is the models layer's builder: it knows weight files, not the zoo.
    :func:`kerasseg.build` takes the same arguments and also accepts a zoo entry's name
    as ``weights``.

    Args:
        name: a name from :func:`kerasseg.list_models` (``"unet"``, ``"fcn8s"``,
            ``"deeplab"``) or an alias (``"deeplabv3plus"``); case-insensitive.
        input_shape: ``(height, width, channels)``. Height and width may be ``None``
            (any size that is a multiple of the model's total stride); channels is any
            positive count.
        num_classes: number of output channels (classes including background; 1 for a
            single sigmoid output).
        weights: ``None`` (random initialization) or a path to a ``.weights.h5`` file.
        **options: family-specific options such as ``depth`` or ``backbone``; see each
            family's builder (``kerasseg.models.unet.build_unet`` and so on).

    Returns:
        A Keras 3 functional ``keras.Model`` mapping ``(B, H, W, C)`` images to
        ``(B, H, W, num_classes)`` outputs (logits unless ``output_activation`` says
        otherwise).

    Raises:
        ValueError: for an unknown name, an unknown option (the valid ones are listed),
            an invalid ``input_shape`` or ``num_classes``, or an option value the family
            rejects.
        FileNotFoundError: if ``weights`` is a path that does not exist.

    Example:
        >>> from kerasseg.models import build
        >>> model = build("unet", input_shape=(256, 256, 1), num_classes=3, depth=4,
        ...               base_filters=32)
        >>> model.output_shape
        (None, 256, 256, 3)
    """
    canonical, input_shape = check_request(name, input_shape, num_classes, weights, options)
    if weights is not None and not os.path.exists(weights):
        hint = "" if str(weights).endswith(".h5") else (
            " (a zoo entry name is accepted by kerasseg.build, not by kerasseg.models.build)")
        raise FileNotFoundError(f"`weights` file not found: {weights}{hint}")
    model = registry.get_builder(canonical)(
        input_shape=input_shape, num_classes=num_classes, **options
    )
    if weights is not None:
        model.load_weights(weights)
    return model
