"""int8 calibration images: a data set's slices prepared exactly as the model saw them.

The TFLite int8 converter needs representative inputs; :func:`representative_batches`
takes them from a data set with the model's own preprocessing (normalization, patch size,
2.5-D context), spread over its cases and slices.
"""

import numpy as np

from kerasseg.description import ModelInfo

__all__ = ["representative_batches"]


def representative_batches(info, data, max_images=64, batch_size=8):
    """Preprocessed image batches from a data set, for int8 calibration and parity checks.

    Slices are taken in order from the data set's cases (every case contributes), prepared
    exactly as the model saw them in training (same normalization, patch size and 2.5-D
    context).

    Args:
        info: the model's :class:`kerasseg.description.ModelInfo`.
        data: a data set folder or ``CaseDataset``.
        max_images: the most slices returned in total.
        batch_size: slices per batch.

    Returns:
        A list of float32 arrays ``(N, h, w, C)``.

    Raises:
        ValueError: if ``info`` is not a ModelInfo.

    Example:
        >>> batches = representative_batches(info, "data/msd_hippocampus")  # doctest: +SKIP
    """
    from kerasseg.data import load_dataset
    from kerasseg.data.pipeline import make_eval_dataset

    if not isinstance(info, ModelInfo):
        raise ValueError("`info` must be the model's ModelInfo (written by kerasseg training). "
                         f"Received: info={info!r}")
    dataset = data if hasattr(data, "case_ids") else load_dataset(data)
    count = max(1, min(len(dataset), 16))
    step = max(1, len(dataset) // count)
    subset = dataset.subset(list(range(0, len(dataset), step))[:count])
    spec = info.preprocessing.to_dict()
    evaluation = make_eval_dataset(subset, patch_size=info.patch_size,
                                   batch_size=batch_size, spec=spec,
                                   num_classes=info.num_classes)
    images = np.concatenate([np.asarray(x) for x, _ in evaluation], axis=0)
    # Spread the picks over all slices rather than the first ones.
    keep = np.linspace(0, len(images) - 1, num=min(max_images, len(images))).astype(int)
    images = images[keep]
    return [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
