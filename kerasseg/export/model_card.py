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


def _volume_intro(volume, signatures):
    """The opening of the volume section: what ``serving_volume`` does, what is left to a
    client of the slice (or window) signature."""
    three_d = volume.get("mode") == "3d"
    what = ("This 3-D model segments volumes (arrays `(D, H, W)` or `(D, H, W, C)`) window "
            "by window." if three_d else
            "This model segments 2-D slices of 3-D volumes (arrays `(D, H, W)` or "
            "`(D, H, W, C)`).")
    if "serving_volume" not in signatures:
        return [what + " The server sees slices only; prepare each volume as training did:",
                ""]
    pieces = "windows" if three_d else "slices"
    return [
        what + " `serving_volume` takes a whole volume of raw intensities and does every "
        "step below inside the graph; `serving_default` takes prepared " + pieces + ", and "
        "its client does these steps itself:",
        "",
    ]


def _volume_steps(volume, normalization):
    """The recipe that turns a volume into the model's inputs and back, step by step."""
    axes = volume["slice_axis"]
    context = volume["context"]
    spacing = volume.get("target_spacing")
    steps = [f"Normalize the whole volume (statistics over the volume, not per slice): "
             f"`{json.dumps(normalization)}`."]
    if spacing:
        shown = ", ".join("keep" if value is None else f"{value:g} mm" for value in spacing)
        steps.append(f"Resample it linearly to the voxel spacing (x, y, z) = ({shown}).")
    if volume.get("mode") == "3d":
        patch = volume.get("patch_size")
        size = " x ".join(str(n) for n in patch) if patch else "the training patch"
        steps.append(
            f"Cut windows of {size} voxels (D x H x W) overlapping by half: along each axis "
            "ceil((n - p) / (p / 2)) + 1 windows spread evenly from the first voxel to the "
            "last (an axis shorter than the window is zero-padded, centred). Predict them "
            "and average their probabilities weighted by a Gaussian centred on the window "
            "(sigma = window / 8).")
    else:
        across = ", ".join(f"{axis} ({_AXIS_NAMES[axis]})" for axis in axes)
        moved = [f"({row}, {column})" for row, column in volume.get("shift_offsets") or []
                 if row or column]
        if context:
            steps.append(
                f"Cut slices across array axis {across}. Each input stacks the "
                f"{2 * context + 1} slices at offsets -{context}..+{context} as channels "
                "(indices clipped at the volume's edges; with several image channels, "
                "channel-major: all offsets of channel 0 first)."
            )
        else:
            steps.append(f"Cut slices across array axis {across}, one slice per input.")
        if moved:
            steps.append(f"Predict each slice as it is and moved by {', '.join(moved)} pixels "
                         "(rows, columns; zero-padded, then padded to the stride), move each "
                         "prediction's probabilities back and average them.")
        if len(axes) > 1:
            steps.append("Predict every axis, stack each axis's slice probabilities back "
                         "into a volume, and average the views' probabilities.")
    if spacing:
        steps.append("Resample the probabilities linearly back to the original grid, then "
                     "take the argmax.")
    else:
        steps.append("Take the argmax over classes.")
    return steps


def _volume_signature_lines(volume, signatures, name):
    """How to call ``serving_volume``: its inputs, outputs and a request."""
    spec = signatures.get("serving_volume")
    if spec is None:
        return []
    channels = spec["inputs"]["volume"]["shape"][-1]
    with_spacing = "spacing" in spec["inputs"]
    shape = "`[D, H, W]` or `[D, H, W, 1]`" if channels == 1 else f"`[D, H, W, {channels}]`"
    lines = [
        "### Whole volumes: `serving_volume`",
        "",
        f"- Input `volume`: float32 {shape}, any size, the stored intensities (not "
        "normalized), array axes in (z, y, x) order as SimpleITK's `GetArrayFromImage` "
        "returns them (with nibabel, transpose `get_fdata()`, which is (x, y, z)); "
        "modalities last.",
    ]
    if with_spacing:
        lines.append(
            "- Input `spacing`: float32 `[3]`, the voxel size in mm in (x, y, z) order: "
            "SimpleITK's `GetSpacing()`, nibabel's `header.get_zooms()[:3]`, kerasseg's "
            "`Geometry.spacing` (the reverse of the array's axis order).")
    lines += [
        "- Outputs on the input's grid: `probabilities` float32 `[D, H, W, K]` and `label` "
        "int32 `[D, H, W]` (their argmax), the numbers of "
        "`kerasseg.inference.Predictor(model).predict_case(case)` and `kerasseg predict` "
        "(without `--tta`).",
        "- One volume per request (no batch axis): over REST use the columnar `inputs` "
        "form; the answer is `{\"outputs\": {\"probabilities\": ..., \"label\": ...}}`.",
        "",
        "```python",
        "import numpy as np, SimpleITK as sitk",
        "from kerasseg.serving import RestClient",
        'image = sitk.ReadImage("case.nii.gz")',
        "volume = sitk.GetArrayFromImage(image).astype(np.float32)  # (z, y, x)",
        'inputs = {"volume": volume.tolist()' + (
            ', "spacing": list(image.GetSpacing())}' if with_spacing else "}"),
        f'client = RestClient("localhost", 8501, model_name="{name}")',
        'answer = client.predict_raw({"signature_name": "serving_volume", "inputs": inputs})',
        'label = np.asarray(answer["outputs"]["label"], np.int32)  # (z, y, x)',
        "```",
        "",
    ]
    return lines


def _volume_lines(volume, normalization, signatures=None, name="model"):
    """The volume section: what ``serving_volume`` does, and the steps that turn a volume
    into the slices (or windows) ``serving_default`` takes, and back."""
    signatures = signatures or {}
    lines = ["## Volumes", ""] + _volume_intro(volume, signatures)
    steps = _volume_steps(volume, normalization)
    lines += [f"{number}. {step}" for number, step in enumerate(steps, start=1)]
    lines += [
        "",
        "`kerasseg.inference.Predictor(model).predict_case(case)` does all of this with "
        "the `.keras` model or zoo entry; `kerasseg predict` does it for files.",
        "",
    ]
    return lines + _volume_signature_lines(volume, signatures, name)


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
    size_text = (" x ".join(str(n) for n in size) if size else
                 f"any multiple of {metadata['stride']} (padded inside the graph)")
    unit = "voxels" if size and len(size) == 3 else "pixels"
    activation = metadata["activation"]
    mask_rule = "probability > 0.5" if activation == "sigmoid" else "argmax over classes"
    has_bytes = "serving_bytes" in metadata["signatures"]
    has_volume = "serving_volume" in metadata["signatures"]
    applied = " (applied by `serving_volume`)" if has_volume else ""
    pieces = "windows" if unit == "voxels" else "images"
    raw = "; `serving_volume` takes raw volumes." if has_volume else "."
    lines = [
        f"# {name} (version {metadata['version']})",
        "",
        f"Architecture `{metadata['architecture']}`, exported {metadata['created']} by "
        "kerasseg for TensorFlow Serving. Served versions in this folder: "
        f"{', '.join(str(v) for v in versions)}.",
        "",
        f"- Input: {size_text} {unit}, {metadata['channels']} channel(s).",
        f"- Output: {metadata['num_classes']} channel(s), {activation}; mask = {mask_rule}.",
        *([f"- Classes: {', '.join(metadata['class_names'])}."]
          if metadata.get("class_names") else []),
        (f"- Normalization applied by `serving_bytes`: `{json.dumps(metadata['normalization'])}`."
         if has_bytes else
         f"- Normalization used in training{applied}: "
         f"`{json.dumps(metadata['normalization'])}`."),
        f"  `serving_default` takes already-normalized float32 {pieces} (the Keras model's "
        f"input){raw}",
        "",
        "## Signatures",
        "",
        "| signature | role | tensor | dtype | shape |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    if metadata.get("volume"):
        lines += _volume_lines(metadata["volume"], metadata["normalization"],
                               metadata["signatures"], name)
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
        shape = "(N, D, H, W, C)" if size and len(size) == 3 else "(N, H, W, C)"
        lines += [f"out = client.predict(images)  # float32 {shape} -> probabilities, mask"]
    lines += ["```", ""]
    return "\n".join(lines)
