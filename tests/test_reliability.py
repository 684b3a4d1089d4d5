"""Reliability: interrupted runs resume to the same result; nothing half-written."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from filtag import activations
from filtag.artifacts import load_vars
from tests.conftest import run_script

step1 = importlib.import_module("step1filteractivations")
step3 = importlib.import_module("step3evaluation")
REPO = Path(__file__).resolve().parent.parent
RUN_SPECIFIC = {"run_id", "created_utc", "resume"}


def _same_results(a: Path, b: Path) -> None:
    """Assert two runs' files hold the same variables (meta but for run id, time)."""
    va, vb = load_vars(a), load_vars(b)
    assert list(va) == list(vb)
    for name in va:
        if name == "meta":
            strip = lambda m: {k: v for k, v in m.items() if k not in RUN_SPECIFIC}  # noqa: E731
            assert strip(va[name]) == strip(vb[name])
        elif name.startswith("filter_act_"):
            for x, y in zip(va[name], vb[name], strict=True):
                np.testing.assert_array_equal(x, y)  # bit for bit
        elif name != "eval_files":
            assert va[name] == vb[name], name


class _Interrupt:
    """Make FilterProbe raise KeyboardInterrupt (as Ctrl-C would) on batch ``n``."""

    def __init__(self, monkeypatch, n: int) -> None:
        self.calls = 0
        original = activations.FilterProbe.__call__

        def call(probe, images):
            self.calls += 1
            if self.calls == n:
                raise KeyboardInterrupt
            return original(probe, images)

        monkeypatch.setattr(activations.FilterProbe, "__call__", call)


def test_step1_resumes_after_ctrl_c_mid_class(
    monkeypatch, capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    args = ["--network", str(default_files.model), "--images-dir", str(small_images),
            "--batch-size", "3"]  # fmt: skip
    whole, _ = run_script(step1, *args, "--save-dir", tmp_path / "whole")
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _Interrupt(patch, 12)  # 3 images a batch, 10 a class: inside class 3
        assert step1.main([*args, "--save-dir", str(out)]) == 130
    assert "--resume RUN_ID" in capsys.readouterr().err
    (checkpoint,) = out.glob("*-checkpoint.pkl")
    assert not list(out.glob("*-vars.pkl"))
    run_id = checkpoint.name.split("-QFA-")[0]
    resumed, _ = run_script(step1, *args, "--save-dir", out, "--resume", run_id)
    assert resumed.name.startswith(run_id) and not checkpoint.exists()
    _same_results(whole, resumed)
    assert (
        "resuming after 30 of 100 train images"
        in Path(str(resumed).replace("-vars.pkl", "-info.log")).read_text()
    )


def test_step3_resumes_after_ctrl_c_mid_class(
    monkeypatch, capsys, default_chain, tmp_path: Path
) -> None:
    args = ["--filtags-file", str(default_chain["step2"]), "--batch-size", "1"]
    whole, _ = run_script(step3, *args, "--save-dir", tmp_path / "whole")
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _Interrupt(patch, 5)  # 2 test images a class: the 1st image of class 2
        assert step3.main([*args, "--save-dir", str(out)]) == 130
    written = sorted(p.name.split("-E-")[1] for p in out.glob("*-vars?.pkl"))
    assert written == ["fashion_mnist_cnn-vars0.pkl", "fashion_mnist_cnn-vars1.pkl"]
    (checkpoint,) = out.glob("*-checkpoint.pkl")
    resumed, _ = run_script(step3, *args, "--save-dir", out, "--resume", checkpoint)
    _same_results(whole, resumed)
    v_whole, v_resumed = load_vars(whole), load_vars(resumed)
    for a, b in zip(v_whole["eval_files"], v_resumed["eval_files"], strict=True):
        _same_results(whole.parent / a, resumed.parent / b)


def test_step1_resumes_after_kill(default_files, small_images: Path, tmp_path: Path):
    images = tmp_path / "images"
    shutil.copytree(small_images, images)
    args = ["--network", str(default_files.model), "--images-dir", str(images),
            "--batch-size", "1", "--save-dir", str(tmp_path)]  # fmt: skip
    code = "import sys, step1filteractivations as s; sys.exit(s.main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*-checkpoint.pkl")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (checkpoint,) = tmp_path.glob("*-checkpoint.pkl")
    if list(tmp_path.glob("*-vars.pkl")):
        pytest.fail("the run ended before it could be killed")
    resumed, _ = run_script(step1, *args, "--resume", checkpoint.name.split("-QFA-")[0])
    whole, _ = run_script(step1, *args)
    _same_results(whole, resumed)


def test_resume_refuses_other_inputs_and_finished_runs(
    capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    args = ["--network", str(default_files.model), "--images-dir", str(small_images),
            "--save-dir", str(tmp_path)]  # fmt: skip
    done, _ = run_script(step1, *args)
    run_id = done.name.split("-QFA-")[0]
    assert step1.main([*args, "--resume", run_id]) == 2
    assert f"--resume {run_id}: 0 checkpoints" in capsys.readouterr().err
    fake = tmp_path / f"{run_id}-9-QFA-fashion_mnist_cnn-checkpoint.pkl"
    from filtag.artifacts import Run, write_checkpoint

    inputs = {**load_vars(done)["meta"], "split": 0.5}
    write_checkpoint(
        Run(tmp_path, f"{run_id}-9", "QFA", "fashion_mnist_cnn"),
        {"inputs": inputs, "sums": np.zeros(1), "counts": np.zeros(1), "consumed": 0},
    )
    assert step1.main([*args, "--resume", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "split was 0.5 in the interrupted run but is 0.2 now" in err
    assert len([line for line in err.splitlines() if line.startswith("ERROR")]) == 1
