"""Atomic file writes for reports: a temporary file in the target folder, then ``os.replace``.

A reader (or a crashed writer) therefore sees either the previous file or the complete new
one, never half a file.
"""

import contextlib
import os

from kerasseg.training.checkpoint import temp_path


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The temporary file is removed if the body raises.

    Args:
        path: the final file; its folder is created if missing.
        suffix: suffix of the temporary file (some writers pick the format from it).

    Yields:
        The temporary file's path.

    Example:
        >>> with atomic_path("out/report.csv", ".csv") as temp:  # doctest: +SKIP
        ...     pathlib.Path(temp).write_text("a,b\\n")
    """
    path = os.fspath(path)
    temp = temp_path(path, suffix)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Args:
        path: the target file.
        text: the whole content.

    Returns:
        ``path`` as a string.

    Example:
        >>> write_text_atomic("out/summary.txt", "Dice 0.91\\n")  # doctest: +SKIP
        'out/summary.txt'
    """
    path = os.fspath(path)
    with atomic_path(path, ".tmp") as temp:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def save_figure_atomic(figure, path, dpi=100):
    """Save a Matplotlib ``Figure`` as PNG to ``path`` atomically.

    Args:
        figure: a ``matplotlib.figure.Figure`` (with an Agg canvas).
        path: the target file; must end in ``.png``.
        dpi: resolution.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: if ``path`` does not end in ``.png``.

    Example:
        >>> save_figure_atomic(figure, "out/curves.png")  # doctest: +SKIP
        'out/curves.png'
    """
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"`path` must end in '.png'. Received: path={path!r}")
    with atomic_path(path, ".png") as temp:
        figure.savefig(temp, format="png", dpi=dpi)
    return path
