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
    assert tags == {"QFA", "TF", "E", "HR", "TC"}
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
    check_report(report, v4, tmp_path)


def check_report(report: Path, v4: dict, folder: Path) -> None:
    """The report opens with the result beside chance, the figure and the examples."""
    page = report.read_text()
    body = page.split("<body>")[1]
    best, name, value = max(
        (v4[f"totalhit_{name}"][value][1], name, value)
        for name in ("k", "q", "k_ll", "q_ll")
        for value in reversed(range(26))  # ties: the smaller value, as the report
    )
    scope = "last layer" if name.endswith("_ll") else "all layers"
    headline = (
        "The filter tags rank the network&#x27;s own class first for "
        f"{100 * best:.1f} % of the 600 test images ({name[0]} = {value}, {scope}); "
        "chance is 10.0 %."
    )
    assert (
        f'<h1>filtag on the embedded default</h1>\n<p class="headline">{headline}'
        in body
    )
    order = ['class="headline"', 'class="plotly-graph-div"', 'class="thumbs"',
             '<div class="card"', "<h2>More results", "<table>"]  # fmt: skip
    places = [body.index(mark) for mark in order]
    assert places == sorted(places) and body.count("Plotly.newPlot") == 1
    assert body.count('"name":"chance (m \\u002f 10)"') == 4  # a chance line a plot
    (script,) = re.findall(r'<script src="([^"]+)"', page)
    assert (folder / script).is_file() and script.startswith("plotly-")
    links = [link.split("#")[0] for link in re.findall(r'href="([^"]+)"', page)]
    assert len(links) == 11 and all((folder / link).is_file() for link in links)
    (check,) = [link for link in links if link.endswith("-check.html")]
    assert "tagged filters matter for" in (folder / check).read_text()
    assert "tag check, do the tagged filters matter? tagged filters matter for" in page
    # thumbnails: two hits and a miss, each page saying the same under the rule
    thumbs = re.findall(
        r'<a class="is-(hit|miss)" href="([^"]+)"><img src="data:', body
    )
    assert [verdict for verdict, _ in thumbs] == ["hit", "hit", "miss"]
    anchors: set[str] = set()
    for verdict, link in thumbs:
        assert link.endswith("-explanation.html")
        explained = (folder / link).read_text()
        scope_words = "last layer only" if name.endswith("_ll") else "all layers"
        assert f'"{verdict}">{verdict}</span> at m = 1, {scope_words}: ' in explained
        assert f"active filters: {name[0]} = {value}: " in explained
        assert "<h2>Where the active filters fire</h2>" in explained
        cards = re.findall(r'href="([^"#]+-VIS-[^"#]+)#([^"]+)"', explained)
        assert cards and all((folder / page).is_file() for page, _ in cards)
        anchors.update(anchor for _, anchor in cards)
    # the tables, with a chance row each
    assert f"<td>{100 * v4['totalhit_k'][25][1]:.1f}</td>" in page
    chance = '<tr class="chance"><td class="name">chance</td><td>10.0</td><td>20.0</td>'
    assert body.count(chance) == 4
    # the tag page and its cards are under the explanations' rule, and linked;
    # the pages share one plotly.js: the tag page is small, its pictures beside it
    (tag_page,) = folder.glob(f"*-VIS-*-{name[0]}{value}.html")
    assert tag_page.name in links and tag_page.stat().st_size <= 3_000_000
    tag_text = tag_page.read_text()
    assert tag_text.count('<div class="card"') == 176
    assert anchors and all(f'id="{anchor}"' in tag_text for anchor in anchors)
    pictures = list(tag_page.with_name(tag_page.stem + "-cards").iterdir())
    assert len(pictures) == 176
    # one filter card and an image with its summed map on the report
    (card,) = re.findall(r'<div class="card" id="([^"]+)"', body)
    assert f'href="{tag_page.name}#{card}"' in body and f'id="{card}"' in tag_text
    assert "Where the filters tagged " in body
