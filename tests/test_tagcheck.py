"""tagcheck.py end to end: the drops equal a slow reference on real networks."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest

from filtag import ablation, data, models
from filtag.artifacts import load_vars, write_vars
from tests import reference
from tests.conftest import refused, run_script

tagcheck = importlib.import_module("tagcheck")

#: Variables that hold one number per class.
PER_CLASS = (
    "drop_tagged", "drop_random", "drop_others", "n_ablated", "acc_drop_tagged",
    "acc_drop_random", "logp_drop_tagged", "logp_drop_random",
)  # fmt: skip


def _reference_check(check_file: Path, model_file: Path) -> dict[str, dict]:
    """The check's drops by the book: zeroed copies of the network, image by image."""
    tc = load_vars(check_file)
    meta = tc["meta"]
    v2 = load_vars(meta["filtags_file"])
    meta1 = v2["meta"]["step1"]
    assert meta1["preprocess"] == "none"  # the reference feeds raw pixels
    names, layer_names = v2["meta"]["class_names"], meta1["layer_names"]
    tags = v2[f"filTags_{meta['kind']}"][meta["value"]]
    split = data.split_images(Path(meta["images_dir"]), meta["split"], meta["seed_rn"])
    model = models.load_network(str(model_file))
    size = tuple(meta1["image_size"])
    images = [
        [reference.read_image(split.images_dir / p, size, meta1["color_mode"])
         for p in files]
        for files in split.test
    ]  # fmt: skip
    target = [meta1["class_names"].index(name) for name in names]  # output index
    chosen = [layer_names.index(name) for name in meta["layers"]]
    filters = [meta1["filters_per_layer"][a] for a in chosen]
    expected: dict[str, dict] = {name: {} for name in PER_CLASS}
    for c, name in enumerate(names):
        if not images[c]:
            continue
        zeroed = {layer_names[a]: [f for f, t in enumerate(tags[a]) if name in t]
                  for a in chosen}  # fmt: skip
        tagged = np.concatenate(
            [np.isin(np.arange(n), zeroed[layer_names[a]]) for a, n in
             zip(chosen, filters, strict=True)]
        )  # fmt: skip
        draws = ablation.random_draws(
            tagged, filters, meta["random_draws"], meta["seed_rn"], c
        )
        starts = np.cumsum([0, *filters[:-1]])
        copies = [reference.zeroed_copy(model, zeroed)] + [
            reference.zeroed_copy(
                model,
                {layer_names[a]: np.flatnonzero(d[s : s + n]).tolist()
                 for a, s, n in zip(chosen, starts, filters, strict=True)},
            )
            for d in draws
        ]  # fmt: skip
        own = reference.reference_drops(
            model, copies, images[c], [target[c]] * len(images[c])
        )
        limit = meta["others_per_class"]  # None: all
        others = [
            (im, target[k])
            for k in range(len(names))
            if k != c
            for im in images[k][:limit]
        ]
        other = (
            reference.reference_drops(
                model, copies[:1], [im for im, _ in others], [k for _, k in others]
            )[0]
            if others
            else np.full(3, np.nan)
        )
        random = own[1:].mean(axis=0)
        expected["n_ablated"][name] = int(tagged.sum())
        for prefix, i in (("", 0), ("logp_", 1), ("acc_", 2)):
            expected[f"{prefix}drop_tagged"][name] = own[0, i]
            expected[f"{prefix}drop_random"][name] = random[i]
        expected["drop_others"][name] = other[0]
        expected.setdefault("drop_random_draws", {})[name] = own[1:, 0]
    return expected


def _assert_equal_to_reference(tc: dict, expected: dict) -> None:
    for variable, by_class in expected.items():
        assert list(tc[variable]) == list(by_class), variable
        for name, value in by_class.items():
            np.testing.assert_allclose(
                tc[variable][name], value, atol=2e-5, err_msg=f"{variable} {name}"
            )


@pytest.fixture(scope="module")
def default_check(default_chain, tmp_path_factory) -> tuple[Path, str]:
    """tagcheck.py on the default chain: two named layers, 3 random draws."""
    out = tmp_path_factory.mktemp("check")
    return run_script(
        tagcheck, "--filtags-file", default_chain["step2"], "--layers",
        "conv2,conv4", "--random-draws", 3, "--save-dir", out,
    )  # fmt: skip


def test_drops_equal_the_slow_reference_on_the_default(
    default_check, default_files
) -> None:
    path, printed = default_check
    tc = load_vars(path)
    expected = _reference_check(path, default_files.model)
    _assert_equal_to_reference(tc, expected)
    assert tc["meta"]["layers"] == ["conv2", "conv4"]
    assert max(abs(v) for v in tc["drop_tagged"].values()) > 0.01  # not all zero
    # what the script prints: the table, the summary, the path last
    lines = printed.strip().splitlines()
    assert lines[-1] == str(path)
    assert tc["meta"]["test_images"] == 20
    summary = next(line for line in lines if line.startswith("tagged filters matter"))
    assert summary.endswith(
        f"for random filters, of log p_c "
        f"{np.mean(list(tc['logp_drop_tagged'].values())):.3f} vs "
        f"{np.mean(list(tc['logp_drop_random'].values())):.3f}"
    )
    rows = [line for line in lines if line.startswith("| ") and "|" in line[2:]]
    table = [r.split("|")[1].strip() for r in rows[1 : 1 + len(tc["drop_tagged"])]]
    gap = {n: tc["drop_tagged"][n] - tc["drop_random"][n] for n in tc["drop_tagged"]}
    assert table == sorted(gap, key=lambda n: -gap[n])  # sorted by the gap
    page = path.with_name(path.name.replace("-vars.pkl", "-check.html")).read_text()
    assert page.count('class="plotly-graph-div"') == 3 and summary in page


def test_others_per_class_on_the_first_layer(default_chain, default_files, tmp_path):
    path, _ = run_script(
        tagcheck, "--filtags-file", default_chain["step2"], "--layers", "conv1",
        "--random-draws", 1, "--others-per-class", 1, "--value", 2,
        "--save-dir", tmp_path,
    )  # fmt: skip
    tc = load_vars(path)
    assert tc["meta"]["others_per_class"] == 1 and tc["meta"]["layers"] == ["conv1"]
    _assert_equal_to_reference(tc, _reference_check(path, default_files.model))
    assert set(tc["n_ablated"].values()) == {2}


def test_hit_rates_equal_step4_and_baselines(default_check, default_chain) -> None:
    tc = load_vars(default_check[0])
    v4 = load_vars(default_chain["step4"])
    for m in (1, 2, 3):
        assert tc["hit_rate"]["all"][m] == pytest.approx(v4["totalhit_k"][5][m])
        assert tc["hit_rate"]["last"][m] == pytest.approx(v4["totalhit_k_ll"][5][m])
        assert tc["hit_chance"][m] == m / 10
        draws = tc["hit_shuffled_draws"]["all"][m]
        assert draws.shape == (3,)
        assert tc["hit_shuffled"]["all"][m] == pytest.approx(draws.mean())


def test_specificity_from_step1(default_check, default_chain) -> None:
    tc = load_vars(default_check[0])
    v1, v2 = load_vars(default_chain["step1"]), load_vars(default_chain["step2"])
    tags = v2["filTags_k"][5]
    for a, layer in enumerate(tags):
        assert tc["filter_tags"][a].tolist() == [len(t) for t in layer]
        for f in range(0, len(layer), 7):
            acts = [float(v1[f"filter_act_{c}"][a][f]) for c in range(10)]
            if sum(acts) == 0:  # a filter no class activates
                assert math.isnan(tc["filter_entropy"][a][f])
                continue
            p = [x / sum(acts) for x in acts]
            entropy = -sum(x * math.log(x) for x in p if x > 0) / math.log(10)
            assert tc["filter_entropy"][a][f] == pytest.approx(entropy)


def test_drops_equal_the_slow_reference_on_lite0(lite0_chain, lite0_model, tmp_path):
    path, _ = run_script(
        tagcheck, "--filtags-file", lite0_chain["step2"], "--random-draws", 2,
        "--save-dir", tmp_path,
    )  # fmt: skip
    tc = load_vars(path)
    expected = _reference_check(path, lite0_model)
    assert list(tc["drop_tagged"]) == ["n03594945"]  # the one class with a test image
    _assert_equal_to_reference(tc, expected)
    assert math.isnan(tc["drop_others"]["n03594945"])  # no other test image
    assert tc["n_ablated"]["n03594945"] == 5 and len(tc["meta"]["layers"]) == 1


def test_reruns_are_identical_and_a_class_without_tags_is_nan(
    default_chain, tmp_path
) -> None:
    args = ("--random-draws", 4, "--save-dir", tmp_path)
    first, _ = run_script(tagcheck, "--filtags-file", default_chain["step2"], *args)
    again, _ = run_script(tagcheck, "--filtags-file", default_chain["step2"], *args)
    v1, v2 = load_vars(first), load_vars(again)
    assert list(v1) == list(v2)
    for name in v1:
        if name != "meta":
            np.testing.assert_equal(v1[name], v2[name], err_msg=name)
    # the same step-2 file without the tags of Bag in the last layer
    edited = load_vars(default_chain["step2"])
    edited["filTags_k"][5][-1] = [
        [t for t in tags if t != "Bag"] for tags in edited["filTags_k"][5][-1]
    ]
    untagged = tmp_path / "2026-01-01-0000-TF-fashion_mnist_cnn-vars.pkl"
    write_vars(untagged, edited, "step 2 without the tags of Bag")
    path, printed = run_script(tagcheck, "--filtags-file", untagged, *args)
    tc = load_vars(path)
    warnings = path.with_name(path.name.replace("-vars.pkl", "-warnings.log"))
    assert "class 'Bag' has no filter tagged by k = 5 in conv4" in warnings.read_text()
    assert tc["n_ablated"]["Bag"] == 0
    for name in ("drop_tagged", "drop_random", "drop_others", "logp_drop_tagged"):
        assert math.isnan(tc[name]["Bag"]), name
    for name in PER_CLASS:  # the other classes' sets and draws are unchanged
        others = {c: x for c, x in tc[name].items() if c != "Bag"}
        assert others == {c: x for c, x in v1[name].items() if c != "Bag"}, name
    assert "(1 with NaN drops: see the warnings)" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--value", "3"], "--value 3 is not a k value of"),
        (["--layers", "conv9"], "--layers 'conv9'"),
        (["--random-draws", "0"], "--random-draws"),
        (["--seed-rn", "7"], "gives another train/test split than step 1 used"),
        (["--kind", "z"], "--kind"),
    ],
)
def test_bad_input(default_chain, tmp_path, argv, message) -> None:
    text = refused(
        tagcheck, "--filtags-file", default_chain["step2"], "--save-dir", tmp_path,
        *argv,
    )  # fmt: skip
    assert message in text
    assert not list(tmp_path.glob("*-TC-*-vars.pkl"))


def test_refuses_a_step1_file(default_chain, tmp_path) -> None:
    text = refused(
        tagcheck, "--filtags-file", default_chain["step1"], "--save-dir", tmp_path
    )
    assert "is a step1filteractivations.py file" in text


def test_refuses_a_step2_file_whose_step1_file_is_gone(default_chain, tmp_path):
    moved = load_vars(default_chain["step2"])
    moved["meta"]["activations_file"] = str(tmp_path / "gone-QFA-x-vars.pkl")
    path = tmp_path / "2026-01-01-0000-TF-fashion_mnist_cnn-vars.pkl"
    write_vars(path, moved, "step 2 whose step-1 file is gone")
    text = refused(tagcheck, "--filtags-file", path, "--save-dir", tmp_path)
    assert "gone-QFA-x-vars.pkl (named in" in text and "put it back" in text
