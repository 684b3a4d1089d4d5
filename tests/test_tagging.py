"""Step 2: filter tags against a slow reference written from the rule text."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from filtag.errors import FiltagError
from filtag.tagging import (
    above_mean,
    check_rule_values,
    descending_ranks,
    filter_tags,
    rule_size,
    selected,
)
from tests.reference import reference_count, reference_mask, reference_tags

K_VALUES = [0, 1, 2, 3, 5, 7, 10, 11, 40]
Q_VALUES = [0, 1, 5, 10, 15, 25, 33, 50, 67, 99, 100, 101, 150]


def tie_heavy_layers(rng, n_classes, sizes, levels):
    """Activations drawn from a few levels, with a NaN row and a constant row."""
    layers = [rng.choice(levels, size=(n_classes, n)) for n in sizes]
    for layer in layers:
        layer[1, rng.integers(layer.shape[1])] = np.nan
        layer[2] = levels[-1]
    return layers


# ------------------------------------------------------------ fast vs reference


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "levels", [[0.0, 0.25, 0.5, 1.0], [0.1, 0.2, 0.3], [0.0, 1.0]], ids=str
)
def test_filter_tags_match_reference_with_many_ties(seed, levels):
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(7)]
    acts = tie_heavy_layers(rng, 7, [1, 2, 3, 7, 10], levels)
    tags_k, tags_q = filter_tags(acts, names, K_VALUES, Q_VALUES)
    assert list(tags_k) == K_VALUES
    assert list(tags_q) == Q_VALUES
    for k in K_VALUES:
        assert tags_k[k] == reference_tags(acts, names, "k", k), k
    for q in Q_VALUES:
        assert tags_q[q] == reference_tags(acts, names, "q", q), q


@pytest.mark.parametrize("n_filters", [1, 2, 3, 10, 64])
def test_selected_matches_reference_on_continuous_values(n_filters):
    values = np.random.default_rng(n_filters).random((30, n_filters))
    ranks = descending_ranks(values)
    for kind, rule_values in (("k", [*K_VALUES, n_filters]), ("q", Q_VALUES)):
        for value in rule_values:
            expected = reference_mask(values, kind, value)
            np.testing.assert_array_equal(selected(values, kind, value), expected)
            fast = selected(values, kind, value, ranks=ranks)
            np.testing.assert_array_equal(fast, expected)


def test_selected_ignores_memory_order():
    values = np.random.default_rng(1).choice([0.1, 0.2, 0.3], size=(20, 9))
    for kind, value in (("k", 0), ("k", 4), ("q", 50)):
        np.testing.assert_array_equal(
            selected(np.asfortranarray(values), kind, value),
            reference_mask(values, kind, value),
        )


# -------------------------------------------------------------- hand-checked


CLASS_NAMES = ["A", "B", "C"]
#: 3 classes x 4 filters; C is constant (all ties).
HAND_ACTS = [
    np.array(
        [
            [0.9, 0.1, 0.5, 0.5],
            [0.2, 0.8, 0.8, 0.0],
            [0.3, 0.3, 0.3, 0.3],
        ]
    )
]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        # A: f0; B: f1 (f1 = f2, lower index wins); C: f0 (all tie).
        ("k", 1, [["A", "C"], ["B"], [], []]),
        # A: f0, f2 (f2 = f3); B: f1, f2; C: f0, f1.
        ("k", 2, [["A", "C"], ["B", "C"], ["A", "B"], []]),
        ("k", 4, [["A", "B", "C"]] * 4),
        # Mean rule: A's mean is 0.5 (f2, f3 are not above it); C selects nothing.
        ("k", 0, [["A"], ["B"], ["B"], []]),
        ("q", 0, [["A"], ["B"], ["B"], []]),
        ("q", 10, [["A", "C"], ["B"], [], []]),  # 0.4 + 0.5 -> 0 -> at least 1
        ("q", 25, [["A", "C"], ["B"], [], []]),  # 1.0 + 0.5 -> 1
        ("q", 37, [["A", "C"], ["B"], [], []]),  # 1.48 + 0.5 -> 1
        ("q", 38, [["A", "C"], ["B", "C"], ["A", "B"], []]),  # 1.52 + 0.5 -> 2
        # 2.52 + 0.5 -> 3: A: f0, f2, f3; B: f1, f2, f0; C: f0, f1, f2.
        ("q", 63, [["A", "B", "C"], ["B", "C"], ["A", "B", "C"], ["A"]]),
        ("q", 100, [["A", "B", "C"]] * 4),
    ],
)
def test_hand_checked_tags(kind, value, expected):
    rules = {"k": [], "q": []}
    rules[kind].append(value)
    tags_k, tags_q = filter_tags(HAND_ACTS, CLASS_NAMES, rules["k"], rules["q"])
    assert {"k": tags_k, "q": tags_q}[kind] == {value: [expected]}


def test_hand_checked_two_layers_with_nan_class():
    acts = [
        np.array([[1.0, 2.0], [np.nan, 5.0], [3.0, 0.0]]),
        np.array([[4.0], [np.nan], [2.0]]),
    ]  # class B has no readable image: NaN in every layer
    tags_k, tags_q = filter_tags(acts, CLASS_NAMES, [1], [50])
    assert tags_k == {1: [[["C"], ["A"]], [["A", "C"]]]}
    assert tags_q == {50: tags_k[1]}  # 2 filters: 1.0 + 0.5 -> 1; 1 filter: -> 1


def test_tags_reuse_the_class_name_objects():
    names = ["".join(["cl", "ass"]) + str(i) for i in range(3)]
    tags_k, _ = filter_tags(HAND_ACTS, names, [4], [])
    assert all(tag is names[i] for filt in tags_k[4][0] for i, tag in enumerate(filt))


# ---------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("n_filters", "q", "expected"),
    [
        (10, 5, 1),  # 0.5 + 0.5 -> 1
        (10, 15, 2),  # 1.5 rounds up
        (10, 25, 3),  # 2.5 rounds up
        (3, 50, 2),  # 1.5 rounds up
        (10, 1, 1),  # max(1, 0)
        (1, 1, 1),
        (2, 50, 1),
        (2, 75, 2),  # 1.5 rounds up
        (50, 29, 15),  # exactly 14.5 (float q / 100 * n gives 14.499...)
        (10, 100, 10),
        (512, 5, 26),  # 25.6 + 0.5 -> 26
        (10, 0, None),
        (10, 101, None),
    ],
)
def test_q_rounding(n_filters, q, expected):
    assert rule_size("q", q, n_filters) == expected
    assert reference_count("q", q, n_filters) == expected


@pytest.mark.parametrize(
    ("n_filters", "k", "expected"),
    [(10, 0, None), (10, 1, 1), (10, 10, 10), (10, 11, None), (1, 1, 1), (1, 2, None)],
)
def test_k_count(n_filters, k, expected):
    assert rule_size("k", k, n_filters) == expected


def test_k_equal_to_filters_selects_every_filter_of_readable_rows():
    values = np.array([[0.3, 0.1, 0.2], [np.nan, 0.1, 0.2], [0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(
        selected(values, "k", 3), [[True] * 3, [False] * 3, [True] * 3]
    )


def test_constant_rows_select_nothing_by_mean_and_first_indices_by_k():
    # 10 x 0.1 sums to 0.9999999999999999 in float: a float mean would be below 0.1.
    values = np.full((4, 10), 0.1)
    values[1] = 0.7
    values[2] = 0.0
    assert not above_mean(values).any()
    assert not selected(values, "q", 0).any()
    expected = np.zeros((4, 10), dtype=bool)
    expected[:, :3] = True
    np.testing.assert_array_equal(selected(values, "k", 3), expected)


def test_mean_rule_is_exact_near_the_mean():
    rng = np.random.default_rng(5)
    values = rng.choice([0.1, 0.2, 0.3, 0.7], size=(300, 6))
    values[:100, :3] = 1 / 3
    np.testing.assert_array_equal(above_mean(values), reference_mask(values, "k", 0))


def test_nan_row_selects_nothing_for_every_rule():
    values = np.array([[0.5, np.nan, 0.2], [0.5, 0.1, 0.2]])
    for kind, value in (("k", 0), ("k", 1), ("k", 3), ("k", 9), ("q", 100)):
        mask = selected(values, kind, value)
        assert not mask[0].any()
        assert mask[1].any()


def test_tiny_layers():
    one = np.array([[0.2], [0.9], [np.nan]])
    two = np.array([[0.2, 0.9], [0.4, 0.4], [0.9, 0.2]])
    assert selected(one, "k", 1)[:, 0].tolist() == [True, True, False]
    assert selected(one, "q", 1)[:, 0].tolist() == [True, True, False]
    assert not selected(one, "k", 0).any()  # a single value is its own mean
    assert selected(two, "k", 1).tolist() == [
        [False, True],
        [True, False],
        [True, False],
    ]
    assert selected(two, "q", 50).tolist() == selected(two, "k", 1).tolist()
    assert selected(two, "k", 0).tolist() == [
        [False, True],
        [False, False],
        [True, False],
    ]


# ------------------------------------------------------------------- warnings


def test_k_above_filters_warns_in_one_line_listing_the_layers(caplog):
    acts = [np.random.default_rng(0).random((6, n)) for n in (2, 5, 8)]
    with caplog.at_level(logging.WARNING, logger="filtag.tagging"):
        tags_k, _ = filter_tags(acts, list("abcdef"), [0, 3, 4, 5, 6, 7, 9], [])
    assert [r.getMessage() for r in caplog.records] == [
        "k is more than the filters of some layers, which use the mean rule "
        "(filters above the layer's mean) instead: layer 0 (2 filters): k=3-7,9; "
        "layer 1 (5 filters): k=6-7,9; layer 2 (8 filters): k=9"
    ]
    assert tags_k[6][:2] == tags_k[0][:2]
    assert tags_k[6][2] != tags_k[0][2]


def test_q_above_100_warns_once_and_uses_the_mean_rule(caplog):
    acts = [np.random.default_rng(0).random((6, n)) for n in (3, 4)]
    with caplog.at_level(logging.WARNING, logger="filtag.tagging"):
        _, tags_q = filter_tags(acts, list("abcdef"), [], [0, 100, 101])
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith("q=101 is more than 100 percent")
    assert tags_q[101] == tags_q[0]
    assert tags_q[101] == reference_tags(acts, list("abcdef"), "q", 101)


def test_selected_does_not_log(caplog):
    with caplog.at_level(logging.WARNING, logger="filtag"):
        selected(np.ones((2, 3)), "k", 4)
        selected(np.ones((2, 3)), "k", 0)
    assert not caplog.records


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [-1, 2.5, 2.0, "x", "3", True, False, None])
def test_invalid_rule_values_are_refused(bad):
    with pytest.raises(FiltagError, match="k_q"):
        filter_tags(HAND_ACTS, CLASS_NAMES, [1, bad], [])
    with pytest.raises(FiltagError, match="k_q"):
        filter_tags(HAND_ACTS, CLASS_NAMES, [], [bad])


def test_numpy_integers_become_int_keys():
    values = check_rule_values([np.int64(3), 0, np.uint8(7)], "k")
    assert values == [3, 0, 7]
    assert all(type(v) is int for v in values)
    tags_k, _ = filter_tags(HAND_ACTS, CLASS_NAMES, [np.int32(1), 1], [])
    assert [type(k) for k in tags_k] == [int]


@pytest.mark.parametrize(
    "acts",
    [
        [np.zeros((2, 4))],  # 2 rows for 3 classes
        [np.zeros((3, 0))],  # no filter
        [np.zeros(3)],  # 1-D
        [np.array([[0.0, np.inf], [0.0, 1.0], [1.0, 0.0]])],
    ],
)
def test_bad_activations_are_refused(acts):
    with pytest.raises(FiltagError, match="layer 0"):
        filter_tags(acts, CLASS_NAMES, [1], [])
