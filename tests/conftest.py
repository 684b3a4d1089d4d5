"""Shared fixtures: the embedded default, small real image folders, EfficientNet-Lite0.

Every model and image here is real: the Fashion-MNIST CNN of
:mod:`filtag.default` (trained once, cached in ``default/``) and
EfficientNet-Lite0 with its ImageNet weights (built once from a pip package,
cached in pytest's cache folder).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
from pathlib import Path

import pytest

import tests.support.torch_shim  # noqa: F401  (before anything imports torchvision)
from filtag.default import DefaultFiles, ensure_default
from tests.support.lite0 import imagenet_images_dir, lite0_model_path

#: Images per class in the small Fashion-MNIST folder of the tests.
SMALL_PER_CLASS = 12

#: The k and q values of the chains; 17 > the 16 filters of conv1 (mean rule there).
CHAIN_K_Q = [0, 1, 2, 5, 17, 25]


def run_script(script, *argv: object) -> tuple[Path, str]:
    """Run a script's ``main``; return the path it printed last, and all it printed."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert script.main([str(a) for a in argv]) == 0
    printed = out.getvalue()
    return Path(printed.strip().splitlines()[-1]), printed


def refused(script, *argv: object) -> str:
    """Run a script's ``main`` on bad input; assert exit code 2 and no traceback.

    Returns:
        What it wrote to stderr (its log lines, the error last).
    """
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = script.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's one-line errors
            code = exc.code
    assert code == 2
    text = err.getvalue()
    assert "Traceback" not in text
    return text


def run_chain(
    network: Path | str, images: Path, out: Path, *step1_args: object
) -> dict[str, Path]:
    """Run steps 1-4 by their scripts; return {"step1": path, ..., "step4_stdout"}.

    Args:
        network, images, out: step 1's --network, --images-dir, --save-dir.
        step1_args: more flags for step 1.
    """
    steps = [
        importlib.import_module(name)
        for name in ("step1filteractivations", "step2filtertags", "step3evaluation",
                     "step4hitrates")
    ]  # fmt: skip
    k_q = ",".join(map(str, CHAIN_K_Q))
    files: dict[str, Path] = {}
    files["step1"], _ = run_script(steps[0], "--network", network, "--images-dir",
                                   images, "--save-dir", out, *step1_args)  # fmt: skip
    more = ("--export", "--save-dir", out)
    files["step2"], _ = run_script(steps[1], "--activations-file", files["step1"],
                                   "--k-q", k_q, *more)  # fmt: skip
    files["step3"], _ = run_script(steps[2], "--filtags-file", files["step2"],
                                   "--batch-size", 6, *more)  # fmt: skip
    files["step4"], files["step4_stdout"] = run_script(
        steps[3], "--eval-file", files["step3"], "--m", "1-3,10", "--save-dir", out
    )
    return files


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
def lite0_model(tmp_path_factory) -> Path:
    """EfficientNet-Lite0 (ImageNet weights) as a .keras file taking raw pixels."""
    return lite0_model_path(tmp_path_factory.mktemp("lite0"))


@pytest.fixture(scope="session")
def imagenet_images(tmp_path_factory) -> Path:
    """20 real ImageNet JPEGs in wnid class folders (19 classes)."""
    return imagenet_images_dir(tmp_path_factory.mktemp("imagenet") / "images")


@pytest.fixture(scope="session")
def default_chain(
    default_files, small_images: Path, tmp_path_factory
) -> dict[str, Path]:
    """Steps 1-4 on the small Fashion-MNIST folder (k_q = CHAIN_K_Q, m = 1-3,10)."""
    out = tmp_path_factory.mktemp("default_chain")
    return run_chain(default_files.model, small_images, out)


@pytest.fixture(scope="session")
def lite0_chain(lite0_model: Path, imagenet_images: Path, tmp_path_factory) -> dict:
    """Steps 1-4 on the 20 ImageNet JPEGs with EfficientNet-Lite0.

    19 classes: 18 of one image (all train) and n03594945 with two (one test).
    """
    out = tmp_path_factory.mktemp("lite0_chain")
    return run_chain(lite0_model, imagenet_images, out)
