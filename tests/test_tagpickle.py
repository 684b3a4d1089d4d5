"""Step 2's streamed tag pickles: read back as the lists built in memory."""

from __future__ import annotations

import io
import pickle
import pickletools
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from filtag import artifacts, tagpickle
from filtag.tagging import RuleTags, filter_tags

#: Mean-rule fallbacks (k > filters, q > 100) and a value beyond 32 bits.
K_VALUES = [0, 1, 2, 3, 7, 40, 41, 2**40]
Q_VALUES = [0, 1, 10, 33, 50, 99, 100, 101]

#: 300 classes: references of classes 0..255 take 2 bytes, the others 5.
NAMES = [f"c{i}" for i in range(297)] + ["Kätzchen", "x\udcff", "e" * 300]


def tie_heavy_acts(seed: int, sizes: list[int]) -> list[np.ndarray]:
    """Activations of a few levels, with NaN rows and a constant row."""
    rng = np.random.default_rng(seed)
    layers = [rng.choice([0.1, 0.2, 0.3, 0.7], size=(len(NAMES), n)) for n in sizes]
    for layer in layers:
        layer[[5, 260], rng.integers(layer.shape[1])] = np.nan
        layer[2] = 0.3
    return layers


def write_streamed(path: Path, tags: RuleTags) -> Path:
    """Write the tags as step 2 does, with a small meta after them."""
    variables = {**tagpickle.streamed(tags), "meta": {"step": "TF"}}
    return artifacts.write_vars(path, variables, "streamed tags")


@pytest.fixture(scope="module")
def acts() -> list[np.ndarray]:
    return tie_heavy_acts(0, [1, 3, 17, 40])


def test_streamed_file_loads_as_the_lists_in_memory(acts, tmp_path: Path) -> None:
    path = write_streamed(
        tmp_path / "t-vars.pkl", RuleTags(acts, NAMES, K_VALUES, Q_VALUES)
    )
    tags_k, tags_q = filter_tags(acts, NAMES, K_VALUES, Q_VALUES)
    expected = {"filTags_k": tags_k, "filTags_q": tags_q, "meta": {"step": "TF"}}
    with path.open("rb") as f:  # plain pickle, as the original FilTag scripts read it
        plain = {name: pickle.load(f) for name in expected}
        assert f.read() == b""
    assert plain == expected
    assert list(plain["filTags_k"]) == K_VALUES and list(plain["filTags_q"]) == Q_VALUES
    assert artifacts.load_vars(path) == expected


@pytest.mark.parametrize("kind", ["k", "q"])
def test_pickle_is_well_formed_and_memoizes_each_name_once(acts, kind: str) -> None:
    tags = RuleTags(acts, NAMES, K_VALUES, Q_VALUES)
    data = b"".join(tagpickle.tags_pickle(tags, kind))
    pickletools.dis(data, out=io.StringIO())  # raises on a stack or mark left over
    lists = tags.lists(kind)
    assert pickle._loads(data) == lists  # the pure-Python unpickler reads it too
    strings = [arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    assert strings == NAMES  # each name stored once, then referenced
    loaded = pickle.loads(data)
    objects: dict[str, set[int]] = {}
    for layers in loaded.values():
        for filt in (filt for layer in layers for filt in layer):
            for name in filt:
                objects.setdefault(name, set()).add(id(name))
    assert {len(ids) for ids in objects.values()} == {1}  # one str per class
    # Today's in-memory pickle of the lists, for the size.
    assert len(data) <= len(pickle.dumps(lists, artifacts.PICKLE_PROTOCOL))


def test_few_classes_and_no_layer(tmp_path: Path) -> None:
    acts = [np.array([[0.5, 0.1], [np.nan, 0.2], [0.3, 0.3]])]
    names = ["A", "B", "C"]
    for layers in (acts, []):
        tags = RuleTags(layers, names, [0, 1, 5], [50])
        data = b"".join(tagpickle.tags_pickle(tags, "k"))
        assert pickle.loads(data) == filter_tags(layers, names, [0, 1, 5], [50])[0]
    assert pickle.loads(data) == {0: [], 1: [], 5: []}


def test_tags_are_never_all_in_memory(tmp_path: Path) -> None:
    acts = tie_heavy_acts(1, [64, 128])
    q_all = list(range(101))
    tags = RuleTags(acts, NAMES, [], q_all)
    n_tags = sum(int(mask.sum()) for q in q_all for mask in tags.masks("q", q))
    tracemalloc.start()
    try:
        path = write_streamed(tmp_path / "big-vars.pkl", tags)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n_tags > 2_000_000
    assert peak < n_tags  # the lists alone would take 8 bytes per tag
    assert artifacts.load_vars(path)["filTags_q"] == tags.lists("q")
