"""The exception raised for bad input data."""


class DataError(ValueError):
    """A data set, or one of its files, is not what kerasseg can read.

    Raised with a message that names the file (or folder) and what was expected: a
    missing mask, an unreadable or truncated file, shapes or geometries that differ
    between an image and its mask, mask values outside the declared classes, NaN
    intensities, and so on. It subclasses :class:`ValueError`, so ``except ValueError``
    catches it too.

    Example:
        >>> import os
        >>> from kerasseg.data import DataError, load_dataset
        >>> os.makedirs("empty_folder")
        >>> try:
        ...     load_dataset("empty_folder")
        ... except DataError as error:
        ...     print(error)
        Cannot recognise the data layout of empty_folder. Expected one of the layouts
        [...]. The folder holds: nothing.
    """
