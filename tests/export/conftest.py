"""Shared fixtures of the export tests: real EM crops, small models and their exports.

Exports and the training run are session-scoped so that each is paid for once.
"""

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg import export
from tests.export.helpers import CROP, build_small, read_png, zscore


@pytest.fixture(scope="session")
def em_images(isbi_dir):
    """The 30 ISBI 2012 training images (uint8 512x512) and membrane masks (1 = membrane)."""
    images = [read_png(str(isbi_dir / "image" / f"{i}.png"))[..., 0] for i in range(30)]
    labels = [(read_png(str(isbi_dir / "label" / f"{i}.png"))[..., 0] < 128)
              for i in range(30)]
    return np.stack(images), np.stack(labels).astype(np.int32)


def em_crops(em_images, indices, count, seed, size=CROP):
    """``count`` random crops (fixed seed): raw uint8, z-scored float32, labels."""
    images, labels = em_images
    rng = np.random.RandomState(seed)
    raw, norm, lab = [], [], []
    for _ in range(count):
        i = rng.choice(indices)
        r, c = rng.randint(0, 512 - size + 1, size=2)
        crop = images[i, r:r + size, c:c + size]
        raw.append(crop)
        norm.append(zscore(crop[..., None]))
        lab.append(labels[i, r:r + size, c:c + size])
    return np.stack(raw), np.stack(norm), np.stack(lab)


@pytest.fixture(scope="session")
def em_train(em_images):
    """256 training crops from images 0-23."""
    return em_crops(em_images, range(24), 256, seed=0)


@pytest.fixture(scope="session")
def em_test(em_images):
    """24 held-out crops from images 24-29."""
    return em_crops(em_images, range(24, 30), 24, seed=1)


@pytest.fixture(scope="session")
def trained_unet(em_train):
    """A small U-Net with one sigmoid channel (membrane) trained for 64 steps on EM crops."""
    _, x, y = em_train
    model = build_small("unet", num_classes=1)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=kerasseg.losses.DiceCELoss(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=4, verbose=0)
    return model


@pytest.fixture(scope="session")
def unet_model():
    """Fixed-size U-Net (64x64x1), 3 classes, logits."""
    return build_small("unet", num_classes=3)


@pytest.fixture(scope="session")
def unet_export(unet_model, tmp_path_factory):
    """``unet_model`` exported as version 1 with per-image z-score normalization."""
    root = tmp_path_factory.mktemp("serving") / "unet"
    version_dir = export.saved_model(unet_model, root, version=1,
                                     normalization={"method": "zscore"})
    return root, version_dir


@pytest.fixture(scope="session")
def dynamic_model():
    """Dynamic-size U-Net (stride 8), one sigmoid output channel built into the model."""
    return build_small("unet", input_shape=(None, None, 1), num_classes=1,
                       output_activation="sigmoid")


@pytest.fixture(scope="session")
def dynamic_export(dynamic_model, tmp_path_factory):
    """``dynamic_model`` exported with the fixed scale normalization 1/255."""
    root = tmp_path_factory.mktemp("serving") / "membrane"
    version_dir = export.saved_model(dynamic_model, root, version=3,
                                     normalization={"method": "scale", "scale": 1 / 255})
    return root, version_dir
