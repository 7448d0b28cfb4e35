"""The registry of model families behind :func:`kerasseg.build`.

Each family module registers one builder with :func:`register_model`. A builder is a
function ``builder(input_shape, num_classes, **options) -> keras.Model`` whose keyword
options are all named in its signature, so that unknown options can be rejected with the
valid ones listed.
"""

import inspect

_BUILDERS = {}
_ALIASES = {}
_STRIDES = {}


def register_model(name, aliases=(), stride=None):
    """Register a model builder under ``name`` (and optional aliases).

    Args:
        name: canonical, lower-case model name such as ``"unet"``.
        aliases: other names that resolve to the same builder.
        stride: optional function ``stride(**options) -> int`` giving the number that
            input height and width must be multiples of, for the given options
            (missing options take the builder's defaults).

    Returns:
        A decorator that registers the builder and returns it unchanged.

    Raises:
        ValueError: if ``name`` or an alias is already registered.

    Example:
        >>> @register_model("tiny")
        ... def build_tiny(input_shape, num_classes, *, width=8): ...
    """

    def decorator(builder):
        for key in (name, *aliases):
            if key in _BUILDERS or key in _ALIASES:
                raise ValueError(f"Model name {key!r} is already registered.")
        _BUILDERS[name] = builder
        _STRIDES[name] = stride
        for alias in aliases:
            _ALIASES[alias] = name
        return builder

    return decorator


def list_models():
    """Return the canonical names of the registered model families, sorted.

    Returns:
        A list of strings, e.g. ``["deeplab", "fcn8s", "unet"]``.

    Example:
        >>> import kerasseg
        >>> kerasseg.list_models()
        ['deeplab', 'fcn8s', 'unet']
    """
    return sorted(_BUILDERS)


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


def total_stride(name, **options):
    """Return the number that input height and width must be multiples of.

    Args:
        name: a model name or alias.
        **options: the family options the model is built with.

    Returns:
        An int (for example ``2 ** depth`` for a U-Net).

    Example:
        >>> total_stride("unet", depth=3)
        8
    """
    canonical = resolve_name(name)
    defaults = {
        key: param.default
        for key, param in inspect.signature(_BUILDERS[canonical]).parameters.items()
        if param.default is not inspect.Parameter.empty
    }
    stride = _STRIDES[canonical]
    if stride is None:
        return 1
    return int(stride(**{**defaults, **options}))
