"""si-eval.py: single-image explanations agree with step 3 and step 2's tags."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from filtag.artifacts import load_vars
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
    page = Path(str(results).replace("-results.txt", "-explanation.html")).read_text()
    assert "<img alt='the image' src='data:image;base64," in page
    assert page.count("<table>") == 3


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
        "--save-dir", tmp_path,
    )  # fmt: skip
    text = results.read_text()
    assert "| n02108422 " in text  # bull mastiff: the network's top-1, a wnid
    assert text.count("| block7a_project_conv") == 5  # k = 5 in the last layer
