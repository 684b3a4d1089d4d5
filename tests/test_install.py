"""filtag installed as a user installs it: a wheel in a fresh virtual environment.

The environment gets filtag from a wheel built from this checkout (its
dependencies from the test environment, through a .pth file, so nothing is
downloaded); every command runs from another folder, so nothing can come from
the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with filtag installed from its wheel."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(wheels), str(REPO)],
        check=True, cwd=root, capture_output=True,
    )  # fmt: skip
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                   check=True)  # fmt: skip
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = wheels.glob("filtag-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
         "install", "--no-deps", "--quiet", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return venv


def run(venv: Path, cwd: Path, *argv: object, **env: str):
    """Run a command of the environment from ``cwd``; return the finished process."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ.update(PATH=f"{venv / 'bin'}:{environ['PATH']}", **env)
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=environ, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def test_the_package_comes_from_the_environment(installed: Path, tmp_path) -> None:
    result = run(installed, tmp_path, "python", "-c",
                 "import filtag, filtag.labels as l; print(filtag.__file__); "
                 "print(l.WNIDS_FILE); print(len(l.imagenet_wnids()))")  # fmt: skip
    assert result.returncode == 0, result.stderr
    module, wnids, count = result.stdout.split()
    assert module.startswith(str(installed)) and wnids.startswith(str(installed))
    assert count == "1000"


def test_filtag_and_python_m_filtag_list_the_commands(installed, tmp_path) -> None:
    for argv in (["filtag", "--help"], ["python", "-m", "filtag", "--help"]):
        result = run(installed, tmp_path, *argv)
        assert result.returncode == 0, result.stderr
        for command in ("step1", "step2", "step3", "step4", "explain", "decode",
                        "vis", "plots", "demo"):  # fmt: skip
            assert command in result.stdout
    result = run(installed, tmp_path, "filtag", "step3", "--help")
    assert "--filtags-file FILE" in result.stdout and "--top N" in result.stdout
    result = run(installed, tmp_path, "filtag", "step2")
    assert result.returncode == 2
    assert "argument --activations-file is required" in result.stderr


def test_each_step_from_another_folder(installed, lite0_chain, tmp_path) -> None:
    """Steps 1-4 and the decoding of ImageNet wnids with the installed command."""
    meta1 = subprocess.run(
        [sys.executable, "-c", "import sys; from filtag.artifacts import load_vars; "
         "m = load_vars(sys.argv[1])['meta']; print(m['model_path'], m['images_dir'])",
         str(lite0_chain["step1"])],
        check=True, capture_output=True, text=True, cwd=REPO,
    ).stdout.split()  # fmt: skip
    model, images = meta1
    out = ("--save-dir", tmp_path / "out")
    paths = {}
    for step, argv in (
        ("step1", ["--network", model, "--images-dir", images]),
        ("step2", ["--activations-file", "{step1}", "--k-q", "1,5"]),
        ("step3", ["--filtags-file", "{step2}"]),
        ("step4", ["--eval-file", "{step3}", "--m", "1,3"]),
        ("decode", ["--vars-file", "{step3}"]),
    ):
        argv = [a.format(**paths) for a in argv]
        result = run(installed, tmp_path, "filtag", step, *argv, *out)
        assert result.returncode == 0, result.stderr
        paths[step] = result.stdout.strip().splitlines()[-1]
    from filtag.artifacts import load_vars
    from filtag.labels import imagenet_names

    wnids = load_vars(paths["step3"])["classes"]
    decoded = load_vars(paths["decode"])["classes"]
    assert decoded == [imagenet_names()[wnid] for wnid in wnids]


def test_filtag_demo_from_another_folder(installed, default_files, tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(default_files.root, home / "default")
    result = run(installed, tmp_path, "filtag", "demo", "--save-dir", "results",
                 FILTAG_HOME=str(home))  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary, report = result.stdout.strip().splitlines()[-2:]
    assert summary.startswith("best rule ") and "chance 10.0 %" in summary
    assert (tmp_path / report).is_file()  # relative to the folder it ran in
    assert (tmp_path / report).parent == tmp_path / "results"
    assert "I0000" not in result.stderr and "absl" not in result.stderr
