"""The Python API and the command registry: keyword arguments in, typed results out."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import filtag
from filtag import commands, params
from filtag.errors import FiltagError
from filtag.results import RunResult, Step1Result, Step2Result

REPO = Path(__file__).resolve().parent.parent


def test_importing_filtag_imports_nothing_heavy_and_sets_no_variable() -> None:
    code = (
        "import os, sys; before = dict(os.environ); import filtag, filtag.commands; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy', 'torch') "
        "if m in sys.modules)); print(dict(os.environ) == before)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


def test_every_script_passes_its_inputs_block_to_its_command() -> None:
    """A script's Inputs equal its command's defaults, in the same order."""
    for name, command in commands.COMMANDS.items():
        tree = ast.parse((REPO / command.script).read_text())
        inputs = {
            node.targets[0].id.lower(): ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and node.targets[0].id.isupper()
        }
        assert inputs == command.defaults, name
        assert list(inputs) == list(command.defaults), name
        assert all(key in params.PARAMS for key in inputs), name


def test_the_api_returns_results_naming_every_file(default_chain, tmp_path) -> None:
    result = filtag.step2(activations_file=default_chain["step1"], k_q=[1, 5],
                          save_dir=tmp_path)  # fmt: skip
    assert isinstance(result, Step2Result) and isinstance(result, RunResult)
    assert result.path.name == f"{result.run_id}-TF-fashion_mnist_cnn-vars.pkl"
    names = sorted(p.name.removeprefix(result.run_id) for p in result.files)
    assert names == [
        "-TF-fashion_mnist_cnn-info.log",
        "-TF-fashion_mnist_cnn-vars-info.txt",
        "-TF-fashion_mnist_cnn-vars-names.pkl",
        "-TF-fashion_mnist_cnn-vars.pkl",
        "-TF-fashion_mnist_cnn-warnings.log",
    ]
    assert sorted(result.load()["filTags_k"]) == [1, 5]
    assert sorted(tmp_path.iterdir()) == sorted(result.files)


def test_the_api_validates_as_the_command_line_does(default_chain, tmp_path) -> None:
    with pytest.raises(FiltagError, match=r"^k_q: expected values <= 100,000"):
        filtag.step2(activations_file=default_chain["step1"], k_q="0-1000000000")
    with pytest.raises(FiltagError, match=r"^top: expected a whole number >= 1; "):
        filtag.step3(filtags_file=default_chain["step2"], top=0)
    with pytest.raises(FiltagError, match=r"^eval_file is required"):
        filtag.step4()
    with pytest.raises(FiltagError, match="images_dir is required with network"):
        filtag.step1(network="VGG16")
    assert not list(tmp_path.iterdir())


def test_step1_on_the_default_needs_no_argument(default_files, tmp_path) -> None:
    result = filtag.step1(save_dir=tmp_path, exemplars=0)
    assert isinstance(result, Step1Result)
    meta = result.load()["meta"]
    assert meta["model_path"] == str(default_files.model.resolve())
    assert meta["images_dir"] == str(default_files.images_dir.resolve())


def test_the_filtag_command_runs_each_subcommand_like_its_script(
    default_chain, tmp_path
) -> None:
    out = tmp_path / "out"
    for argv in (
        ["step2", "--activations-file", default_chain["step1"], "--k-q", "1"],
        ["--version"],
        ["step4", "--help"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "filtag", *map(str, argv), "--save-dir", str(out)]
            if argv[0] == "step2"
            else [sys.executable, "-m", "filtag", *argv],
            cwd=REPO, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: filtag step4 [-h] [--eval-file FILE]")
    assert len(list(out.glob("*-TF-*-vars.pkl"))) == 1
