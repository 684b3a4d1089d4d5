"""labdecode.py and filtag.labels' decoding: class labels become names in steps 2-4."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from filtag import labels
from filtag.artifacts import load_vars, write_vars
from filtag.errors import FiltagError
from tests.conftest import refused, run_script
from tests.test_export import assert_rankings_export, assert_tags_exports

labdecode = importlib.import_module("labdecode")
step4 = importlib.import_module("step4hitrates")

WNID_NAMES = labels.read_mapping()

#: A mapping of the Fashion-MNIST classes but Coat, comma and tab separated,
#: with names that CSV needs to quote and escape.
FASHION_MAPPING = (
    "Ankle_boot, Stiefelette\n"
    'Bag\tTasche "groß"\n'
    "Dress, Kleid, lang\n"
    "Pullover, Pulli;warm\n"
    "Sandal, Sandale\\n\n"
    "Shirt, Hemd\n"
    "Sneaker, Turnschuh\n"
    "T-shirt_top, T-Shirt\n"
    "Trouser, Hose\n"
)

HIT_VARIABLES = ("hit_k", "hit_q", "hit_k_ll", "hit_q_ll")
RANKINGS = ("y_k", "y_k_ll", "y_q", "y_q_ll")


def decode(vars_file: Path, save_dir: Path, *argv: object) -> Path:
    """Run labdecode.py; return the -vars.pkl it printed last."""
    path, _ = run_script(labdecode, "--vars-file", vars_file, "--save-dir", save_dir,
                         *argv)  # fmt: skip
    return path


def fails(*argv: object, logged: int = 0) -> str:
    """Run labdecode.py on bad input (exit code 2); return its one error line.

    Args:
        argv: the flags.
        logged: how many INFO/WARNING lines come first (a run that started).
    """
    text = refused(labdecode, *argv)
    *run_lines, line = text.splitlines()
    assert len(run_lines) == logged and not line.startswith(("INFO", "WARNING"))
    assert all(text.startswith(("INFO", "WARNING")) for text in run_lines)
    return line


def log_of(vars_path: Path, kind: str) -> str:
    """Return the run's ``-info.log`` or ``-warnings.log`` text."""
    return Path(str(vars_path).replace("-vars.pkl", f"-{kind}.log")).read_text()


def all_tags(filtags: dict) -> list[str]:
    """Every tag of ``{value: [[tags] per filter] per layer}``."""
    return [tag for layers in filtags.values() for layer in layers for f in layer
            for tag in f]  # fmt: skip


def renamed(value: Any, table: dict[str, str]) -> Any:
    """The slow reference: every str in nested lists/tuples/dict keys renamed."""
    if isinstance(value, str):
        return table.get(value, value)
    if isinstance(value, list | tuple):
        return type(value)(renamed(item, table) for item in value)
    if isinstance(value, dict):
        return {renamed(k, table): renamed(v, table) for k, v in value.items()}
    return value


def class_files(index: Path) -> list[dict[str, Any]]:
    """The per-class files of a step-3 index, in its order."""
    return [load_vars(index.parent / name) for name in load_vars(index)["eval_files"]]


@pytest.fixture(scope="module")
def lite0_decoded(lite0_chain, tmp_path_factory) -> dict[str, Path]:
    """Lite0's step 2, 3 and 4 files decoded by decoding_wnids.txt."""
    out = tmp_path_factory.mktemp("lite0_decoded")
    return {
        step: decode(lite0_chain[step], out) for step in ("step2", "step3", "step4")
    }


# ------------------------------------------------------------- the pure decoding


def test_decode_names_rules() -> None:
    mapping = {"a": "x", "b": "y", "c": "x", "d": "d", "e": "u"}
    table, unknown = labels.decode_names(["a", "b", "c", "d", "u", "z", "a"], mapping)
    assert table == {"a": "x (a)", "b": "y", "c": "x (c)", "d": "d", "u": "u", "z": "z"}
    assert unknown == {"u", "z"}
    table, _ = labels.decode_names(["e", "u"], mapping)  # e -> u, but u is a label
    assert table == {"e": "u (e)", "u": "u"}
    with pytest.raises(FiltagError, match=r"'a' and 'c' would both be named 'x \(a\)'"):
        labels.decode_names(["a", "b", "c"], {"a": "x", "b": "x", "c": "x (a)"})


def test_the_wnids_file_decodes_one_to_one() -> None:
    table, unknown = labels.decode_names(labels.imagenet_wnids(), WNID_NAMES)
    assert not unknown and len(set(table.values())) == 1000
    assert table["n02088364"] == "beagle" and table["n01440764"] == "tench"
    assert table["n02012849"] == "crane (n02012849)"  # a bird
    assert table["n03126707"] == "crane (n03126707)"  # a machine
    assert sum(name != WNID_NAMES[w] for w, name in table.items()) == 4  # + maillot


def test_compose_label_mapping() -> None:
    previous = {"n1": "beagle", "n2": "tench"}
    table = {"beagle": "Beagle", "tench": "tench", "Coat": "Mantel", "x": "x"}
    assert labels.compose_label_mapping(previous, table) == {
        "n1": "Beagle",
        "n2": "tench",
        "Coat": "Mantel",
    }
    swap = labels.compose_label_mapping({"a": "b", "b": "a"}, {"a": "b", "b": "a"})
    assert swap == {}


# ------------------------------------------------ the Lite0 chain (ImageNet wnids)


def test_lite0_step2_tags_become_names(lite0_chain, lite0_decoded) -> None:
    v, d = load_vars(lite0_chain["step2"]), load_vars(lite0_decoded["step2"])
    meta = d["meta"]
    assert lite0_decoded["step2"].name.endswith("-TF-efficientnet_lite0-names-vars.pkl")
    assert list(d) == list(v) and meta["step"] == "TF"
    assert meta["decoded_from"] == str(lite0_chain["step2"].resolve())
    assert meta["mapping_file"] == str(labels.WNIDS_FILE)
    assert meta["network"] == "efficientnet_lite0-names"
    wnids = v["meta"]["class_names"]
    assert len(wnids) == 19 and all(w in WNID_NAMES for w in wnids)
    assert meta["class_names"] == [WNID_NAMES[w] for w in wnids]
    # every label of the run (19 folders, 1000 outputs) maps to a distinct name
    mapping = meta["label_mapping"]
    assert sorted(mapping) == sorted(labels.imagenet_wnids())
    assert len(set(mapping.values())) == 1000 and not meta["unknown_labels"]
    for rule in ("k", "q"):
        tags = d[f"filTags_{rule}"]
        assert tags == renamed(v[f"filTags_{rule}"], mapping)
        assert all_tags(tags) and not any(t.startswith("n0") for t in all_tags(tags))
        assert not set(all_tags(tags)) & set(WNID_NAMES)
        assert set(all_tags(tags)) <= set(meta["class_names"])
    assert meta["step1"] == v["meta"]["step1"]  # earlier metas stay as written
    assert "decoded by" in log_of(lite0_decoded["step2"], "info")
    warnings = log_of(lite0_decoded["step2"], "warnings")
    assert "4 labels share a name" in warnings and "'crane (n02012849)'" in warnings
    assert "not in" not in warnings
    assert_tags_exports(lite0_decoded["step2"], d)


def test_lite0_step3_rankings_become_names(lite0_chain, lite0_decoded) -> None:
    v, d = load_vars(lite0_chain["step3"]), load_vars(lite0_decoded["step3"])
    mapping = d["meta"]["label_mapping"]
    assert list(d) == list(v) and d["meta"]["step"] == "E"
    assert d["classes"] == [WNID_NAMES[w] for w in v["classes"]]
    assert d["meta"]["classes"] == d["meta"]["class_names"] == d["classes"]
    assert d["meta"]["step2"] == v["meta"]["step2"] and d["k_q"] == v["k_q"]
    prefix = lite0_decoded["step3"].name.removesuffix("-vars.pkl")
    assert [name.removeprefix(prefix) for name in d["eval_files"]] == [
        name[name.rindex("-vars") :] for name in v["eval_files"]
    ]
    originals, decoded = (
        class_files(lite0_chain["step3"]),
        class_files(lite0_decoded["step3"]),
    )
    for c, e in zip(originals, decoded, strict=True):
        assert list(e) == list(c)
        ((label, paths),) = c["class_images_dict"].items()
        assert e["class_images_dict"] == {WNID_NAMES[label]: paths}
        assert [[p for _, p in top5] for top5 in e["y"]] == [
            [p for _, p in top5] for top5 in c["y"]
        ]
        for variable in ("y", *RANKINGS):
            assert e[variable] == renamed(c[variable], mapping)
        for variable in RANKINGS:
            for value, rankings in c[variable].items():
                counts = [[n for _, n in r] for r in rankings]
                assert [[n for _, n in r] for r in e[variable][value]] == counts
                names = [name for r in e[variable][value] for name, _ in r]
                assert not any(name.startswith("n0") for name in names)
    (jeep,) = [e for e in decoded if e["y"]]
    assert jeep["y"][0][0][0] in mapping.values()
    assert_rankings_export(lite0_decoded["step3"], d["eval_files"])


def test_step4_on_decoded_step3_gives_the_same_rates(
    lite0_chain, lite0_decoded, tmp_path
) -> None:
    hr = run_script(step4, "--eval-file", lite0_decoded["step3"], "--m", "1-3,10",
                    "--save-dir", tmp_path)[0]  # fmt: skip
    v, d = load_vars(lite0_chain["step4"]), load_vars(hr)
    mapping = load_vars(lite0_decoded["step3"])["meta"]["label_mapping"]
    assert hr.name.endswith("-HR-efficientnet_lite0-names-vars.pkl")
    for variable in v:
        if variable != "meta":
            assert d[variable] == renamed(v[variable], mapping), variable
    assert list(d["hit_k"]) == [WNID_NAMES[w] for w in v["hit_k"]]
    # decoding step 4's own file gives the same
    h = load_vars(lite0_decoded["step4"])
    assert {name: h[name] for name in HIT_VARIABLES} == {
        name: d[name] for name in HIT_VARIABLES
    }
    assert h["meta"]["classes_img"] == d["meta"]["classes_img"]
    assert h["totalhit_q_ll"] == v["totalhit_q_ll"] and h["meta"]["step"] == "HR"


# ------------------------------------------------- the default chain (Fashion-MNIST)


def test_a_mapping_without_one_label(default_chain, tmp_path: Path) -> None:
    mapping_file = tmp_path / "fashion.txt"
    mapping_file.write_text(FASHION_MAPPING, encoding="utf-8")
    path = decode(default_chain["step2"], tmp_path, "--mapping", mapping_file)
    v, d = load_vars(default_chain["step2"]), load_vars(path)
    expected = {**labels.read_mapping(mapping_file), "Coat": "Coat"}
    assert expected["Bag"] == 'Tasche "groß"' and expected["Dress"] == "Kleid, lang"
    assert d["meta"]["class_names"] == [expected[c] for c in v["meta"]["class_names"]]
    assert d["meta"]["label_mapping"] == {
        label: name for label, name in expected.items() if label != "Coat"
    }
    assert d["meta"]["unknown_labels"] == ["Coat"]
    assert d["filTags_k"] == renamed(v["filTags_k"], expected)
    assert "Coat" in all_tags(d["filTags_k"])
    warnings = log_of(path, "warnings").splitlines()
    assert len(warnings) == 1 and "WARNING 1 of 10 labels are not in" in warnings[0]
    assert str(mapping_file) in warnings[0] and warnings[0].endswith("'Coat'")
    assert_tags_exports(path, d)  # names with commas, quotes, ';' and '\'


def test_step4_rates_survive_decoding(default_chain, tmp_path: Path) -> None:
    mapping_file = tmp_path / "fashion.txt"
    mapping_file.write_text(FASHION_MAPPING, encoding="utf-8")
    index = decode(default_chain["step3"], tmp_path, "--mapping", mapping_file)
    mapping = load_vars(index)["meta"]["label_mapping"]
    assert_rankings_export(index, load_vars(index)["eval_files"])
    hr = run_script(step4, "--eval-file", index, "--m", "1-3,10", "--save-dir",
                    tmp_path)[0]  # fmt: skip
    v, d = load_vars(default_chain["step4"]), load_vars(hr)
    for variable in v:
        if variable != "meta":
            assert d[variable] == renamed(v[variable], mapping), variable
    assert d["totalhit_k"][25][1] > 0.3  # real rates, not all zero


def test_decoding_twice_maps_the_original_labels(default_chain, tmp_path) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("Bag, Tasche\nCoat, Mantel\n")
    second.write_text("Tasche, Sac\nShirt, Chemise\n")
    once = decode(default_chain["step2"], tmp_path, "--mapping", first)
    twice = decode(once, tmp_path, "--mapping", second)
    meta = load_vars(twice)["meta"]
    assert meta["label_mapping"] == {"Bag": "Sac", "Coat": "Mantel", "Shirt": "Chemise"}
    assert meta["network"] == "fashion_mnist_cnn-names"
    assert twice.name.endswith("-TF-fashion_mnist_cnn-names-vars.pkl")
    assert meta["decoded_from"] == str(once.resolve())


def test_shared_names_get_their_label_or_are_refused(default_chain, tmp_path) -> None:
    shared = tmp_path / "shared.txt"
    shared.write_text("Shirt, Top\nT-shirt_top, Top\n")
    path = decode(default_chain["step2"], tmp_path, "--mapping", shared)
    names = load_vars(path)["meta"]["class_names"]
    assert names[6] == "Top (Shirt)" and names[8] == "Top (T-shirt_top)"
    assert "2 labels share a name" in log_of(path, "warnings")
    clash = tmp_path / "clash.txt"
    clash.write_text("Coat, Top (Shirt)\nShirt, Top\nT-shirt_top, Top\n")
    out = tmp_path / "refused"
    line = fails("--vars-file", default_chain["step2"], "--mapping", clash,
                 "--save-dir", out)  # fmt: skip
    assert line == (
        f"ERROR --mapping {clash}: labels 'Coat' and 'Shirt' would both be named "
        "'Top (Shirt)'; expected one name per label; give them different names."
    )
    assert not out.exists()


# -------------------------------------------------------------------- bad input


def test_bad_files_are_refused(default_chain, tmp_path: Path) -> None:
    out = ("--save-dir", tmp_path / "out")
    line = fails("--vars-file", default_chain["step1"], *out)
    assert line == (
        f"ERROR --vars-file {default_chain['step1']} is a step1filteractivations.py "
        "file; pass a -vars.pkl of step 2, 3 or 4 (TF, E or HR)."
    )
    truncated = tmp_path / "t-vars.pkl"
    truncated.write_bytes(default_chain["step2"].read_bytes()[:200])
    names = Path(str(default_chain["step2"]).replace("-vars.pkl", "-vars-names.pkl"))
    (tmp_path / "t-vars-names.pkl").write_bytes(names.read_bytes())
    line = fails("--vars-file", truncated, *out)
    assert f"{truncated} is truncated or not a filtag file" in line
    meta = {"step": "TF", "network": "x", "k_q": [0], "class_names": ["a"]}
    foreign = write_vars(
        tmp_path / "f-vars.pkl",
        {"filTags_k": ["not", "tags"], "filTags_q": {}, "meta": meta},
        "a foreign file",
    )
    line = fails("--vars-file", foreign, *out)
    assert line == (
        f"ERROR {foreign} is not a filtag file (filTags_k is a list of 2 items; "
        "expected a dict {value: tags per layer}); pass the -vars.pkl that "
        "step2filtertags.py wrote."
    )
    line = fails("--vars-file", tmp_path / "none-vars.pkl", *out)
    assert "none-vars.pkl not found" in line
    line = fails("--vars-file", default_chain["step2"], "--mapping",
                 tmp_path / "none.txt", *out)  # fmt: skip
    assert "--mapping" in line and "none.txt cannot be read" in line
    assert "argument --vars-file is required" in fails(*out)
    assert not (tmp_path / "out").exists()


def test_a_class_file_of_another_run_is_refused(default_chain, tmp_path) -> None:
    index = default_chain["step3"]
    v = load_vars(index)
    prefix = index.name.removesuffix("-vars.pkl")
    copy = tmp_path / index.name
    write_vars(copy, v, "copy")
    for x, name in enumerate(v["eval_files"]):
        c = load_vars(index.parent / name)
        if x == 3:
            c["class_images_dict"] = {"Hat": c["class_images_dict"]["Dress"]}
        write_vars(tmp_path / name, c, "copy", info=False)
    assert v["eval_files"][3] == f"{prefix}-vars3.pkl"
    line = fails("--vars-file", copy, "--save-dir", tmp_path / "out", logged=2)
    assert f"{prefix}-vars3.pkl: label 'Hat' is not among the 10 labels" in line
    dress = v["eval_files"][3]
    write_vars(tmp_path / dress, load_vars(index.parent / dress), "copy", info=False)
    last = tmp_path / v["eval_files"][-1]
    last.unlink()
    line = fails("--vars-file", copy, "--save-dir", tmp_path / "out", logged=2)
    assert line.endswith(f"{last} not found; pass the -vars.pkl path that the "
                         "previous step printed (its -vars-names.pkl must lie beside "
                         "it).")  # fmt: skip
    # a failed run leaves its logs and no partial file set
    left = sorted(p.name.split("-E-")[1] for p in (tmp_path / "out").iterdir())
    assert (
        left
        == ["fashion_mnist_cnn-names-info.log"] * 2
        + ["fashion_mnist_cnn-names-warnings.log"] * 2
    )
