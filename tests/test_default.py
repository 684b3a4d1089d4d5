"""The embedded default: a real CNN, real images, and the one-command run."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np

from filtag import default, models
from filtag.artifacts import load_vars
from tests import reference


def test_default_cnn_is_accurate_on_its_test_set(default_files) -> None:
    result = json.loads(default_files.accuracy.read_text())
    assert result["test_images"] == 10_000
    assert result["test_accuracy"] >= 0.88


def test_default_images_are_labelled_as_the_cnn_outputs(default_files) -> None:
    folders = sorted(p.name for p in default_files.images_dir.iterdir())
    assert folders == sorted(default.LABEL_NAMES)
    assert default_files.class_names.read_text().split() == folders
    model = models.load_network(str(default_files.model))
    correct = total = 0
    for index, folder in enumerate(folders):
        files = sorted((default_files.images_dir / folder).iterdir())
        assert len(files) == default.IMAGES_PER_CLASS
        images = np.stack(
            [reference.read_image(p, (28, 28), "grayscale") for p in files]
        )
        predicted = model.predict(images.astype(np.float32), verbose=0).argmax(axis=1)
        correct += int((predicted == index).sum())
        total += len(files)
    assert correct / total >= 0.85


def test_default_run_runs_all_steps(capsys, default_files, tmp_path: Path) -> None:
    rundefault = importlib.import_module("rundefault")
    assert rundefault.main(["--save-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    report = Path(out.strip().splitlines()[-1])
    assert report.parent == tmp_path and report.name.endswith(
        "-HR-fashion_mnist_cnn-report.html"
    )
    summary = out.strip().splitlines()[0]
    assert summary.startswith("best rule ") and summary.endswith(f"report: {report}")
    tags = {p.name.split("-")[4] for p in tmp_path.glob("*-vars.pkl")}
    assert tags == {"QFA", "TF", "E", "HR"}
    (step1_file,) = tmp_path.glob("*-QFA-*-vars.pkl")
    (step4_file,) = tmp_path.glob("*-HR-*-vars.pkl")
    v1 = load_vars(step1_file)
    assert len(v1["train_filenames"]) == 10 * 240 and len(v1["test_filenames"]) == 600
    v4 = load_vars(step4_file)
    assert v4["meta"]["images"] == 600 and v4["meta"]["k_q"] == list(range(26))
    # far above chance (1 in 10): the tags agree with the network
    assert v4["totalhit_k"][0][1] > 0.5 and v4["totalhit_k"][25][3] > 0.8
    best = max(
        v4[f"totalhit_{variant}"][value][1]
        for variant in ("k", "q", "k_ll", "q_ll")
        for value in range(26)
    )
    assert f"hit rate {100 * best:.1f} % at m = 1, chance 10.0 %" in summary
    page = report.read_text()
    links = re.findall(r'href="([^"]+)"', page)
    assert len(links) == 8 and all((tmp_path / link).is_file() for link in links)
    assert sum(link.endswith("-explanation.html") for link in links) == 3
    assert f"<td>{100 * v4['totalhit_k'][25][1]:.1f} </td>" in page
