"""Files written whole or not at all, and JSON that keeps NaN and infinity standard.

The package's one implementation of both; every other module uses these functions. It
sits in the bottom layer (see ``.importlinter``) and imports only the standard library.

Atomic writes. A file is written under a temporary name in its target folder, flushed to
disk, then renamed over the target with ``os.replace``, which is atomic on POSIX file
systems: a reader, or a run resumed after a kill, sees either the previous complete file or
the new complete one, never half a file. If the write fails, the temporary file is removed
and the previous file is left as it was. Temporary files are hidden (their names start with
a dot) and end in the target's suffix, so a resumed run can find and delete any that a kill
left behind. Written files get the ordinary permissions of the current umask, not the
owner-only ones of :func:`tempfile.mkstemp`.

* :func:`atomic_path` yields a temporary path for any writer (Keras, Matplotlib, NumPy);
* :func:`write_bytes_atomic`, :func:`write_text_atomic` and :func:`write_json_atomic`
  write whole contents;
* :func:`atomic_files` serves formats that write companion files (a MetaImage ``.mhd``
  header and its ``.raw`` data);
* :func:`atomic_dir` builds a whole folder (a SavedModel version) and swaps it in.

JSON. JSON has no NaN or Infinity. :func:`to_json_compatible` writes such a value as
``null`` and, when asked, lists it in a map ``{JSON pointer (RFC 6901): "nan" | "inf" |
"-inf"}``, which :func:`restore_non_finite` uses to put the values back; NumPy scalars and
arrays become numbers and lists, tuples lists, paths and dates strings, dict keys strings.
:func:`write_json_atomic` applies it, so the files are standard JSON (``allow_nan=False``).

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = write_json_atomic(os.path.join(folder, "state.json"), {"loss": float("nan")})
    >>> read_json(path)
    {'loss': None}
"""

import contextlib
import datetime
import json
import math
import os
import shutil
import tempfile
import threading

# ------------------------------------------------------------------------- atomic writes


_UMASK_LOCK = threading.Lock()


def _umask():
    """Return the process's umask without changing it, where Linux reports it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # reading it elsewhere means setting it: not at once from two threads
        mask = os.umask(0)
        os.umask(mask)
    return mask


def _file_mode():
    """Return the permissions a new file gets under the current umask (e.g. ``0o644``)."""
    return 0o666 & ~_umask()


def _fsync(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary file beside ``path``; when the body succeeds it replaces ``path``.

    The temporary file exists (empty) when the body starts; the body writes it whole, by
    any means. It is then flushed to disk and renamed over ``path``. If the body raises,
    the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the target file; its folder is created if missing.
        suffix: suffix of the temporary file's name (some writers pick the format from
            it); ``None`` for ``path``'s own extension, or ``".tmp"`` if it has none.

    Yields:
        The temporary file's path (a string): ``.<name>.<random><suffix>`` in ``path``'s
        folder.

    Raises:
        OSError: if the folder cannot be created or the file cannot be renamed; whatever
            the body raises, after the temporary file is removed.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "table.csv")
        >>> with atomic_path(target) as temp:
        ...     with open(temp, "w") as handle:
        ...         _ = handle.write("a,b\\n")
        >>> open(target).read()
        'a,b\\n'
    """
    path = os.fspath(path)
    if suffix is None:
        suffix = os.path.splitext(path)[1] or ".tmp"
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        os.chmod(temp, _file_mode())
        yield temp
        _fsync(temp)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(temp)


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Args:
        path: the target file; its folder is created if missing.
        data: the whole contents (bytes).

    Returns:
        ``path`` as a string.

    Raises:
        OSError: if the file cannot be written; ``path`` is then left as it was.

    Example:
        >>> import os, tempfile
        >>> path = write_bytes_atomic(os.path.join(tempfile.mkdtemp(), "m.bin"), b"\\x00\\x01")
        >>> open(path, "rb").read()
        b'\\x00\\x01'
    """
    path = os.fspath(path)
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            handle.write(data)
    return path


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` atomically, UTF-8, without newline translation.

    Args:
        path: the target file; its folder is created if missing.
        text: the whole contents.

    Returns:
        ``path`` as a string.

    Raises:
        OSError: if the file cannot be written; ``path`` is then left as it was.

    Example:
        >>> import os, tempfile
        >>> path = write_text_atomic(os.path.join(tempfile.mkdtemp(), "h.csv"), "epoch\\n1\\n")
        >>> open(path).read()
        'epoch\\n1\\n'
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_files(path):
    """Yield a path in a hidden staging folder beside ``path``, for writers of several files.

    Some formats write companion files next to the one named (a MetaImage ``.mhd`` header
    beside its ``.raw`` data). The body writes the named file at the yielded path; when it
    succeeds, every other file it wrote in the staging folder is renamed into ``path``'s
    folder first and the named file last, so a reader that finds ``path`` finds its
    companions. The staging folder is removed in all cases.

    Args:
        path: the target file; its folder is created if missing.

    Yields:
        The path (a string) to write, with ``path``'s file name.

    Raises:
        OSError: if a file cannot be renamed into place; whatever the body raises (nothing
            is then moved).

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "case.mhd")
        >>> with atomic_files(target) as temp:
        ...     _ = open(temp[:-4] + ".raw", "wb").write(b"\\x00")
        ...     _ = open(temp, "w").write("ElementDataFile = case.raw\\n")
        >>> sorted(os.listdir(os.path.dirname(target)))
        ['case.mhd', 'case.raw']
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    staging = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        target = os.path.join(staging, name)
        yield target
        companions = sorted(entry for entry in os.listdir(staging) if entry != name)
        for entry in companions + [name]:  # data files first, the named file last
            source = os.path.join(staging, entry)
            os.chmod(source, _file_mode())
            _fsync(source)
            os.replace(source, os.path.join(folder, entry))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target, overwrite=False):
    """Yield a new hidden folder beside ``target``; when the body succeeds it becomes ``target``.

    The folder is named ``.tmp-<name>-<random>`` (TF Serving, which loads numbered version
    folders, never picks it up while it is being written) and gets the ordinary permissions
    of the current umask. On success it is renamed to ``target``; an existing ``target``
    is replaced only with ``overwrite`` (it is moved aside first and put back if the
    rename fails). The new folder is removed if the body raises.

    Args:
        target: the final folder; its parent is created if missing.
        overwrite: replace an existing ``target``; otherwise raise.

    Yields:
        The folder's path (a string), empty.

    Raises:
        FileExistsError: if ``target`` exists and ``overwrite`` is False (raised when the
            body has finished; ``target`` is left as it was).

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "1")
        >>> with atomic_dir(target) as folder:
        ...     _ = open(os.path.join(folder, "saved_model.pb"), "wb").write(b"")
        >>> os.listdir(target)
        ['saved_model.pb']
    """
    target = os.fspath(target)
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(target)}-", dir=parent)
    try:
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        if not os.path.exists(target):
            os.rename(staging, target)
            return
        if not overwrite:
            raise FileExistsError(
                f"{target} already exists; pass overwrite=True to replace it, or choose "
                "another version."
            )
        old = f"{staging}-old"
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------- JSON


def _pointer_token(key):
    return str(key).replace("~", "~0").replace("/", "~1")


def to_json_compatible(value, pointer="", non_finite=None):
    """Convert a nested structure to standard JSON types; NaN and infinities become ``None``.

    Dicts keep their order with keys made strings; lists and tuples become lists; NumPy
    scalars and arrays become Python numbers and lists; paths and dates become strings;
    any other object its ``str``. A NaN or infinite number becomes ``None`` and, when
    ``non_finite`` is a dict, is recorded there under its JSON pointer so that
    :func:`restore_non_finite` can put it back.

    Args:
        value: the structure to convert.
        pointer: JSON pointer of ``value`` in the whole document (``""`` for the root).
        non_finite: ``None``, or a dict receiving ``{pointer: "nan" | "inf" | "-inf"}``.

    Returns:
        The converted structure (``value`` itself is not changed).

    Example:
        >>> found = {}
        >>> to_json_compatible({"d": (0.5, float("inf")), 3: float("nan")}, non_finite=found)
        {'d': [0.5, None], '3': None}
        >>> found
        {'/d/1': 'inf', '/3': 'nan'}
    """
    if isinstance(value, dict):
        return {str(k): to_json_compatible(v, f"{pointer}/{_pointer_token(k)}", non_finite)
                for k, v in value.items()}
    if not isinstance(value, (str, bytes)) and callable(getattr(value, "tolist", None)):
        value = value.tolist()  # NumPy arrays and scalars
    if isinstance(value, (list, tuple)):
        return [to_json_compatible(v, f"{pointer}/{i}", non_finite) for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        value = float(value)
        if math.isfinite(value):
            return value
        if non_finite is not None:
            non_finite[pointer] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def restore_non_finite(document, non_finite):
    """Put back, in place, the NaN and infinities that :func:`to_json_compatible` recorded.

    Args:
        document: the JSON document as read (dicts and lists).
        non_finite: the map ``{JSON pointer: "nan" | "inf" | "-inf"}``.

    Returns:
        ``document``, with each listed value set to ``float(text)``.

    Raises:
        KeyError, IndexError: if a pointer names no value of ``document``.
        ValueError: if a pointer is not a JSON pointer to a value inside the document.

    Example:
        >>> restore_non_finite({"d": [0.5, None]}, {"/d/1": "inf"})
        {'d': [0.5, inf]}
    """
    for pointer, text in non_finite.items():
        if not pointer.startswith("/"):
            raise ValueError(f"Not a JSON pointer to a value inside the document: {pointer!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        parent = document
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        key = int(parts[-1]) if isinstance(parent, list) else parts[-1]
        if isinstance(parent, dict) and key not in parent:
            raise KeyError(f"The JSON pointer {pointer!r} names no value of the document.")
        parent[key] = float(text)
    return document


def write_json_atomic(path, data, sort_keys=True, non_finite=None):
    """Write ``data`` as standard JSON to ``path`` atomically.

    ``data`` goes through :func:`to_json_compatible` first, so NumPy values are accepted
    and NaN and infinities are written as ``null``; the text is indented by 2 and ends with
    a newline.

    Args:
        path: the target file; its folder is created if missing.
        data: the document.
        sort_keys: sort dict keys; ``False`` keeps their order.
        non_finite: ``None``, or a dict receiving the pointers of the non-finite values
            (see :func:`to_json_compatible`); a document that must round-trip them stores
            this map itself.

    Returns:
        ``path`` as a string.

    Raises:
        OSError: if the file cannot be written; ``path`` is then left as it was.

    Example:
        >>> import os, tempfile
        >>> path = write_json_atomic(os.path.join(tempfile.mkdtemp(), "s.json"), {"epoch": 3})
        >>> open(path).read()
        '{\\n  "epoch": 3\\n}\\n'
    """
    document = to_json_compatible(data, "", non_finite)
    return write_text_atomic(path, json.dumps(document, indent=2, sort_keys=sort_keys,
                                              allow_nan=False) + "\n")


def read_json(path, default=None):
    """Read a JSON file, or return ``default`` if it does not exist.

    Args:
        path: the file.
        default: what to return when ``path`` does not exist.

    Returns:
        The parsed document, or ``default``.

    Raises:
        ValueError: if the file is not valid JSON (``json.JSONDecodeError``).

    Example:
        >>> read_json("/nonexistent/run.json", default={})
        {}
    """
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
