"""Data shipped with kerasseg: a small real hippocampus MRI sample (CC BY-SA 4.0)."""

import os

HIPPOCAMPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hippocampus")


def hippocampus_path():
    """Return the folder of the bundled hippocampus MRI sample (Decathlon layout).

    Returns:
        The absolute path of ``kerasseg/sample/hippocampus``; its README gives the
        licence (CC BY-SA 4.0) and what to cite.

    Example:
        >>> from kerasseg.data import load_dataset
        >>> len(load_dataset(hippocampus_path()))
        52
    """
    return HIPPOCAMPUS
