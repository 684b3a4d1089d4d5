"""The command line is quiet by default and detailed with -v, as a user sees it.

The scripts run as real processes, so TensorFlow's C++ start-up lines, written
straight to file descriptor 2, would show in the captured stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: What TensorFlow, XLA, CUDA and absl write when they start (glog-format lines).
TF_NOISE = re.compile(
    r"^[IWEF]\d{4} |absl::InitializeLog|cuda|oneDNN|cpu_feature_guard|XLA",
    re.IGNORECASE,
)


def run(*argv: object) -> subprocess.CompletedProcess:
    """Run a script of the repository as a user would, without a log level set."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *map(str, argv)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def test_default_run_prints_a_line_per_step_and_a_summary(default_files, tmp_path):
    result = run("rundefault.py", "--save-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert not [line for line in lines if TF_NOISE.search(line)], lines
    assert len(lines) == len(set(lines)) <= 12, lines  # no line twice
    assert all(line.startswith(("INFO ", "WARNING ")) for line in lines), lines
    for step in range(1, 5):
        assert sum(line.startswith(f"INFO step {step}: ") for line in lines) == 1
    assert sum(line.startswith("INFO explained ") for line in lines) == 3
    assert "PosixPath(" not in result.stderr and "inputs {" not in result.stderr
    summary, report = result.stdout.splitlines()
    assert re.fullmatch(
        r"best rule [kq] = \d+ \((all layers|last layer)\): hit rate \d+\.\d % at "
        rf"m = 1, chance 10\.0 %; report: {re.escape(report)}",
        summary,
    )
    assert Path(report).is_file() and Path(report).parent == tmp_path
    # the inputs of each run are in its info log
    (info,) = tmp_path.glob("*-TF-*-info.log")
    assert "DEBUG step 2 run " in info.read_text() and "'k_q': [0, 1, 2" in (
        info.read_text()
    )


def test_verbose_shows_the_details(default_chain, small_images, tmp_path) -> None:
    image = next((small_images / "Bag").iterdir())
    argv = ("--filtags-file", default_chain["step2"], "--image", image,
            "--save-dir", tmp_path)  # fmt: skip
    verbose = run("si-eval.py", *argv, "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert "DEBUG si-eval run " in verbose.stderr
    assert f"'image': '{image}'" in verbose.stderr  # the inputs, paths as text
    assert "PosixPath(" not in verbose.stderr
    quiet = run("si-eval.py", *argv)
    lines = quiet.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("INFO explained Bag/"), lines
