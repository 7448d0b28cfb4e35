"""What a run measures: the full run, ``--quick`` (under 10 minutes on 2 cores) and
``--smoke`` (tiny shapes that only check that every section runs; its numbers mean nothing).
"""

import dataclasses

MODES = ("full", "quick", "smoke")

#: The model families compared, built with their default options: the 2-D ones (the 3-D
#: families, `kerasseg.list_models(spatial_dims=3)`, are not benchmarked).
FAMILIES = ("unet", "fcn8s", "deeplab")


@dataclasses.dataclass(frozen=True)
class Shape:
    """One benchmark input: a label, ``(H, W, C)``, the class count and the training batch.

    ``pad_to_stride`` rounds H and W up to each family's total stride (FCN-8s needs
    multiples of 32, so the 48x64 hippocampus slice becomes 64x64 for it). ``data`` is the
    folder under the shared data folder whose training pipeline gives such batches, and
    ``data_options`` the :func:`kerasseg.data.make_dataset` options it needs.
    """

    label: str
    size: tuple
    num_classes: int
    batch: int
    pad_to_stride: bool = False
    data: str = None
    data_options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes, repeats and step counts of one run mode.

    Attributes:
        mode: ``"full"``, ``"quick"`` or ``"smoke"``.
        peak_repeats: timed repeats of the matmul and convolution peaks.
        matmul_n: side of the square matmul.
        conv_shape: ``(batch, height, width, in_channels, out_channels)`` of the 3x3 conv.
        train_shapes: inputs of the per-family training table.
        train_warmup: untimed training steps (the first traces the step).
        train_steps: timed training steps.
        pipeline_batches: timed pipeline batches.
        pipeline_cases: the most cases loaded for the pipeline (the first ones).
        pipeline_backends: augmentation backends measured.
        inference_shapes: inputs of the inference table.
        latency_repeats: timed batch-1 calls.
        throughput_batch: batch of the throughput calls (Keras and SavedModel).
        throughput_repeats: timed throughput calls.
        calibration_images: images used to calibrate the int8 TFLite file.
        zoo_cases: held-out cases evaluated per zoo entry (``None``: all).
        mirrored_steps: timed steps of the MirroredStrategy comparison.
        mirrored_shape: ``(H, W, C)`` of the small U-Net of that comparison.
        mirrored_model: options of that small U-Net.
        variant_shape: the training-step variants' input shape.
        variant_model: the variants' U-Net options.
        variant_batch: the variants' default batch.
        variant_batches: other batch sizes measured.
        variants: names of the variants measured (see ``benchmarks/run.py``).
        thread_settings: ``(intra, inter)`` thread settings measured in subprocesses;
            0 means TensorFlow's choice and ``"cores"`` the machine's core count.
    """

    mode: str
    peak_repeats: int
    matmul_n: int
    conv_shape: tuple
    train_shapes: tuple
    train_warmup: int
    train_steps: int
    pipeline_batches: int
    pipeline_cases: int
    pipeline_backends: tuple
    inference_shapes: tuple
    latency_repeats: int
    throughput_batch: int
    throughput_repeats: int
    calibration_images: int
    zoo_cases: object
    mirrored_steps: int
    mirrored_shape: tuple
    mirrored_model: dict
    variant_shape: tuple
    variant_model: dict
    variant_batch: int
    variant_batches: tuple
    variants: tuple
    thread_settings: tuple


#: The zoo's hippocampus input: 2.5-D slices along axis 2 with two neighbours on each
#: side as channels, padded to 48x64.
HIPPOCAMPUS_DATA = ("msd_hippocampus", {"mode": "2.5d", "context": 2, "slice_axis": 2})
HIPPOCAMPUS = Shape("hippocampus 2.5-D 48x64x5", (48, 64, 5), 3, 32, True, *HIPPOCAMPUS_DATA)
EM = Shape("EM 256x256x1", (256, 256, 1), 2, 8, data="isbi2012_membrane/train")
UNET_TARGET = {"depth": 4, "base_filters": 32}
ALL_VARIANTS = ("default", "xla", "batch", "bilinear", "bfloat16", "threads", "onednn_off")


def get_settings(mode):
    """Return the :class:`Settings` of ``mode``.

    Args:
        mode: one of ``"full"``, ``"quick"``, ``"smoke"``.

    Returns:
        A :class:`Settings`.

    Raises:
        ValueError: for an unknown mode.

    Example:
        >>> get_settings("quick").train_steps
        2
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {list(MODES)}. Received: mode={mode!r}")
    if mode == "full":
        return Settings(
            mode=mode, peak_repeats=10, matmul_n=2048, conv_shape=(8, 128, 128, 64, 64),
            train_shapes=(EM, HIPPOCAMPUS), train_warmup=2, train_steps=5,
            pipeline_batches=30, pipeline_cases=40, pipeline_backends=("albumentations", "tf"),
            inference_shapes=(HIPPOCAMPUS, EM), latency_repeats=20, throughput_batch=8,
            throughput_repeats=3, calibration_images=32, zoo_cases=None,
            mirrored_steps=12, mirrored_shape=(64, 64, 1),
            mirrored_model={"depth": 3, "base_filters": 16, "normalization": "group"},
            variant_shape=(256, 256, 1), variant_model=UNET_TARGET, variant_batch=8,
            variant_batches=(4, 16), variants=ALL_VARIANTS,
            thread_settings=((0, 0), ("cores", 1), (1, "cores")),
        )
    if mode == "quick":
        return Settings(
            mode=mode, peak_repeats=5, matmul_n=2048, conv_shape=(8, 128, 128, 64, 64),
            train_shapes=(EM, HIPPOCAMPUS), train_warmup=1, train_steps=2,
            pipeline_batches=8, pipeline_cases=12, pipeline_backends=("albumentations", "tf"),
            inference_shapes=(HIPPOCAMPUS,), latency_repeats=10, throughput_batch=8,
            throughput_repeats=2, calibration_images=8, zoo_cases=3,
            mirrored_steps=4, mirrored_shape=(64, 64, 1),
            mirrored_model={"depth": 3, "base_filters": 16, "normalization": "group"},
            variant_shape=(256, 256, 1), variant_model=UNET_TARGET, variant_batch=8,
            variant_batches=(), variants=("default", "xla", "bilinear", "bfloat16"),
            thread_settings=(),
        )
    tiny = Shape("tiny 64x64x1", (64, 64, 1), 2, 2, data="isbi2012_membrane/train")
    small_hippocampus = Shape(HIPPOCAMPUS.label, (48, 64, 5), 3, 2, True, *HIPPOCAMPUS_DATA)
    return Settings(
        mode=mode, peak_repeats=2, matmul_n=256, conv_shape=(1, 32, 32, 8, 8),
        train_shapes=(tiny, small_hippocampus), train_warmup=1, train_steps=1,
        pipeline_batches=2, pipeline_cases=3, pipeline_backends=("tf",),
        inference_shapes=(small_hippocampus,), latency_repeats=2, throughput_batch=2,
        throughput_repeats=1, calibration_images=2, zoo_cases=1,
        mirrored_steps=2, mirrored_shape=(32, 32, 1),
        mirrored_model={"depth": 2, "base_filters": 4, "normalization": "group"},
        variant_shape=(32, 32, 1), variant_model={"depth": 2, "base_filters": 4}, variant_batch=2,
        variant_batches=(1,), variants=ALL_VARIANTS, thread_settings=((0, 0), (1, 1)),
    )
