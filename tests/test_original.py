"""Files of the original FilTag scripts (written as they write them) work in filtag.

Step 2 reads the original step 1's ``-vars`` (no ``.pkl``, names with ``: ...``);
the tag page and si-eval read the original step 2's ``labels_filters`` (k) and
``labels_filters_per`` (q), given the network, which those files do not record.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from filtag.artifacts import load_vars
from filtag.tagging import filter_tags
from tests.conftest import refused, run_script
from tests.support import original

step2 = importlib.import_module("step2filtertags")
si_eval = importlib.import_module("si-eval")
filtagsvis = importlib.import_module("filTagsvis")


def _original_step1(default_chain, folder: Path) -> tuple[Path, dict]:
    """The default chain's step 1 written as the original script writes it."""
    v1 = load_vars(default_chain["step1"])
    classes = [v1["labels_id"][i] for i in sorted(v1["labels_id"])]
    path = original.write_step1(
        folder, "fashion_mnist_cnn", v1["meta"]["images_dir"], v1["train_filenames"],
        v1["test_filenames"], classes,
        [v1[f"filter_act_{i}"] for i in range(len(classes))],
    )  # fmt: skip
    return path, v1


def test_step2_reads_the_original_step1_file(default_chain, tmp_path: Path) -> None:
    path, v1 = _original_step1(default_chain, tmp_path)
    assert path.name == "2021-01-01-0000-CA-fashion_mnist_cnn-vars"
    written, _ = run_script(step2, "--activations-file", path, "--k-q", "0,1,5,17",
                            "--save-dir", tmp_path / "out")  # fmt: skip
    assert written.name.endswith("-TF-fashion_mnist_cnn-vars.pkl")
    v2 = load_vars(written)
    classes = [v1["labels_id"][i] for i in sorted(v1["labels_id"])]
    # the original stores float32 activations: the tags are those of these values
    acts = [
        np.stack([np.float32(v1[f"filter_act_{i}"][a]) for i in range(10)]).astype(
            np.float64
        )
        for a in range(4)
    ]
    tags_k, tags_q = filter_tags(acts, classes, [0, 1, 5, 17], [0, 1, 5, 17])
    assert v2["filTags_k"] == tags_k and v2["filTags_q"] == tags_q
    assert v2["meta"]["network"] == "fashion_mnist_cnn" and v2["meta"]["step1"] is None


def test_the_tag_page_and_si_eval_read_the_original_step2_file(
    default_chain, default_files, small_images: Path, tmp_path: Path
) -> None:
    v2 = load_vars(default_chain["step2"])
    k = sorted(v2["filTags_k"])
    path = original.write_step2(
        tmp_path, "fashion_mnist_cnn", k, v2["filTags_k"], v2["filTags_q"]
    )
    out = ("--save-dir", tmp_path / "out")
    page, _ = run_script(filtagsvis, "--filtags-file", path, "--value", 5, *out)
    assert "Filter tags of fashion_mnist_cnn, k = 5" in page.read_text()
    image = sorted((small_images / "Bag").iterdir())[0]
    _, ours = run_script(si_eval, "--filtags-file", default_chain["step2"],
                         "--image", image, *out)  # fmt: skip
    _, theirs = run_script(si_eval, "--filtags-file", path, "--image", image,
                           "--network", default_files.model, *out)  # fmt: skip
    assert theirs.splitlines()[:-1] == ours.splitlines()[:-1]  # all but the path
    text = refused(si_eval, "--filtags-file", path, "--image", image, *out)
    assert "does not record the network; pass --network" in text.splitlines()[-1]
    text = refused(si_eval, "--filtags-file", path, "--class-name", "Bag",
                   "--network", default_files.model, *out)  # fmt: skip
    assert "does not record step 1's split; explain an --image" in text
