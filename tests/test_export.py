"""filtag.export: the CSV and JSON exports parse back to exactly the pickled data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filtag import export
from filtag.artifacts import load_vars, write_vars

#: Names that break naive CSV/JSON writers: separators, quotes, escapes, line
#: ends, non-ASCII, and an undecodable byte of a file name (os.fsdecode).
AWKWARD = [
    "a,b",
    'say "hi"',
    "x;y",
    "back\\slash;",
    "c:3",
    "two\nlines\r",
    "café 東京",
    "raw\udcff",
]


def read_csv(path: Path) -> list[list[str]]:
    """Read an export as the module's docstring says (undecodable bytes kept)."""
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.reader(f))


def tags_from_csv(rows: list[list[str]]) -> tuple[dict, dict, list[str]]:
    """Rebuild (filTags_k, filTags_q, layer names) from the rows of -tags.csv."""
    header, *body = rows
    assert tuple(header) == export.TAG_COLUMNS
    tags: dict[str, dict[int, list]] = {"k": {}, "q": {}}
    names: dict[int, str] = {}
    for rule, value, layer, layer_name, filter_, n_tags, field in body:
        layers = tags[rule].setdefault(int(value), [])
        if int(layer) == len(layers):
            layers.append([])
        assert int(filter_) == len(layers[int(layer)])
        items = export.split_field(field)
        assert len(items) == int(n_tags)
        layers[int(layer)].append(items)
        names[int(layer)] = layer_name
    return tags["k"], tags["q"], [names[a] for a in sorted(names)]


def rankings_from_csv(rows: list[list[str]]) -> dict[str, dict[str, Any]]:
    """Rebuild, per class, its images, top-1 pairs and rankings from -rankings.csv."""
    header, *body = rows
    assert tuple(header) == export.RANKING_COLUMNS
    rebuilt: dict[str, dict[str, Any]] = {}
    for name, image, rule, value, scope, top1, probability, ranking in body:
        per_class = rebuilt.setdefault(name, {"images": [], "top1": []})
        if not per_class["images"] or per_class["images"][-1] != image:
            per_class["images"].append(image)
            per_class["top1"].append((top1, float(probability)))
        variable = f"y_{rule}" + {"all": "", "last": "_ll"}[scope]
        by_value = per_class.setdefault(variable, {})
        by_value.setdefault(int(value), []).append(export.split_ranking(ranking))
    return rebuilt


def assert_tags_exports(vars_path: Path, variables: dict[str, Any]) -> None:
    """The -tags.csv/-tags.json beside ``vars_path`` hold exactly the pickled tags."""
    csv_path = export.export_path(vars_path, "tags.csv")
    json_path = export.export_path(vars_path, "tags.json")
    filtags_k, filtags_q = variables["filTags_k"], variables["filTags_q"]
    meta = variables.get("meta")
    names = export.meta_layer_names(meta, len(next(iter(filtags_k.values()))))
    assert tags_from_csv(read_csv(csv_path)) == (filtags_k, filtags_q, names)
    document = json.loads(json_path.read_bytes().decode("utf-8"))  # strict UTF-8
    assert document["layer_names"] == names
    for rule, filtags in (("k", filtags_k), ("q", filtags_q)):
        assert {int(v): t for v, t in document[f"filTags_{rule}"].items()} == filtags
    text = csv_path.read_bytes().decode("utf-8", "surrogateescape")
    assert text == export.tags_csv(filtags_k, filtags_q, names)
    assert json.loads(export.tags_json(filtags_k, filtags_q, names)) == document


def assert_rankings_export(index: Path, eval_files: list[str]) -> None:
    """The -rankings.csv beside ``index`` holds exactly its class files' rankings."""
    path = export.export_path(index, "rankings.csv")
    rebuilt = rankings_from_csv(read_csv(path))
    class_files = [load_vars(index.parent / name) for name in eval_files]
    with_images = set()
    for c in class_files:
        ((name, images),) = c["class_images_dict"].items()
        if not images:
            continue
        with_images.add(name)
        assert rebuilt[name]["images"] == images
        assert rebuilt[name]["top1"] == [top5[0] for top5 in c["y"]]
        for variable in ("y_k", "y_k_ll", "y_q", "y_q_ll"):
            assert rebuilt[name][variable] == c[variable], (name, variable)
    assert set(rebuilt) == with_images
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    assert text == export.rankings_csv(class_files)


@given(st.lists(st.text(min_size=1), min_size=1))
def test_joined_fields_split_back(items: list[str]) -> None:
    assert export.split_field(export.join_field(items)) == items


@given(st.lists(st.tuples(st.text(min_size=1), st.integers(1, 10**6))))
def test_rankings_split_back(ranking: list[tuple[str, int]]) -> None:
    field = export.join_ranking(ranking)
    assert export.split_ranking(field) == ranking


def test_field_format() -> None:
    assert export.join_field([]) == "" and export.split_field("") == []
    assert export.join_field(["a;b", "c\\", "d"]) == "a\\;b;c\\\\;d"
    assert export.join_ranking([("x:1", 3), ("y", 12)]) == "x:1:3;y:12"
    assert export.split_ranking("x:1:3;y:12") == [("x:1", 3), ("y", 12)]


@pytest.mark.parametrize("chain_name", ["default_chain", "lite0_chain"])
def test_tags_exports_of_a_real_chain(request, chain_name, tmp_path: Path) -> None:
    chain = request.getfixturevalue(chain_name)
    variables = load_vars(chain["step2"])
    vars_path = tmp_path / chain["step2"].name
    written = export.write_exports(vars_path, variables)
    prefix = vars_path.name.removesuffix("-vars.pkl")
    assert [p.name for p in written] == [f"{prefix}-tags.csv", f"{prefix}-tags.json"]
    assert_tags_exports(vars_path, variables)
    names = export.meta_layer_names(variables["meta"], len(variables["filTags_k"][0]))
    assert names == variables["meta"]["step1"]["layer_names"]
    rows = read_csv(written[0])
    n_filters = sum(variables["meta"]["filters_per_layer"])
    assert len(rows) == 1 + 2 * len(variables["meta"]["k_q"]) * n_filters


@pytest.mark.parametrize("chain_name", ["default_chain", "lite0_chain"])
def test_rankings_export_of_a_real_chain(request, chain_name, tmp_path: Path) -> None:
    chain = request.getfixturevalue(chain_name)
    index = chain["step3"]
    prefix = index.name.removesuffix("-vars.pkl")
    for file in index.parent.glob(f"{prefix}-vars*"):
        shutil.copy(file, tmp_path / file.name)
    variables = load_vars(tmp_path / index.name)
    (written,) = export.write_exports(tmp_path / index.name, variables)
    assert written.name == f"{prefix}-rankings.csv"
    assert_rankings_export(tmp_path / index.name, variables["eval_files"])
    images = sum(
        len(images)
        for name in variables["eval_files"]
        for images in load_vars(tmp_path / name)["class_images_dict"].values()
    )
    assert images > 0
    assert len(read_csv(written)) == 1 + images * 2 * len(variables["k_q"]) * 2


def test_awkward_names_and_paths(tmp_path: Path) -> None:
    """Commas, quotes, separators, line ends and undecodable bytes survive."""
    names = [*AWKWARD, "lone\ud800"]  # a surrogate that no file system yields
    filtags = {0: [[names[:4], []], [names[4:]]], 3: [[[names[0]], names]]}
    step2 = {"filTags_k": filtags, "filTags_q": {7: filtags[3]}}  # no meta
    vars_path = tmp_path / "2020-01-01-0000-TF-net-vars.pkl"
    csv_path, json_path = export.write_exports(vars_path, step2)
    json_bytes = json_path.read_bytes()
    json_bytes.decode("utf-8")  # valid UTF-8 ...
    assert b"raw\\udcff" in json_bytes and "café 東京".encode() in json_bytes
    document = json.loads(json_bytes)  # ... that reads back the lone surrogates
    assert document["filTags_k"]["3"][0][1] == names
    assert b"raw\xff" in csv_path.read_bytes()  # the file name's own byte
    assert "lone\ufffd".encode() in csv_path.read_bytes()  # no crash on a foreign one
    tags_k, tags_q, layers = tags_from_csv(read_csv(csv_path))
    assert layers == ["", ""]  # no meta: no layer names
    escaped = [*AWKWARD, "lone\ufffd"]  # exact but for the foreign surrogate
    assert tags_k[0] == [[names[:4], []], [escaped[4:]]]
    assert tags_q == {7: [[[names[0]], escaped]]}
    step2["filTags_k"] = step2["filTags_q"] = {1: [[AWKWARD]]}
    export.write_exports(vars_path, step2)
    assert_tags_exports(vars_path, step2)

    paths = [f"{name}/{i}\udce9.png" for i, name in enumerate(AWKWARD)]
    ranking = [(name, len(AWKWARD) - i) for i, name in enumerate(AWKWARD)]
    class_vars = {
        "y": [[(name, 0.1 + i / 10)] * 5 for i, name in enumerate(AWKWARD)],
        **{v: {0: [ranking] * len(paths), 25: [[]] * len(paths)}
           for v in ("y_k", "y_k_ll", "y_q", "y_q_ll")},
        "class_images_dict": {AWKWARD[1]: paths},
    }  # fmt: skip
    write_vars(tmp_path / "p-E-net-vars4.pkl", class_vars, "class 4", info=False)
    index = tmp_path / "p-E-net-vars.pkl"
    export.write_exports(index, {"eval_files": ["p-E-net-vars4.pkl"]})
    assert_rankings_export(index, ["p-E-net-vars4.pkl"])
    rows = read_csv(export.export_path(index, "rankings.csv"))
    assert rows[1][:3] == [AWKWARD[1], paths[0], "k"] and rows[1][-1].count(";") > 7


def test_exports_of_other_steps_and_names(tmp_path: Path) -> None:
    assert export.write_exports(tmp_path / "x-vars.pkl", {"hit_k": {}}) == []
    assert not list(tmp_path.iterdir())
    path = Path("r/2020-01-01-0000-E-VGG16-vars.pkl")
    assert export.export_path(path, "rankings.csv") == Path(
        "r/2020-01-01-0000-E-VGG16-rankings.csv"
    )
    assert export.meta_layer_names({"step1": {"layer_names": ["a"]}}, 2) == ["", ""]
