"""Step 3: tag counts and rankings against a slow reference from the rule text."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from filtag.errors import FiltagError
from filtag.evaluation import rankings, tag_counts, tag_matrix
from filtag.tagging import descending_ranks
from tests.reference import reference_counts, reference_ranking


def as_array(counts, class_names):
    return np.array([[c[name] for name in class_names] for c in counts], dtype=np.int64)


# ------------------------------------------------------------ fast vs reference


RULES = [("k", v) for v in (0, 1, 2, 3, 6, 7, 30)] + [
    ("q", v) for v in (0, 1, 15, 25, 50, 100, 120)
]


@pytest.mark.parametrize("seed", range(4))
def test_counts_and_rankings_match_reference(seed):
    rng = np.random.default_rng(seed)
    names = ["zebra", "ant", "cat", "dog", "bee"]  # index order is not name order
    class_index = {name: i for i, name in enumerate(names)}
    sizes = [3, 1, 6, 2]
    tags = [
        [[n for n in names if rng.random() < 0.4] for _ in range(size)]
        for size in sizes
    ]
    acts = [rng.choice([0.0, 0.1, 0.2, 0.3], size=(25, size)) for size in sizes]
    for layer in acts:
        layer[3, 0] = np.nan
        layer[4] = 0.2
    matrices = [tag_matrix(layer_tags, class_index) for layer_tags in tags]
    ranks = [descending_ranks(layer) for layer in acts]
    for kind, value in RULES:
        counts_all, counts_last = tag_counts(matrices, acts, kind, value)
        expected_all, expected_last = reference_counts(tags, acts, names, kind, value)
        np.testing.assert_array_equal(counts_all, as_array(expected_all, names))
        np.testing.assert_array_equal(counts_last, as_array(expected_last, names))
        assert rankings(counts_all, names) == [
            reference_ranking(c, names) for c in expected_all
        ]
        assert rankings(counts_last, names) == [
            reference_ranking(c, names) for c in expected_last
        ]
        shared = tag_counts(matrices, acts, kind, value, ranks=ranks)
        np.testing.assert_array_equal(shared[0], counts_all)
        np.testing.assert_array_equal(shared[1], counts_last)


# -------------------------------------------------------------- hand-checked

NAMES = ["zebra", "ant", "cat"]
INDEX = {name: i for i, name in enumerate(NAMES)}
TAGS = [
    [["zebra", "ant"], ["cat"], ["zebra"]],  # layer 0: 3 filters
    [["ant"], ["zebra", "cat"]],  # layer 1: 2 filters
]
ACTS = [
    np.array([[0.9, 0.1, 0.8], [0.1, 0.9, 0.1], [np.nan, 0.5, 0.5]]),
    np.array([[0.2, 0.7], [0.5, 0.5], [0.4, 0.1]]),
]


def test_tag_matrix():
    np.testing.assert_array_equal(
        tag_matrix(TAGS[0], INDEX),
        [[True, True, False], [False, False, True], [True, False, False]],
    )
    assert tag_matrix([[], []], INDEX).shape == (2, 3)
    assert not tag_matrix([[], []], INDEX).any()


def test_tag_matrix_refuses_unknown_names():
    with pytest.raises(FiltagError, match="'tiger'"):
        tag_matrix([["zebra"], ["tiger"]], INDEX)


def test_hand_checked_k2():
    # Image 0: layer 0 f0, f2 -> zebra 2, ant 1; layer 1 f0, f1 -> all +1.
    # Image 1: layer 0 f1, f0 (0.1 = 0.1, lower index) -> zebra, ant, cat +1;
    #          layer 1 both -> all +1.
    # Image 2: layer 0 holds NaN -> nothing; layer 1 both -> all +1.
    matrices = [tag_matrix(t, INDEX) for t in TAGS]
    counts_all, counts_last = tag_counts(matrices, ACTS, "k", 2)
    np.testing.assert_array_equal(counts_all, [[3, 2, 1], [2, 2, 2], [1, 1, 1]])
    np.testing.assert_array_equal(counts_last, [[1, 1, 1]] * 3)
    assert rankings(counts_all, NAMES) == [
        [("zebra", 3), ("ant", 2), ("cat", 1)],
        [("zebra", 2), ("ant", 2), ("cat", 2)],
        [("zebra", 1), ("ant", 1), ("cat", 1)],
    ]


def test_hand_checked_k1_leaves_zero_counts_out():
    # Image 0: layer 0 f0 -> zebra, ant; layer 1 f1 -> zebra, cat.
    # Image 1: layer 0 f1 -> cat; layer 1 f0 (tie, lower index) -> ant.
    # Image 2: layer 0 NaN; layer 1 f0 -> ant.
    matrices = [tag_matrix(t, INDEX) for t in TAGS]
    counts_all, counts_last = tag_counts(matrices, ACTS, "k", 1)
    assert rankings(counts_all, NAMES) == [
        [("zebra", 2), ("ant", 1), ("cat", 1)],
        [("ant", 1), ("cat", 1)],
        [("ant", 1)],
    ]
    assert rankings(counts_last, NAMES) == [
        [("zebra", 1), ("cat", 1)],
        [("ant", 1)],
        [("ant", 1)],
    ]


def test_rankings_order_types_and_empty_rows():
    counts = np.array([[0, 2, 5, 2], [0, 0, 0, 0], [1, 0, 0, 3]], dtype=np.int64)
    names = ["d", "c", "b", "a"]
    ranked = rankings(counts, names)
    assert ranked == [[("b", 5), ("c", 2), ("a", 2)], [], [("a", 3), ("d", 1)]]
    assert all(type(n) is int for row in ranked for _, n in row)
    assert ranked[0][0][0] is names[2]


# ------------------------------------------------------------ warnings, errors


def test_k_above_filters_warns_in_one_line(caplog):
    matrices = [tag_matrix(t, INDEX) for t in TAGS]
    with caplog.at_level(logging.WARNING, logger="filtag"):
        tag_counts(matrices, ACTS, "k", 3)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "layer 1 (2 filters): k=3"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="filtag"):
        counts = tag_counts(matrices, ACTS, "k", 3, warn=False)
    assert not caplog.records
    np.testing.assert_array_equal(counts[1], tag_counts(matrices, ACTS, "k", 0)[1])


def test_mismatched_inputs_are_refused():
    matrices = [tag_matrix(t, INDEX) for t in TAGS]
    with pytest.raises(FiltagError, match="one tag matrix per layer"):
        tag_counts(matrices[:1], ACTS, "k", 1)
    with pytest.raises(FiltagError, match="layer 0 tags"):
        tag_counts(matrices[::-1], ACTS, "k", 1)
    with pytest.raises(FiltagError, match="layer 1 activations"):
        tag_counts(matrices, [ACTS[0], ACTS[1][:2]], "k", 1)
    with pytest.raises(FiltagError, match="at least one layer"):
        tag_counts([], [], "k", 1)


# ------------------------------------------------ every rule at once (TagCounter)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chunk", [1 << 17, 1, 60])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tag_counter_equals_rule_by_rule_counts(seed, chunk, dtype, monkeypatch):
    """Equal for every rule, also when the triples are counted a few at a time,
    and for the probe's float32 activations."""
    from filtag import evaluation
    from filtag.evaluation import TagCounter

    monkeypatch.setattr(evaluation, "CHUNK_TRIPLES", chunk)
    from filtag.tagging import filter_tags

    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in rng.permutation(7)]
    sizes = [3, 1, 6, 40, 2][: 2 + seed % 4]
    levels = [0.0, 0.1, 0.2, 0.3, 0.5]
    class_acts = [rng.choice(levels, size=(len(names), n)) for n in sizes]
    class_acts[0][2] = np.nan  # a class without images selects nothing
    values = sorted([*rng.choice(60, size=8, replace=False).tolist(), 0, 1, 120])
    k_tags, q_tags = filter_tags(class_acts, names, values, values)
    if seed == 5:  # tags that are not nested are counted rule by rule
        k_tags[values[2]], k_tags[values[3]] = k_tags[values[3]], k_tags[values[2]]
    acts = [rng.choice(levels, size=(9, n)).astype(dtype) for n in sizes]
    acts[-1][4, 0] = np.nan
    acts[0][5] = 0.2  # a constant row
    counter = TagCounter({"k": k_tags, "q": q_tags}, names, sizes)
    got = counter.counts(acts)
    index = {name: i for i, name in enumerate(names)}
    for kind, tags in (("k", k_tags), ("q", q_tags)):
        for value in values:
            matrices = [tag_matrix(layer, index) for layer in tags[value]]
            expected = tag_counts(matrices, acts, kind, value, warn=False)
            np.testing.assert_array_equal(got[kind, value][0], expected[0])
            np.testing.assert_array_equal(got[kind, value][1], expected[1])


def test_rankings_keep_the_first_top_classes_ties_by_index():
    counts = np.array([[3, 5, 5, 0, 1, 5], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 2]])
    names = list("abcdef")
    assert rankings(counts, names, top=3) == [
        [("b", 5), ("c", 5), ("f", 5)],
        [],
        [("f", 2), ("a", 1), ("b", 1)],
    ]
    full = rankings(counts, names)
    assert full[0] == [("b", 5), ("c", 5), ("f", 5), ("a", 3), ("e", 1)]
    for top in range(1, 8):
        assert rankings(counts, names, top=top) == [r[:top] for r in full]
    huge = rankings(counts * 2**40, names, top=4)  # keys beyond 32 bits
    assert huge == [[(n, c * 2**40) for n, c in r[:4]] for r in full]


def test_float32_ranks_equal_the_stable_descending_ranks():
    from filtag.evaluation import _descending_ranks

    rng = np.random.default_rng(3)
    special = np.array([0.0, -0.0, 0.5, 1.0, -1.5, 3e-39, -3e-39, 1e30, np.inf,
                        -np.inf], np.float32)  # fmt: skip
    for n in (1, 7, 300):
        for values in (rng.choice(special, size=(20, n)),
                       rng.random((20, n), dtype=np.float32)):  # fmt: skip
            expected = descending_ranks(values.astype(np.float64))
            np.testing.assert_array_equal(_descending_ranks(values), expected)
