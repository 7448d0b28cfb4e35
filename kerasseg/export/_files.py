"""Atomic file and directory writes used by the exporters."""

import os
import shutil
import tempfile
import uuid

from kerasseg.training.checkpoint import file_mode


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder.

    Args:
        path: the destination file.
        text: the content (UTF-8).

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.chmod(tmp, file_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.chmod(tmp, file_mode())
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def temp_dir_beside(target):
    """Return a new hidden directory next to ``target`` (same file system).

    TF Serving only loads version folders whose names are numbers, so the hidden
    ``.tmp-*`` folder is never picked up while it is being written.
    """
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    path = os.path.join(parent, f".tmp-{os.path.basename(target)}-{uuid.uuid4().hex[:8]}")
    os.makedirs(path)
    return path


def replace_dir(source, target, overwrite):
    """Move the finished directory ``source`` to ``target``.

    Args:
        source: the directory written in full.
        target: the final path.
        overwrite: replace an existing ``target``; otherwise raise.

    Raises:
        FileExistsError: if ``target`` exists and ``overwrite`` is False.
    """
    if os.path.exists(target):
        if not overwrite:
            raise FileExistsError(
                f"{target} already exists; pass overwrite=True to replace it, or choose "
                "another version."
            )
        old = f"{source}-old"
        os.rename(target, old)
        try:
            os.rename(source, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(source, target)
    return target
