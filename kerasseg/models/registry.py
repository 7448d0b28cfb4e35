"""The registry of model families behind :func:`kerasseg.build`.

Each family module registers one builder with :func:`register_model`. A builder is a
function ``builder(input_shape, num_classes, **options) -> keras.Model`` whose keyword
options are all named in its signature, so that unknown options can be rejected with the
valid ones listed.

Each family also declares its spatial dimensionality: 2 for image models, whose input is
``(height, width, channels)``, and 3 for volume models, whose input is
``(depth, height, width, channels)``. Its stride is the factor by which it downsamples
each spatial axis; input sizes must be multiples of it. :func:`stride_per_axis` gives the
stride of every axis, and :func:`total_stride` one int (the common stride, or for a model
whose strides differ between axes their least common multiple).
"""

import inspect
import math

_BUILDERS = {}
_ALIASES = {}
_STRIDES = {}
_SPATIAL_DIMS = {}

SPATIAL_DIMS = (2, 3)


def register_model(name, aliases=(), stride=None, spatial_dims=2):
    """Register a model builder under ``name`` (and optional aliases).

    Args:
        name: canonical, lower-case model name such as ``"unet"``.
        aliases: other names that resolve to the same builder.
        stride: optional function ``stride(**options)`` giving the numbers that the input's
            spatial sizes must be multiples of, for the given options (missing options take
            the builder's defaults): an int for every axis alike, or a tuple of one int per
            spatial axis (``(depth, height, width)`` for a 3-D family).
        spatial_dims: 2 for a family of image models (input ``(height, width,
            channels)``), 3 for volume models (input ``(depth, height, width, channels)``).

    Returns:
        A decorator that registers the builder and returns it unchanged.

    Raises:
        ValueError: if ``name`` or an alias is already registered, or ``spatial_dims``
            is not 2 or 3.

    Example:
        >>> @register_model("tiny")
        ... def build_tiny(input_shape, num_classes, *, width=8): ...
        >>> @register_model("tiny3d", spatial_dims=3, stride=lambda **_: (1, 2, 2))
        ... def build_tiny3d(input_shape, num_classes, *, width=8): ...
        >>> spatial_dims("tiny3d"), stride_per_axis("tiny3d")
        (3, (1, 2, 2))
    """
    if spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"`spatial_dims` must be one of {list(SPATIAL_DIMS)}. "
                         f"Received: spatial_dims={spatial_dims!r}")

    def decorator(builder):
        for key in (name, *aliases):
            if key in _BUILDERS or key in _ALIASES:
                raise ValueError(f"Model name {key!r} is already registered.")
        _BUILDERS[name] = builder
        _STRIDES[name] = stride
        _SPATIAL_DIMS[name] = spatial_dims
        for alias in aliases:
            _ALIASES[alias] = name
        return builder

    return decorator


def list_models(spatial_dims=None):
    """Return the canonical names of the registered model families, sorted.

    Args:
        spatial_dims: ``None`` for every family, 2 for the image (2-D) families only,
            3 for the volume (3-D) families only.

    Returns:
        A list of strings, e.g. ``["deeplab", "fcn8s", "unet"]`` for ``spatial_dims=2``.

    Raises:
        ValueError: if ``spatial_dims`` is not ``None``, 2 or 3.

    Example:
        >>> import kerasseg
        >>> kerasseg.list_models()
        ['deeplab', 'fcn8s', 'unet', 'unet3d', 'vnet']
        >>> kerasseg.list_models(spatial_dims=2)
        ['deeplab', 'fcn8s', 'unet']
        >>> kerasseg.list_models(spatial_dims=3)
        ['unet3d', 'vnet']
    """
    if spatial_dims is not None and spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"`spatial_dims` must be None or one of {list(SPATIAL_DIMS)}. "
                         f"Received: spatial_dims={spatial_dims!r}")
    return sorted(name for name in _BUILDERS
                  if spatial_dims is None or _SPATIAL_DIMS[name] == spatial_dims)


def spatial_dims(name):
    """Return the spatial dimensionality of a model family: 2 (images) or 3 (volumes).

    Args:
        name: a model name or alias, case-insensitive.

    Returns:
        2 for a family whose input is ``(height, width, channels)``, 3 for one whose input
        is ``(depth, height, width, channels)``.

    Raises:
        ValueError: if the name is unknown; the message lists the valid names.

    Example:
        >>> spatial_dims("unet"), spatial_dims("unet3d")
        (2, 3)
    """
    return _SPATIAL_DIMS[resolve_name(name)]


def resolve_name(name):
    """Return the canonical model name for ``name`` or an alias of it.

    Args:
        name: a model name or alias, case-insensitive.

    Returns:
        The canonical name.

    Raises:
        ValueError: if the name is unknown; the message lists the valid names.
    """
    key = str(name).lower() if isinstance(name, str) else name
    if key in _BUILDERS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    valid = sorted(list(_BUILDERS) + list(_ALIASES))
    raise ValueError(f"`name` must be one of {valid}. Received: name={name!r}")


def get_builder(name):
    """Return the builder function registered for ``name`` (or an alias)."""
    return _BUILDERS[resolve_name(name)]


def builder_options(name):
    """Return the option names (keyword arguments) accepted by a model family.

    Args:
        name: a model name or alias.

    Returns:
        A sorted list of option names, excluding ``input_shape`` and ``num_classes``.
    """
    params = inspect.signature(get_builder(name)).parameters
    return sorted(p for p in params if p not in ("input_shape", "num_classes"))


def stride_per_axis(name, **options):
    """Return the total downsampling of each spatial axis of a model family.

    Every spatial size of the input must be a multiple of its axis' stride.

    Args:
        name: a model name or alias.
        **options: the family options the model is built with (the others take the
            builder's defaults).

    Returns:
        A tuple of ints, one per spatial axis: ``(height, width)`` strides for a 2-D
        family, ``(depth, height, width)`` for a 3-D one.

    Raises:
        ValueError: if the name is unknown.

    Example:
        >>> stride_per_axis("unet", depth=3)
        (8, 8)
        >>> stride_per_axis("unet3d", depth=2, pool_sizes=[(1, 2, 2), (2, 2, 2)])
        (2, 4, 4)
    """
    canonical = resolve_name(name)
    defaults = {
        key: param.default
        for key, param in inspect.signature(_BUILDERS[canonical]).parameters.items()
        if param.default is not inspect.Parameter.empty
    }
    stride = _STRIDES[canonical]
    dims = _SPATIAL_DIMS[canonical]
    value = 1 if stride is None else stride(**{**defaults, **options})
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * dims


def total_stride(name, **options):
    """Return the number that every spatial size of the input may be a multiple of.

    For a model that downsamples every axis alike (all 2-D families, and 3-D ones with
    isotropic pooling) this is that stride, and sizes must be multiples of it. For a model
    whose strides differ between axes (an anisotropic 3-D U-Net) it is their least common
    multiple: sizes that are multiples of it are accepted on every axis, but the exact
    requirement is per axis (:func:`stride_per_axis`).

    Args:
        name: a model name or alias.
        **options: the family options the model is built with.

    Returns:
        An int (for example ``2 ** depth`` for a U-Net).

    Raises:
        ValueError: if the name is unknown.

    Example:
        >>> total_stride("unet", depth=3)
        8
        >>> total_stride("unet3d", depth=2, pool_sizes=[(1, 2, 2), (2, 2, 2)])
        4
    """
    strides = stride_per_axis(name, **options)
    return math.lcm(*strides)
