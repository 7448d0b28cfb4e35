"""Markdown tables, padded so that they also read well in a terminal."""

import math


def fmt(value, decimals=1, suffix=""):
    """Format a number for a table cell; ``None`` and NaN become ``"-"``.

    Args:
        value: a number, ``None``, or any other value (returned as ``str``).
        decimals: digits after the point for floats.
        suffix: appended to numbers (e.g. ``"x"`` or ``"%"``).

    Returns:
        The cell text.

    Example:
        >>> fmt(1234.567, 1), fmt(None), fmt(0.25, 2, "x")
        ('1234.6', '-', '0.25x')
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value}{suffix}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{decimals}f}{suffix}"
    return str(value)


def markdown_table(headers, rows, align=None):
    """Render a Markdown table whose columns are padded to a common width.

    Args:
        headers: column titles.
        rows: sequences of cells (converted with ``str``), as many as ``headers``.
        align: one letter per column, ``"l"`` (left) or ``"r"`` (right); default all left.

    Returns:
        The table as text, one line per row, without a trailing newline.

    Raises:
        ValueError: if a row or ``align`` does not have one entry per column.

    Example:
        >>> print(markdown_table(["name", "n"], [["a", 10]], align="lr"))
        | name |   n |
        | ---- | --: |
        | a    |  10 |
    """
    headers = [str(h) for h in headers]
    columns = len(headers)
    align = align or "l" * columns
    if len(align) != columns or set(align) - {"l", "r"}:
        raise ValueError(
            f"`align` must have one 'l' or 'r' per column ({columns}). Received: align={align!r}"
        )
    body = []
    for index, row in enumerate(rows):
        cells = [str(cell) for cell in row]
        if len(cells) != columns:
            raise ValueError(
                f"Row {index} has {len(cells)} cells but there are {columns} columns: {cells!r}"
            )
        body.append(cells)
    widths = [max([3, len(headers[i])] + [len(row[i]) for row in body]) for i in range(columns)]

    def line(cells):
        padded = [cell.rjust(w) if a == "r" else cell.ljust(w)
                  for cell, w, a in zip(cells, widths, align)]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if a == "r" else "-" * w for w, a in zip(widths, align)]
    return "\n".join([line(headers), "| " + " | ".join(rule) + " |"] + [line(r) for r in body])
