"""TF Serving configuration files: ``models.config`` and ``batching_parameters.txt``.

``models.config`` is a text-format ``ModelServerConfig`` protocol buffer (the file given
to ``tensorflow_model_server --model_config_file``): one ``config`` block per model with
its name, its base path as the server sees it (inside the container) and which versions
to serve. ``batching_parameters.txt`` is the text-format ``BatchingParameters`` given to
``--enable_batching --batching_parameters_file``.

Example:
    >>> write_model_config("models/models.config", [
    ...     ModelEntry("unet", versions=[1, 2], labels={"stable": 1, "canary": 2}),
    ...     ModelEntry("fcn8s"),
    ... ])
    'models/models.config'
"""

import os
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Union

from kerasseg.files import write_text_atomic

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
VERSION_POLICIES = ("latest", "all", "specific")


def check_model_name(name):
    """Raise ``ValueError`` unless ``name`` is a usable TF Serving model name.

    Names appear in URLs (``/v1/models/NAME``) and in the config file, so they are
    restricted to letters, digits, ``_``, ``.`` and ``-``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            "`model_name` must start with a letter or digit and contain only letters, "
            f"digits, '_', '.' and '-'. Received: model_name={name!r}"
        )
    return name


def check_version(version, name="version"):
    """Raise ``ValueError`` unless ``version`` is a positive int; return it."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={version!r}")
    return version


@dataclass
class ModelEntry:
    """One model in ``models.config``.

    Attributes:
        name: the model name clients use (``/v1/models/NAME``).
        base_path: the folder holding the numbered versions, as TF Serving sees it;
            default ``/models/NAME`` (the usual container mount point).
        versions: ``None`` or ``"latest"`` (the highest version only, TF Serving's
            default), ``"all"``, or a list of version numbers to serve side by side.
        labels: optional ``{"stable": 1, "canary": 2}`` aliases of served versions.
    """

    name: str
    base_path: Optional[str] = None
    versions: Union[None, str, Sequence[int]] = None
    labels: Dict[str, int] = field(default_factory=dict)

    def to_text(self):
        """Return the ``config { ... }`` block of this model."""
        check_model_name(self.name)
        base_path = self.base_path or f"/models/{self.name}"
        if "'" in base_path or "\n" in base_path:
            raise ValueError(
                "`base_path` must not contain quotes or newlines. "
                f"Received: base_path={base_path!r}"
            )
        lines = [
            "  config {",
            f"    name: '{self.name}'",
            f"    base_path: '{base_path}'",
            "    model_platform: 'tensorflow'",
        ]
        versions = self.versions
        if versions == "all":
            lines.append("    model_version_policy { all {} }")
        elif versions not in (None, "latest"):
            if isinstance(versions, str) or not list(versions):
                raise ValueError(
                    f"`versions` must be one of {list(VERSION_POLICIES[:2])} or a non-empty "
                    f"list of positive ints. Received: versions={versions!r}"
                )
            values = sorted({check_version(v, "versions") for v in versions})
            lines.append("    model_version_policy {")
            lines.append("      specific {")
            lines.extend(f"        versions: {v}" for v in values)
            lines.append("      }")
            lines.append("    }")
        for label, version in sorted((self.labels or {}).items()):
            if not isinstance(label, str) or not _NAME.match(label):
                raise ValueError(
                    "`labels` keys must be names made of letters, digits, '_', '.' and '-'. "
                    f"Received: label={label!r}"
                )
            check_version(version, f"labels[{label!r}]")
            lines.append("    version_labels {")
            lines.append(f"      key: '{label}'")
            lines.append(f"      value: {version}")
            lines.append("    }")
        lines.append("  }")
        return "\n".join(lines)


def model_config_text(models):
    """Return the text of a ``ModelServerConfig`` serving ``models``.

    Args:
        models: a list of :class:`ModelEntry` (or dicts with its fields).

    Returns:
        The text-format protocol buffer.

    Raises:
        ValueError: for an empty list, duplicate names or invalid entries.
    """
    entries = [m if isinstance(m, ModelEntry) else ModelEntry(**m) for m in models]
    if not entries:
        raise ValueError("`models` must list at least one model. Received: models=[]")
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"`models` must have distinct names. Received: names={names}")
    body = "\n".join(e.to_text() for e in entries)
    return (
        "# TF Serving ModelServerConfig (text format), for --model_config_file.\n"
        "# base_path is the path inside the serving container.\n"
        f"model_config_list {{\n{body}\n}}\n"
    )


def write_model_config(path, models):
    """Write ``models.config`` for ``tensorflow_model_server --model_config_file``.

    Args:
        path: the file to write (atomically).
        models: a list of :class:`ModelEntry` or dicts with its fields.

    Returns:
        ``path``.

    Raises:
        ValueError: see :func:`model_config_text`.

    Example:
        >>> write_model_config("exported/models.config",
        ...                    [ModelEntry("unet", versions=[1, 2])])
        'exported/models.config'
    """
    return write_text_atomic(path, model_config_text(models))


BATCHING_DEFAULTS = {
    "max_batch_size": 16,
    "batch_timeout_micros": 2000,
    "max_enqueued_batches": 100,
    "num_batch_threads": 4,
}


def batching_config_text(max_batch_size=16, batch_timeout_micros=2000,
                         max_enqueued_batches=100, num_batch_threads=4,
                         allowed_batch_sizes=None):
    """Return the text of a TF Serving ``BatchingParameters`` file.

    Args:
        max_batch_size: the largest batch the server forms from queued requests.
        batch_timeout_micros: how long a partial batch waits for more requests.
        max_enqueued_batches: queue length before requests are refused.
        num_batch_threads: batches processed in parallel (about the CPU cores).
        allowed_batch_sizes: optional increasing list ending in ``max_batch_size``;
            batches are padded up to the next allowed size.

    Returns:
        The text-format protocol buffer.

    Raises:
        ValueError: for non-positive values or an inconsistent ``allowed_batch_sizes``.
    """
    values = {
        "max_batch_size": max_batch_size,
        "batch_timeout_micros": batch_timeout_micros,
        "max_enqueued_batches": max_enqueued_batches,
        "num_batch_threads": num_batch_threads,
    }
    for key, value in values.items():
        minimum = 0 if key == "batch_timeout_micros" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"`{key}` must be an int >= {minimum}. Received: {key}={value!r}"
            )
    lines = [f"{key} {{ value: {value} }}" for key, value in values.items()]
    if allowed_batch_sizes is not None:
        sizes = list(allowed_batch_sizes)
        if (not sizes or sizes != sorted(set(sizes)) or sizes[-1] != max_batch_size
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)):
            raise ValueError(
                "`allowed_batch_sizes` must be increasing positive ints ending in "
                f"max_batch_size={max_batch_size}. Received: allowed_batch_sizes={sizes!r}"
            )
        lines.extend(f"allowed_batch_sizes: {s}" for s in sizes)
    header = (
        "# TF Serving BatchingParameters (text format), for\n"
        "# --enable_batching --batching_parameters_file=<this file>.\n"
    )
    return header + "\n".join(lines) + "\n"


def write_batching_config(path, **parameters):
    """Write ``batching_parameters.txt`` (atomically); see :func:`batching_config_text`.

    Args:
        path: the file to write.
        **parameters: arguments of :func:`batching_config_text`.

    Returns:
        ``path``.

    Raises:
        ValueError: for invalid parameters.

    Example:
        >>> write_batching_config("exported/batching_parameters.txt", max_batch_size=8)
        'exported/batching_parameters.txt'
    """
    return write_text_atomic(path, batching_config_text(**parameters))


def present_versions(model_dir):
    """Return the sorted version numbers (numeric sub-folders) in ``model_dir``."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(name) for name in os.listdir(model_dir)
        if name.isdigit() and os.path.isdir(os.path.join(model_dir, name))
    )
