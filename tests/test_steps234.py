"""Steps 2, 3 and 4 end to end on real images, against the slow references."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from filtag import data, models
from filtag.artifacts import load_vars, write_vars
from filtag.labels import imagenet_wnids
from filtag.variants import RANKING_VARS
from tests import reference
from tests.conftest import CHAIN_K_Q as K_Q
from tests.conftest import refused as _fails
from tests.conftest import run_script as _run

step1, step2, step3, step4 = (
    importlib.import_module(name)
    for name in (
        "step1filteractivations",
        "step2filtertags",
        "step3evaluation",
        "step4hitrates",
    )
)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def chain(default_chain: dict[str, Path]) -> dict[str, Path]:
    """Steps 1-4 on the small Fashion-MNIST folder, k_q = K_Q, m = 1-3,10."""
    return default_chain


def test_step2_tags_match_the_reference(chain) -> None:
    v1, v2 = load_vars(chain["step1"]), load_vars(chain["step2"])
    names = list(v1["labels_id"].values())
    n_layers = len(v1["filter_act_0"])
    class_acts = [
        np.stack([v1[f"filter_act_{i}"][a] for i in range(len(names))])
        for a in range(n_layers)
    ]
    assert sorted(v2["filTags_k"]) == sorted(v2["filTags_q"]) == K_Q
    for kind in ("k", "q"):
        for value in K_Q:
            expected = reference.reference_tags(class_acts, names, kind, value)
            assert v2[f"filTags_{kind}"][value] == expected, (kind, value)
    assert v2["meta"]["step1"] == v1["meta"] and v2["meta"]["k_q"] == K_Q
    assert sum(map(len, v2["filTags_k"][1][3])) == len(names)  # k=1: one filter each


def test_step3_matches_the_reference(chain, default_files, small_images: Path) -> None:
    v1, v2, v3 = (load_vars(chain[s]) for s in ("step1", "step2", "step3"))
    names = list(v1["labels_id"].values())
    model = models.load_network(str(default_files.model))
    probe = keras.Model(
        model.inputs, [model.get_layer(n).output for n in v1["meta"]["layer_names"]]
    )
    split = data.split_images(small_images, 0.2, 123)
    assert v3["classes"] == names and v3["k_q"] == K_Q
    assert len(v3["eval_files"]) == len(names)
    for x, name in enumerate(names):
        file = chain["step3"].parent / v3["eval_files"][x]
        assert file.name.endswith(f"-vars{x}.pkl")
        c = load_vars(file)
        assert list(c) == ["y", "y_k", "y_k_ll", "y_q", "y_q_ll", "class_images_dict"]
        assert c["class_images_dict"] == {name: split.test[x]}
        images = np.stack(
            [
                reference.read_image(small_images / p, (28, 28), "grayscale")
                for p in split.test[x]
            ]
        ).astype(np.float32)
        probabilities = model.predict(images, verbose=0)
        maps = probe.predict(images, verbose=0)
        for i in range(len(images)):
            top5 = c["y"][i]
            assert [n for n, _ in top5] == [
                names[j] for j in np.argsort(-probabilities[i])[:5]
            ]
            np.testing.assert_allclose(
                [p for _, p in top5], np.sort(probabilities[i])[::-1][:5], rtol=1e-5
            )
            acts = [
                a[None]
                for a in reference.image_filter_activations([m[i] for m in maps])
            ]
            for kind in ("k", "q"):
                for value in K_Q:
                    tags = v2[f"filTags_{kind}"][value]
                    counts_all, counts_last = reference.reference_counts(
                        tags, acts, names, kind, value
                    )
                    assert c[f"y_{kind}"][value][i] == reference.reference_ranking(
                        counts_all[0], names
                    )
                    assert c[f"y_{kind}_ll"][value][i] == reference.reference_ranking(
                        counts_last[0], names
                    )


def _flat(nested: dict, keys: tuple = ()) -> dict[tuple, float]:
    """{a: {b: x}} -> {(a, b): x}, for pytest.approx."""
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(_flat(value, (*keys, key)))
        else:
            flat[(*keys, key)] = value
    return flat


def test_step4_matches_the_reference(chain) -> None:
    v3, v4 = load_vars(chain["step3"]), load_vars(chain["step4"])
    per_file = [load_vars(chain["step3"].parent / f) for f in v3["eval_files"]]
    top1 = {}
    rankings = {variant: {} for variant in ("k", "q", "k_ll", "q_ll")}
    for c in per_file:
        (name,) = c["class_images_dict"]
        top1[name] = [y[0][0] for y in c["y"]]
        for variant in rankings:
            rankings[variant][name] = c[f"y_{variant}"]
    for variant, by_class in rankings.items():
        per_class, total, mean = reference.reference_rates(
            top1, by_class, [1, 2, 3, 10]
        )
        assert _flat(v4[f"hit_{variant}"]) == pytest.approx(_flat(per_class))
        assert _flat(v4[f"totalhit_{variant}"]) == pytest.approx(_flat(total))
        assert _flat(v4[f"meanhit_{variant}"]) == pytest.approx(_flat(mean))
    assert list(v4) == [
        *(
            f"{p}_{v}"
            for p in ("hit", "totalhit", "meanhit")
            for v in ("k", "q", "k_ll", "q_ll")
        ),
        "meta",
    ]
    # the tags agree with the network far above chance (10 classes)
    assert v4["totalhit_k"][25][1] > 0.3 and v4["totalhit_k"][0][3] > 0.6
    results = Path(str(chain["step4"]).replace("-vars.pkl", "-results.txt")).read_text()
    chance = "Chance (a random ranking, m / 10 classes): m=1 10.0 %, m=2 20.0 %, "
    assert results.startswith(chance)
    assert "\nTotal (pooled over all images), k most active filters" in results
    assert "Class Bag, q % most active filters, last layer" in results
    assert f"| 25  | {100 * v4['totalhit_k'][25][1]:.1f}" in results
    printed = chain["step4_stdout"]
    assert printed.startswith(chance)
    assert "\nTotal (pooled over all images), k most active filters" in printed
    best = max(
        (rates[1], variant, value)
        for variant in ("k", "q", "k_ll", "q_ll")
        for value, rates in v4[f"totalhit_{variant}"].items()
    )
    assert f"hit rate {100 * best[0]:.1f} % at m = 1, chance 10.0 %" in printed
    assert "Mean over classes" not in printed and "-HR-" in printed.splitlines()[-1]


def test_step2_runs_without_tensorflow_on_a_seed_style_file(
    tmp_path: Path, chain
) -> None:
    v1 = load_vars(chain["step1"])
    seed_style = {
        k: v for k, v in v1.items() if k.startswith(("labels_id", "filter_act_"))
    }
    path = write_vars(
        tmp_path / "2020-01-01-0000-QFA-VGG16-vars.pkl", seed_style, "seed"
    )
    code = (
        "import sys, step2filtertags\n"
        f"rc = step2filtertags.main(['--activations-file', {str(path)!r}, '--k-q', '1',"
        f" '--save-dir', {str(tmp_path)!r}])\n"
        "assert rc == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    written = Path(result.stdout.strip().splitlines()[-1])
    assert written.name.endswith("-TF-VGG16-vars.pkl")
    assert load_vars(written)["meta"]["step1"] is None


def test_wrong_truncated_or_foreign_files_are_refused(chain, tmp_path: Path) -> None:
    out = ("--save-dir", tmp_path)
    text = _fails(step2, "--activations-file", chain["step3"], *out)
    assert "is a step3evaluation.py file; it needs the -vars.pkl that step1" in text
    text = _fails(step3, "--filtags-file", chain["step1"], *out)
    assert "step1filteractivations.py file; it needs the -vars.pkl that step2" in text
    text = _fails(step4, "--eval-file", chain["step2"], *out)
    assert "step2filtertags.py file; it needs the -vars.pkl that step3" in text
    truncated = tmp_path / "t-vars.pkl"
    truncated.write_bytes(chain["step1"].read_bytes()[:100])
    (tmp_path / "t-vars-names.pkl").write_bytes(
        Path(str(chain["step1"]).replace("-vars.pkl", "-vars-names.pkl")).read_bytes()
    )
    text = _fails(step2, "--activations-file", truncated, *out)
    assert f"{truncated} is truncated or not a filtag file" in text
    foreign = tmp_path / "f-vars.pkl"
    foreign.write_bytes(b"\x80\x04cos\nsystem\n.")
    (tmp_path / "f-vars-names.pkl").write_bytes(
        b"\x80\x04]\x94X\x04\x00\x00\x00meta\x94a."
    )
    text = _fails(step2, "--activations-file", foreign, *out)
    assert "refused global 'os.system'" in text
    assert not list(tmp_path.glob("*-TF-*-vars.pkl"))


@pytest.mark.parametrize(
    ("script", "flag", "value", "message"),
    [
        ("step2", "--k-q", "2.5", "argument --k-q: expected whole numbers >= 0"),
        ("step2", "--k-q", "-1", "argument --k-q: expected whole numbers >= 0"),
        ("step2", "--k-q", "5-1", "range '5-1' runs backwards"),
        ("step4", "--m", "0", "argument --m: expected whole numbers >= 1"),
        ("step4", "--m", "x", "argument --m: expected whole numbers >= 1"),
        ("step4", "--m", "0-2", "argument --m: expected whole numbers >= 1"),
    ],
)
def test_bad_numbers_are_refused(chain, tmp_path, script, flag, value, message) -> None:
    module = {"step2": step2, "step4": step4}[script]
    source = {"step2": ("--activations-file", chain["step1"]),
              "step4": ("--eval-file", chain["step3"])}[script]  # fmt: skip
    assert message in _fails(module, *source, flag, value, "--save-dir", tmp_path)


def test_huge_values_are_refused_at_once(chain, tmp_path) -> None:
    """Values above 100,000 are refused before any range is built."""
    text = _fails(step2, "--activations-file", chain["step1"], "--k-q",
                  "0-1000000000", "--save-dir", tmp_path)  # fmt: skip
    assert (
        "argument --k-q: expected values <= 100,000 (k is useful up to the largest "
        "layer's filter count, e.g. 512 for VGG16, 2048 for ResNet50; q up to 100); "
        "Received: '0-1000000000'"
    ) in text
    text = _fails(step4, "--eval-file", chain["step3"], "--m", "1,200000",
                  "--save-dir", tmp_path)  # fmt: skip
    assert "(m is useful up to the number of classes); Received: '200000'" in text
    assert len(text.splitlines()) == 1 and not list(tmp_path.iterdir())


def test_k_above_every_layer_warns_in_one_line(chain, tmp_path) -> None:
    path, _ = _run(step2, "--activations-file", chain["step1"], "--k-q", "0-2000",
                   "--save-dir", tmp_path)  # fmt: skip
    warnings = Path(str(path).replace("-vars.pkl", "-warnings.log")).read_text()
    lines = warnings.splitlines()
    assert len(lines) == 2, warnings  # one for k, one for q
    assert lines[0].endswith(
        "layer 0 (16 filters): k=17-2000; layer 1 (32 filters): k=33-2000; "
        "layer 2 (64 filters): k=65-2000; layer 3 (64 filters): k=65-2000"
    )
    assert lines[1].endswith(
        "q=101-2000 is more than 100 percent; the mean rule (filters above the "
        "layer's mean) applies instead"
    )


def test_outputs_that_are_no_class_folder(
    capsys, lite0_model, small_images: Path, tmp_path
) -> None:
    """An ImageNet network on Fashion-MNIST folders: warned in step 1, refused by
    step 4; the tags are still made and shown, predictions with their names."""
    si_eval = importlib.import_module("si-eval")
    out = ("--save-dir", tmp_path)
    s1, _ = _run(step1, "--network", lite0_model, "--images-dir", small_images, *out)
    err = capsys.readouterr().err
    expected = (
        "the network's outputs are ImageNet wnids (n01440764, n01443537, "
        "n01484850, ...) and the class folders are Ankle_boot, Bag, Coat, ...: "
        "none is the other's, so hit rates will be 0; pass --class-names or use a "
        "network trained on these classes"
    )
    assert f"WARNING {expected}" in err
    warnings = Path(str(s1).replace("-vars.pkl", "-warnings.log")).read_text()
    assert expected in warnings
    s2, _ = _run(step2, "--activations-file", s1, "--k-q", "1,5", *out)
    s3, _ = _run(step3, "--filtags-file", s2, *out)
    text = _fails(step4, "--eval-file", s3, *out)
    assert text.splitlines()[-1].endswith(f"{s3}: {expected}")
    image = next((small_images / "Bag").iterdir())
    _, printed = _run(si_eval, "--filtags-file", s2, "--image", image, *out)
    top5 = [line for line in printed.splitlines() if line.startswith("| n0")]
    assert len(top5) == 5 and all(
        len(line.split("|")[1].split()) >= 2 for line in top5
    )  # "n02088364 beagle"


def test_missing_values_and_unknown_classes(chain, tmp_path: Path) -> None:
    out = ("--save-dir", tmp_path)
    text = _fails(step3, "--filtags-file", chain["step2"], "--k-q", "3", *out)
    assert "--k-q [3] not in" in text
    text = _fails(step3, "--filtags-file", chain["step2"], "--classes", "Bag,Cat", *out)
    assert "--classes ['Cat'] are not classes of" in text
    text = _fails(step4, "--eval-file", chain["step3"], "--classes-img", "Hat", *out)
    assert "--classes-img ['Hat'] are not classes of" in text
    text = _fails(step2, *out)
    assert "argument --activations-file is required" in text


def test_step3_refuses_another_images_folder(
    chain, small_images: Path, tmp_path
) -> None:
    import shutil

    changed = tmp_path / "images"
    shutil.copytree(small_images, changed)
    next((changed / "Bag").iterdir()).unlink()
    text = _fails(step3, "--filtags-file", chain["step2"], "--images-dir", changed,
                  "--save-dir", tmp_path)  # fmt: skip
    assert "gives another train/test split than step 1 used" in text
    text = _fails(step3, "--filtags-file", chain["step2"], "--seed-rn", 7,
                  "--save-dir", tmp_path)  # fmt: skip
    assert "--seed-rn 7 gives another train/test split" in text
    (changed / "Extra").mkdir()
    text = _fails(step3, "--filtags-file", chain["step2"], "--images-dir", changed,
                  "--save-dir", tmp_path)  # fmt: skip
    assert "has other classes than step 1 read" in text
    assert not list(tmp_path.glob("*-vars.pkl"))


def test_step3_on_chosen_classes_and_k(chain, tmp_path: Path) -> None:
    index, _ = _run(step3, "--filtags-file", chain["step2"], "--classes", "Coat,Bag",
                    "--k-q", "1,5", "--save-dir", tmp_path)  # fmt: skip
    v3 = load_vars(index)
    assert v3["classes"] == ["Coat", "Bag"] and v3["k_q"] == [1, 5]
    assert [f[-10:] for f in v3["eval_files"]] == ["-vars2.pkl", "-vars1.pkl"]
    c = load_vars(index.parent / v3["eval_files"][0])
    assert list(c["y_q_ll"]) == [1, 5] and list(c["class_images_dict"]) == ["Coat"]
    hr, _ = _run(step4, "--eval-file", index, "--classes-img", "Bag",
                       "--save-dir", tmp_path)  # fmt: skip
    v4 = load_vars(hr)
    assert list(v4["hit_k"]) == ["Bag"] and list(v4["totalhit_q"]) == [1, 5]
    assert v4["totalhit_k"] == v4["hit_k"]["Bag"] == v4["meanhit_k"]


def test_top_keeps_the_first_classes_of_each_ranking(chain, tmp_path: Path) -> None:
    """--top 3 keeps the first 3 classes of the whole rankings (--top all); with 10
    classes the default --top 20 writes the very files of --top all; step 4 refuses
    an m above --top."""
    args = ("--filtags-file", chain["step2"], "--batch-size", 6)  # as the chain's
    whole, _ = _run(step3, *args, "--top", "all", "--save-dir", tmp_path / "all")
    cut, _ = _run(step3, *args, "--top", "3", "--save-dir", tmp_path / "cut")
    v_default, v_whole, v_cut = (load_vars(p) for p in (chain["step3"], whole, cut))
    assert [v["meta"]["top"] for v in (v_default, v_whole, v_cut)] == [20, "all", 3]
    names = zip(v_default["eval_files"], v_whole["eval_files"], v_cut["eval_files"],
                strict=True)  # fmt: skip
    for default_name, whole_name, cut_name in names:
        default_file = chain["step3"].parent / default_name
        whole_file, cut_file = whole.parent / whole_name, cut.parent / cut_name
        assert default_file.read_bytes() == whole_file.read_bytes()
        full, short = load_vars(whole_file), load_vars(cut_file)
        assert list(short) == list(full) and short["y"] == full["y"]
        for variable in RANKING_VARS:
            assert list(short[variable]) == K_Q
            for value in K_Q:
                rankings = full[variable][value]
                assert short[variable][value] == [r[:3] for r in rankings]
        assert any(len(r) > 3 for r in full["y_q"][25])  # something was cut
    text = _fails(step4, "--eval-file", cut, "--m", "1-5", "--save-dir", tmp_path)
    assert (
        f"--m 5 is more than the 3 classes step 3 kept per ranking (--top 3 in "
        f"{cut}); pass --m up to 3 or rerun step 3 with a larger --top." in text
    )
    rates, _ = _run(step4, "--eval-file", cut, "--m", "1-3", "--save-dir", tmp_path)
    expected = load_vars(chain["step4"])["totalhit_q_ll"]  # m = 1-3,10
    assert load_vars(rates)["totalhit_q_ll"] == {
        value: {m: rate for m, rate in by_m.items() if m <= 3}
        for value, by_m in expected.items()
    }


def test_all_steps_on_efficientnet_lite0_imagenet(lite0_chain) -> None:
    v1, v2, v3, v4 = (load_vars(lite0_chain[f"step{i}"]) for i in range(1, 5))
    assert len(v1["labels_id"]) == 19 and v1["test_filenames"] == [
        "n03594945/imagenet_06_609.jpg"
    ]
    assert len(v2["filTags_k"][1]) == 49  # Lite0's 49 convolutions
    files = [load_vars(lite0_chain["step3"].parent / f) for f in v3["eval_files"]]
    (jeep,) = [f for f in files if f["y"]]
    assert jeep["class_images_dict"] == {"n03594945": ["n03594945/imagenet_06_609.jpg"]}
    top1 = jeep["y"][0][0][0]
    assert top1 in imagenet_wnids()  # the network's prediction, a wnid
    assert v4["meta"]["images"] == 1
    for variant in ("k", "q", "k_ll", "q_ll"):  # one image: its hit, 0 or 1
        for value in v3["k_q"]:
            ranked = [name for name, _ in jeep[f"y_{variant}"][value][0]]
            for m in (1, 3, 10):
                expected = float(top1 in ranked[:m])
                assert v4[f"totalhit_{variant}"][value][m] == expected


def test_step3_takes_a_decoded_step2_file(lite0_chain, tmp_path: Path) -> None:
    labdecode = importlib.import_module("labdecode")
    decoded, _ = _run(
        labdecode, "--vars-file", lite0_chain["step2"], "--save-dir", tmp_path
    )
    index, _ = _run(step3, "--filtags-file", decoded, "--save-dir", tmp_path)
    v3 = load_vars(index)
    files = [load_vars(index.parent / f) for f in v3["eval_files"]]
    (jeep,) = [f for f in files if f["y"]]
    assert list(jeep["class_images_dict"]) == ["jeep"]
    assert jeep["y"][0][0][0] in load_vars(decoded)["meta"]["class_names"] + [
        name for name in load_vars(decoded)["meta"]["label_mapping"].values()
    ]
    assert not any(name.startswith("n0") for name, _ in jeep["y_k"][0][0])
    original = load_vars(lite0_chain["step3"])
    (first,) = [
        f
        for f in (
            load_vars(lite0_chain["step3"].parent / n) for n in original["eval_files"]
        )
        if f["y"]
    ]
    assert [c for _, c in jeep["y_k"][5][0]] == [c for _, c in first["y_k"][5][0]]


def test_exports_lie_beside_the_pickles(default_chain) -> None:
    for step, names in (
        ("step2", ("-tags.csv", "-tags.json")),
        ("step3", ("-rankings.csv",)),
    ):
        for suffix in names:
            assert Path(str(default_chain[step]).replace("-vars.pkl", suffix)).is_file()
