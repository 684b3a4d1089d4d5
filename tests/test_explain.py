"""si-eval.py: single-image explanations agree with step 3 and step 2's tags."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from filtag import explanation
from filtag.artifacts import load_vars
from filtag.explanation import Verdict
from filtag.variants import variant
from tests.conftest import refused, run_script

si_eval = importlib.import_module("si-eval")


def _class_file(chain: dict, name: str) -> dict:
    v3 = load_vars(chain["step3"])
    files = [load_vars(chain["step3"].parent / f) for f in v3["eval_files"]]
    return next(f for f in files if name in f["class_images_dict"])


def test_class_mode_matches_step3(default_chain, tmp_path: Path) -> None:
    results, printed = run_script(
        si_eval, "--filtags-file", default_chain["step2"], "--class-name", "Coat",
        "--kind", "q", "--value", "5", "--save-dir", tmp_path,
    )  # fmt: skip
    step3 = _class_file(default_chain, "Coat")
    text = results.read_text()
    assert text.startswith("Tag counts of the active filters, q = 5")
    for image, y, ranking in zip(
        step3["class_images_dict"]["Coat"], step3["y"], step3["y_q"][5], strict=True
    ):
        (row,) = [line for line in text.splitlines() if line.startswith(f"| {image}")]
        assert f"{y[0][0]} ({100 * y[0][1]:.1f} %)" in row
        assert ", ".join(f"{n}:{c}" for n, c in ranking[:5]) in row
    assert printed.strip().splitlines()[-1] == str(results)


def test_image_mode_explains_each_active_filter(default_chain, small_images, tmp_path):
    step3 = _class_file(default_chain, "Bag")
    image = step3["class_images_dict"]["Bag"][0]
    results, _ = run_script(
        si_eval, "--filtags-file", default_chain["step2"], "--image",
        small_images / image, "--kind", "k", "--value", "2", "--html",
        "--save-dir", tmp_path,
    )  # fmt: skip
    text = results.read_text()
    tags = load_vars(default_chain["step2"])["filTags_k"][2]
    rows = [line.split("|")[1:-1] for line in text.splitlines() if "| conv" in line]
    assert [r[0].strip() for r in rows] == ["conv1"] * 2 + ["conv2"] * 2 + [
        "conv3"
    ] * 2 + ["conv4"] * 2  # k = 2: two active filters per layer
    counts: dict[str, int] = {}
    for layer, filt, _, listed in rows:
        expected = tags[int(layer.strip()[-1]) - 1][int(filt)]
        assert listed.strip() == (", ".join(expected) or "-")
        for name in expected:
            counts[name] = counts.get(name, 0) + 1
    ranking = step3["y_k"][2][0]
    assert sorted(counts.items()) == sorted(ranking)  # step 3's counts, all layers
    for name, count in ranking:
        assert f"| {name}" in text and str(count) in text
    assert f"| {step3['y'][0][0][0]}" in text  # the network's top-1
    top1 = step3["y"][0][0][0]
    for scope, ranked in (
        ("all layers", ranking),
        ("last layer", step3["y_k_ll"][2][0]),
    ):
        word = "Hit" if ranked[0][0] == top1 else "Miss"
        assert f"{word} at m = 1 ({scope}): " in text

    page = Path(str(results).replace("-results.txt", "-explanation.html")).read_text()
    name = Path(image).name
    assert f"<title>{name}</title>" in page and f"<h1>{name}</h1>" in page
    assert str(small_images) not in page  # no absolute path
    assert '<img src="data:image/png;base64,' in page and f'alt="{name}"' in page
    assert page.count("<table>") == 3 and "<script" not in page
    hit = ranking[0][0] == top1
    badge = '<span class="hit">hit</span>' if hit else '<span class="miss">miss</span>'
    assert f"{badge} at m = 1, all layers: " in page
    # the network's class is highlighted: its top-5 row, its ranking row, its tags
    first_cells = re.findall(r'<tr class="network"><td[^>]*>([^<]*)</td>', page)
    place = [n for n, _ in ranking].index(top1) + 1
    assert first_cells == [top1, str(place)]
    marked = sum(top1 in tags[int(r[0].strip()[-1]) - 1][int(r[1])] for r in rows)
    table = page.split("<h2>Active filters per layer")[1]
    assert table.count(f"<mark>{top1}</mark>") == marked


def test_step3_verdicts_count_step4s_hits(default_chain) -> None:
    v4 = load_vars(default_chain["step4"])
    for name in ("k", "k_ll", "q", "q_ll"):
        for value in (0, 2, 25):
            verdicts = explanation.step3_verdicts(
                default_chain["step3"], variant(name), value
            )
            assert len(verdicts) == v4["meta"]["images"] == 20
            rate = sum(v.hit for v in verdicts) / len(verdicts)
            assert rate == pytest.approx(v4[f"totalhit_{name}"][value][1])
    step3 = _class_file(default_chain, "Bag")
    bags = [v for v in verdicts if v.image.startswith("Bag/")]
    assert [v.image for v in bags] == step3["class_images_dict"]["Bag"]
    assert [v.network for v in bags] == [y[0][0] for y in step3["y"]]
    assert [list(map(list, v.ranking)) for v in bags] == [
        list(map(list, r)) for r in step3["y_q_ll"][25]
    ]
    chosen = explanation.examples(verdicts, hits=2, misses=1)
    assert [v.hit for v in chosen] == [True, True, False]
    folders = [v.image.split("/")[0] for v in chosen]
    assert chosen[0] == next(v for v in verdicts if v.hit)
    assert chosen[2] == next(
        v for v in verdicts if not v.hit and v.image.split("/")[0] not in folders[:2]
    )
    assert explanation.examples(verdicts[:0]) == []


def test_verdict_sentences() -> None:
    hit = Verdict("Bag/1.png", "Bag", (("Bag", 5), ("Coat", 5)))
    assert hit.hit and hit.rank == 1
    assert hit.line("all layers") == (
        "Hit at m = 1 (all layers): the tags rank the network's class, Bag, first."
    )
    tie = Verdict("Bag/1.png", "Bag", (("Ankle_boot", 5), ("Bag", 5), ("Coat", 1)))
    assert not tie.hit and tie.rank == 2
    assert tie.sentence() == (
        "the tags rank Ankle_boot first and the network's class, Bag, at rank 2, "
        "tied at 5 tags (ties go to the class listed first)."
    )
    below = Verdict("x.png", "Bag", (("Coat", 6), ("Bag", 5)))
    assert below.sentence().endswith("the network's class, Bag, at rank 2.")
    absent = Verdict("x.png", "n02108422", (("Coat", 6),))
    assert absent.rank is None and absent.sentence() == (
        "the tags rank Coat first; no active filter carries the network's class, "
        "n02108422 bull_mastiff."
    )
    assert Verdict("x.png", "Bag", ()).sentence() == "no active filter carries a tag."


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "pass --class-name NAME or --image FILE"),
        (["--class-name", "Cat"], "--class-name ['Cat'] are not classes of"),
        (["--class-name", "Bag", "--value", "3"], "--value 3 is not a k value of"),
        (["--image", "README.md"], "--image README.md cannot be read as an image"),
    ],
)
def test_bad_input(default_chain, tmp_path, argv, message) -> None:
    text = refused(
        si_eval, "--filtags-file", default_chain["step2"], "--save-dir", tmp_path, *argv
    )
    assert message in text


def test_on_efficientnet_lite0(lite0_chain, imagenet_images, tmp_path) -> None:
    image = next(imagenet_images.glob("n02108422/*.jpg"))
    results, _ = run_script(
        si_eval, "--filtags-file", lite0_chain["step2"], "--image", image,
        "--html", "--save-dir", tmp_path,
    )  # fmt: skip
    text = results.read_text()
    assert "| n02108422 " in text  # bull mastiff: the network's top-1, a wnid
    assert text.count("| block7a_project_conv") == 5  # k = 5 in the last layer
    page = Path(str(results).replace("-results.txt", "-explanation.html")).read_text()
    assert f"<title>{image.name}</title>" in page
    assert "file: n02108422/" in page  # the folder, not the absolute path
    # the network's class, by wnid and name, first of the highlighted top-5
    assert '<tr class="network"><td class="name">n02108422 bull_mastiff</td>' in page
    assert "the network&#x27;s class: n02108422 bull_mastiff" in page
