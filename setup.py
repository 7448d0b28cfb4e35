"""Installation of kerasseg: `pip install -e ".[test]"`."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
README = (HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else ""
# One version: kerasseg/_version.py (read, not imported: installing must not import TensorFlow).
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "kerasseg" / "_version.py").read_text(
    encoding="utf-8"), re.M).group(1)

INSTALL_REQUIRES = [
    "tensorflow==2.21.*",
    "keras>=3.15,<4",
    "numpy>=1.26",
    "scipy>=1.11",
    "h5py>=3.10",
    "SimpleITK>=2.3",
    # Last MIT-licensed release; later releases changed licence.
    "albumentations==2.0.8",
    # The OpenCV wheel albumentations installs; a second OpenCV wheel beside it breaks cv2.
    "opencv-python-headless>=4.9,<5",
    "ai-edge-litert>=1.2",
    "matplotlib>=3.7",
    "tensorboard>=2.16",
    "pillow>=10",
]

EXTRAS = {
    # setuptools and wheel: tests/test_packaging.py builds the wheel without build isolation.
    # import-linter: tests/test_layers.py checks the package's layers (.importlinter); 2.17 has
    # every contract option used there (exhaustive layers, acyclic_siblings).
    "test": ["pytest>=8", "pytest-timeout>=2.2", "tensorflow-serving-api==2.21.*", "grpcio>=1.60",
             "setuptools>=61", "wheel>=0.37", "import-linter>=2.17,<3"],
    "serving": ["tensorflow-serving-api==2.21.*", "grpcio>=1.60"],
}

# Files beside the modules that the wheel must carry: the zoo registry, each zoo entry's
# weights, card, per-case metrics and golden output, and the hippocampus sample. Every
# pattern must match a file (tests/test_packaging.py checks it, and builds the wheel).
PACKAGE_DATA = {
    "kerasseg": [
        "zoo/registry.json",
        "zoo/weights/*",
        "sample/hippocampus/*.md",
        "sample/hippocampus/*.json",
        "sample/hippocampus/imagesTr/*",
        "sample/hippocampus/labelsTr/*",
    ],
}

setup(
    name="kerasseg",
    version=VERSION,
    description="Keras 3 / TensorFlow model zoo for medical image segmentation: "
    "U-Net, FCN-8s and DeepLabv3+ with data pipelines, training, trained weights and export.",
    long_description=README,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["kerasseg", "kerasseg.*"]),
    include_package_data=True,
    package_data=PACKAGE_DATA,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["kerasseg=kerasseg.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
