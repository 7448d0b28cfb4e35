"""Atomic file and directory writes used by the exporters."""

import os
import shutil
import uuid

from kerasseg.training.checkpoint import write_bytes_atomic, write_text_atomic


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder.

    Returns:
        ``path``.
    """
    return write_text_atomic(os.fspath(path), text)


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    return write_bytes_atomic(os.fspath(path), data)


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
