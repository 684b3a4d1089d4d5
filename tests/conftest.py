"""Shared fixtures: the embedded default, small real image folders, EfficientNet-Lite0.

Every model and image here is real: the Fashion-MNIST CNN of
:mod:`filtag.default` (trained once, cached in ``default/``) and
EfficientNet-Lite0 with its ImageNet weights (built once from a pip package,
cached in pytest's cache folder).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from filtag.default import DefaultFiles, ensure_default
from tests.support.lite0 import imagenet_images_dir, lite0_model_path

#: Images per class in the small Fashion-MNIST folder of the tests.
SMALL_PER_CLASS = 12


@pytest.fixture(scope="session")
def default_files() -> DefaultFiles:
    """The embedded default (CNN, class names, 300 test PNGs per class)."""
    return ensure_default()


@pytest.fixture(scope="session")
def small_images(default_files: DefaultFiles, tmp_path_factory) -> Path:
    """A folder of the 10 Fashion-MNIST classes with 12 real PNGs each."""
    root = tmp_path_factory.mktemp("small") / "images"
    for class_dir in sorted(default_files.images_dir.iterdir()):
        (root / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.iterdir())[:SMALL_PER_CLASS]:
            shutil.copy(image, root / class_dir.name / image.name)
    return root


@pytest.fixture(scope="session")
def lite0_model(request) -> Path:
    """EfficientNet-Lite0 (ImageNet weights) as a .keras file taking raw pixels."""
    return lite0_model_path(Path(request.config.cache.mkdir("lite0")))


@pytest.fixture(scope="session")
def imagenet_images(tmp_path_factory) -> Path:
    """20 real ImageNet JPEGs in wnid class folders (19 classes)."""
    return imagenet_images_dir(tmp_path_factory.mktemp("imagenet") / "images")
