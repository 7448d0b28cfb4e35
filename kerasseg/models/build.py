"""Construct a registered model family by name (:func:`kerasseg.build` adds zoo weights)."""

import os

from kerasseg.models import registry


AXES = {2: ("height", "width"), 3: ("depth", "height", "width")}


def _check_input_shape(input_shape, dims, canonical):
    axes = AXES[dims]
    layout = ", ".join(axes + ("channels",))
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != dims + 1:
        raise ValueError(
            f"`input_shape` must be a tuple ({layout}) for the {dims}-D model {canonical!r}; "
            f"{', '.join(axes[:-1])} and {axes[-1]} may be None. Received: input_shape={input_shape!r}"
        )
    *sizes, channels = input_shape
    for axis, value in zip(axes, sizes):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            raise ValueError(
                f"`input_shape` {axis} must be a positive int or None. "
                f"Received: input_shape={input_shape!r}"
            )
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise ValueError(
            "`input_shape` channels must be a positive int (the channel count cannot be None). "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(input_shape)


def default_input_shape(name):
    """Return the input shape a family is built with when none is given.

    Args:
        name: a family name or alias.

    Returns:
        ``(None, None, 1)`` for a 2-D family, ``(None, None, None, 1)`` for a 3-D one: any
        size (a multiple of the stride), one channel.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> default_input_shape("unet"), default_input_shape("vnet")
        ((None, None, 1), (None, None, None, 1))
    """
    return (None,) * registry.spatial_dims(name) + (1,)


def check_request(name, input_shape, num_classes, weights, options):
    """Check a build request; return the canonical family name and the input shape.

    Args:
        name: a family name or alias, as :func:`build` takes it.
        input_shape: ``(height, width, channels)`` for a 2-D family, ``(depth, height,
            width, channels)`` for a 3-D one, or ``None`` for :func:`default_input_shape`.
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
        >>> check_request("vnet", None, 2, None, {})
        ('vnet', (None, None, None, 1))
    """
    canonical = registry.resolve_name(name)
    if input_shape is None:
        input_shape = default_input_shape(canonical)
    input_shape = _check_input_shape(input_shape, registry.spatial_dims(canonical), canonical)
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


def build(name, /, *, input_shape=None, num_classes=2, weights=None, **options):
    """Build a segmentation model by family name, with random or saved weights.

    This is the models layer's builder: it knows weight files, not the zoo.
    :func:`kerasseg.build` takes the same arguments and also accepts a zoo entry's name
    as ``weights``.

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
        weights: ``None`` (random initialization) or a path to a ``.weights.h5`` file.
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
            an invalid ``input_shape`` or ``num_classes``, or an option value the family
            rejects.
        FileNotFoundError: if ``weights`` is a path that does not exist.

    Example:
        >>> from kerasseg.models import build
        >>> model = build("unet", input_shape=(256, 256, 1), num_classes=3, depth=4,
        ...               base_filters=32)
        >>> model.output_shape
        (None, 256, 256, 3)
        >>> build("vnet", input_shape=(16, 32, 32, 1), num_classes=2, depth=2,
        ...       base_filters=4).output_shape
        (None, 16, 32, 32, 2)
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
