"""Exporting a *trained* model: the SavedModel and TFLite exporters fed with what training
stored in the model file (normalization, patch size, slicing mode).

:mod:`kerasseg.export` works on any Keras model; this module adds the trained model's own
preprocessing: the SavedModel takes any image size where the architecture allows it (else
the training patch size), the ``serving_bytes`` signature applies the training
normalization, and it is left out for 2.5-D and 3-D models (whose channels are
neighbouring slices, not the colours of an image file); a model trained on volumes also
gets ``serving_volume``, which runs :meth:`kerasseg.inference.Predictor.predict_case`'s
recipe (normalization, resampling, slicing or sliding window, averaging, argmax) inside
the graph; int8 calibration and the parity report use real images prepared exactly as in
training.
"""



def export_trained(model, *, saved_model_dir=None, version=1, model_name=None,
                   tflite_path=None, quantize="none", data=None, overwrite=False,
                   parity_images=32):
    """Export a trained model as a TF Serving SavedModel and/or a TFLite file.

    Args:
        model: a ``.keras`` file written by training, a zoo entry name, or a
            :class:`kerasseg.inference.Predictor`.
        saved_model_dir: TF Serving model folder; ``saved_model_dir/<version>`` is written.
        version: SavedModel version number.
        model_name: name clients use (default: the folder name).
        tflite_path: ``.tflite`` file to write.
        quantize: ``"none"``, ``"float16"``, ``"dynamic"`` or ``"int8"``.
        data: a data set (folder or ``CaseDataset``) giving real images for int8
            calibration and for the parity report; required for ``"int8"``. For a model
            trained in mode ``"3d"`` these are training-patch windows tiling its cases, and
            the ``.tflite`` file takes one window ``(1, D, H, W, C)`` of the training patch
            size (``"int8"`` and ``"dynamic"`` are refused for 3-D models: TFLite's 3-D
            convolutions have float32 kernels only).
        overwrite: replace an existing SavedModel version.
        parity_images: number of images in the parity report.

    Returns:
        dict with ``saved_model`` (path or None), ``tflite`` (path or None) and ``parity``
        (a :class:`kerasseg.export.ParityReport` or None).

    Raises:
        ValueError: if neither output is given, or int8 is asked for without ``data``.

    Example:
        >>> export_trained("runs/hippo/best.keras", saved_model_dir="exported/hippo",
        ...                tflite_path="hippo.tflite")  # doctest: +SKIP
    """
    import numpy as np

    from kerasseg import export as exporter
    from kerasseg.export.calibration import representative_batches
    from kerasseg.inference import Predictor

    if saved_model_dir is None and tflite_path is None:
        raise ValueError("Give `saved_model_dir` and/or `tflite_path` to export to.")
    if quantize == "int8" and data is None:
        raise ValueError(
            "`quantize='int8'` needs `data` (a data set folder) for calibration with real "
            "images. Received: data=None"
        )
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    info = predictor.info
    patch = info.patch_size
    spec = info.preprocessing
    result = {"saved_model": None, "tflite": None, "parity": None}
    activation = predictor.activation  # the info's output activation, as in inference
    if saved_model_dir is not None:
        volume = None
        three_d = spec.mode == "3d"
        if info.spatial_dims == 3 or three_d:
            # The volume recipe of the Predictor, which `serving_volume` runs in the graph.
            volume = dict(spec.to_dict(), patch_size=list(patch),
                          shift_offsets=[list(pair) for pair in
                                         info.shift_offsets or ()] or None)
        options = dict(
            output_activation=activation,
            version=version, model_name=model_name, normalization=spec.normalization,
            bytes_signature=False if spec.context or three_d else None, overwrite=overwrite,
            stride=info.stride, class_names=list(info.class_names) or None, volume=volume,
            canvas=predictor.canvas if any(predictor.canvas) and not three_d else None,
        )
        if three_d:
            options["input_size"] = tuple(patch)  # the window serving_default takes
        try:
            # Any image size (padded to the stride in the graph) where the model allows it.
            result["saved_model"] = exporter.saved_model(predictor.model, saved_model_dir,
                                                         **options)
        except ValueError as error:
            if "input_size" not in str(error) or three_d:
                raise
            # Models whose resizes need a known size are exported at the training patch size.
            result["saved_model"] = exporter.saved_model(
                predictor.model, saved_model_dir, input_size=patch, **options)
    if tflite_path is not None:
        batches = representative_batches(info, data) if data is not None else None
        result["tflite"] = exporter.tflite(
            predictor.model, tflite_path, quantize=quantize, representative_data=batches,
            input_size=patch, output_activation=activation,
        )
        if batches is not None:
            images = np.concatenate(batches)[:parity_images]
            result["parity"] = exporter.parity_report(predictor.model, tflite_path, images,
                                                       output_activation=activation)
    return result
