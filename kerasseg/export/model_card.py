"""The short model card (markdown) written beside an exported SavedModel."""

import json


def _shape(shape):
    return "[" + ", ".join("-1" if v == -1 else str(v) for v in shape) + "]"


_AXIS_NAMES = {0: "D", 1: "H", 2: "W"}


def _uses_image_statistics(normalization):
    """Whether a normalization spec computes statistics from each image (not constants)."""
    method = normalization.get("method")
    params = normalization.get("params") or {}
    if method == "minmax":
        return params.get("min") is None or params.get("max") is None
    return method in ("zscore", "percentile_clip", "percentile_zscore")


def _volume_lines(volume, normalization):
    """Steps that turn a 3-D volume into the slices the model takes, and back."""
    axes = volume["slice_axis"]
    context = volume["context"]
    spacing = volume.get("target_spacing")
    lines = [
        "## Volumes",
        "",
        "This model segments 2-D slices of 3-D volumes (arrays `(D, H, W)` or "
        "`(D, H, W, C)`). The server sees slices only; prepare each volume as training did:",
        "",
    ]
    steps = [f"Normalize the whole volume (statistics over the volume, not per slice): "
             f"`{json.dumps(normalization)}`."]
    if spacing:
        shown = ", ".join("keep" if value is None else f"{value:g} mm" for value in spacing)
        steps.append(f"Resample it linearly to the voxel spacing (x, y, z) = ({shown}).")
    across = ", ".join(f"{axis} ({_AXIS_NAMES[axis]})" for axis in axes)
    moved = [f"({row}, {column})" for row, column in volume.get("shift_offsets") or []
             if row or column]
    if context:
        steps.append(
            f"Cut slices across array axis {across}. Each input stacks the {2 * context + 1} "
            f"slices at offsets -{context}..+{context} as channels (indices clipped at the "
            "volume's edges; with several image channels, channel-major: all offsets of "
            "channel 0 first)."
        )
    else:
        steps.append(f"Cut slices across array axis {across}, one slice per input.")
    if moved:
        steps.append(f"Predict each slice as it is and moved by {', '.join(moved)} pixels "
                     "(rows, columns; zero-padded, then padded to the stride), move each "
                     "prediction's probabilities back and average them.")
    if len(axes) > 1:
        steps.append("Predict every axis, stack each axis's slice probabilities back into a "
                     "volume, and average the views' probabilities.")
    if spacing:
        steps.append("Resample the probabilities linearly back to the original grid, then "
                     "take the argmax.")
    else:
        steps.append("Take the argmax over classes.")
    lines += [f"{number}. {step}" for number, step in enumerate(steps, start=1)]
    lines += [
        "",
        "`kerasseg.inference.Predictor(model).predict_case(case)` does all of this with "
        "the `.keras` model or zoo entry; `kerasseg predict` does it for files.",
        "",
    ]
    return lines


def model_card(metadata, versions, serving_base_path="/models", folder=None):
    """Return the markdown model card of an export.

    Args:
        metadata: the dict stored in ``assets.extra/kerasseg_export.json``.
        versions: the versions present beside it.
        serving_base_path: the models' mount point in the serving container.
        folder: the export folder's name on the host (default: the model name).

    Returns:
        Markdown text: signatures with dtypes and shapes, normalization, outputs and
        example requests (curl and Python).

    Example:
        >>> from kerasseg.export import read_export_metadata
        >>> text = model_card(read_export_metadata("exported/unet/1"), [1])  # doctest: +SKIP
    """
    name = metadata["model_name"]
    folder = folder or name
    rows = []
    for signature, spec in metadata["signatures"].items():
        for kind in ("inputs", "outputs"):
            for tensor, info in spec[kind].items():
                rows.append(
                    f"| `{signature}` | {kind[:-1]} | `{tensor}` | {info['dtype']} | "
                    f"`{_shape(info['shape'])}` |"
                )
    size = metadata["input_size"]
    size_text = (f"{size[0]} x {size[1]}" if size else
                 f"any multiple of {metadata['stride']} (padded inside the graph)")
    activation = metadata["activation"]
    mask_rule = "probability > 0.5" if activation == "sigmoid" else "argmax over classes"
    has_bytes = "serving_bytes" in metadata["signatures"]
    lines = [
        f"# {name} (version {metadata['version']})",
        "",
        f"Architecture `{metadata['architecture']}`, exported {metadata['created']} by "
        "kerasseg for TensorFlow Serving. Served versions in this folder: "
        f"{', '.join(str(v) for v in versions)}.",
        "",
        f"- Input: {size_text} pixels, {metadata['channels']} channel(s).",
        f"- Output: {metadata['num_classes']} channel(s), {activation}; mask = {mask_rule}.",
        *([f"- Classes: {', '.join(metadata['class_names'])}."]
          if metadata.get("class_names") else []),
        (f"- Normalization applied by `serving_bytes`: `{json.dumps(metadata['normalization'])}`."
         if has_bytes else
         f"- Normalization used in training: `{json.dumps(metadata['normalization'])}`."),
        "  `serving_default` takes already-normalized float32 images (the Keras model's input).",
        "",
        "## Signatures",
        "",
        "| signature | role | tensor | dtype | shape |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    if metadata.get("volume"):
        lines += _volume_lines(metadata["volume"], metadata["normalization"])
        if has_bytes and _uses_image_statistics(metadata["normalization"]):
            lines += [
                "`serving_bytes` normalizes each image file with its own statistics, not the "
                "volume's; for the training behaviour send volume-normalized slices to "
                "`serving_default`.",
                "",
            ]
    if has_bytes:
        lines += [
            "`serving_bytes` decodes PNG/JPEG files, resizes them to the model's size, "
            "normalizes them, and returns the mask at each image's original size; with "
            f"images of different sizes in one request, masks are padded with "
            f"{metadata['mask_pad_value']} to the largest (crop with `image_size`).",
            "",
        ]
    lines += [
        "## Serve",
        "",
        f"From the folder that holds `{folder}/`:",
        "",
        "```shell",
        "docker run --rm -p 8500:8500 -p 8501:8501 \\",
        f'  -v "$PWD/{folder}:{serving_base_path.rstrip("/")}/{name}" \\',
        "  tensorflow/serving \\",
        f"  --model_config_file={serving_base_path.rstrip('/')}/{name}/models.config \\",
        "  --enable_batching \\",
        f"  --batching_parameters_file={serving_base_path.rstrip('/')}/{name}/"
        "batching_parameters.txt",
        "```",
        "",
        "## Example requests",
        "",
        "```shell",
        f"curl http://localhost:8501/v1/models/{name}            # status",
        f"curl http://localhost:8501/v1/models/{name}/metadata   # signatures",
    ]
    if has_bytes:
        lines += [
            "printf '{\"signature_name\": \"serving_bytes\", \"instances\": "
            "[{\"image_bytes\": {\"b64\": \"%s\"}}]}' \"$(base64 -w0 image.png)\" > request.json",
            f"curl -X POST -d @request.json http://localhost:8501/v1/models/{name}:predict",
        ]
    lines += [
        "```",
        "",
        "```python",
        "from kerasseg.serving import RestClient",
        f'client = RestClient("localhost", 8501, model_name="{name}")',
    ]
    if has_bytes:
        lines += ['masks = client.predict_files(["image.png"])  # one int32 (H, W) mask per file']
    else:
        lines += ['out = client.predict(images)  # float32 (N, H, W, C) -> probabilities, mask']
    lines += ["```", ""]
    return "\n".join(lines)
