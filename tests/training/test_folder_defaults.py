"""A new user's folder of large RGB photos trains with default settings and predicts by tiles."""

import cv2
import numpy as np

import kerasseg
from kerasseg.inference import predict_path
from tests.small import TINY_UNET


def _rgb_folder(root, em, count=3):
    """584x565 RGB images (retina-photo size) made from real EM images, with 0/255 masks."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        grey = cv2.imread(str(em / "image" / f"{index}.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(em / "label" / f"{index}.png"), cv2.IMREAD_GRAYSCALE)
        grey = cv2.resize(grey, (565, 584), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask, (565, 584), interpolation=cv2.INTER_NEAREST)
        rgb = np.stack([grey, (grey * 0.8).astype(np.uint8), 255 - grey], axis=-1)
        cv2.imwrite(str(root / "images" / f"{index:02d}_photo.png"), rgb)
        cv2.imwrite(str(root / "masks" / f"{index:02d}_photo.png"), np.where(mask > 127, 0, 255).astype(np.uint8))
    return root


def test_large_rgb_folder_with_defaults(tmp_path, isbi_dir):
    data = _rgb_folder(tmp_path / "photos", isbi_dir)
    result = kerasseg.train(str(data), "unet", output_dir=tmp_path / "run", epochs=1,
                            steps_per_epoch=1, batch_size=2, verbose=0,
                            model_options=TINY_UNET)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "slices up to 584x565 exceed 256: training on 256x256 patches" in log
    assert "input (None, None, 3), 2 classes ['background', 'foreground']" in log
    # Prediction tiles the whole photo and writes a 0/255 PNG of the photo's size.
    written = predict_path(result.best_model, str(data / "images" / "00_photo.png"), tmp_path / "out")
    label = cv2.imread(written[0][1], cv2.IMREAD_UNCHANGED)
    assert label.shape == (584, 565)
    assert set(np.unique(label)) <= {0, 255}
