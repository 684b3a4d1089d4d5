"""Step 4: hit rates against hand-computed values and a slow reference."""

from __future__ import annotations

import numpy as np
import pytest

from filtag.errors import FiltagError
from filtag.hitrates import check_m_values, empty_classes, hit_matrix, hit_rates
from tests.reference import reference_hit, reference_rates

# -------------------------------------------------------------- hand-checked


def test_hit_matrix_hand_checked():
    top1 = ["a", "b", "c", "d", "a"]
    ranked = [
        [("a", 3), ("b", 1)],  # first: hit at every depth
        [("a", 2), ("b", 2)],  # second: hit from m = 2
        [],  # empty ranking: never a hit
        [("x", 1)],  # absent: never a hit
        [("b", 4), ("c", 2), ("a", 1)],  # third: hit from m = 3
    ]
    np.testing.assert_array_equal(
        hit_matrix(top1, ranked, [1, 2, 3, 10]),
        [
            [True, True, True, True],
            [False, True, True, True],
            [False, False, False, False],
            [False, False, False, False],
            [False, False, True, True],
        ],
    )
    assert hit_matrix([], [], [1, 2]).shape == (0, 2)


def test_pooled_and_mean_rates_differ_with_class_sizes():
    # Class "cat": 1 image, hit at m = 1. Class "dog": 3 images; at m = 1 none
    # hits, at m = 2 one hits (its ranking is shorter than 2 for another one).
    top1 = {"cat": ["cat"], "dog": ["dog", "dog", "cat"]}
    rankings = {
        "cat": {5: [[("cat", 2)]]},
        "dog": {5: [[("cat", 3), ("dog", 1)], [("cat", 1)], [("dog", 2), ("x", 1)]]},
    }
    per_class, total, mean = hit_rates(top1, rankings, [1, 2])
    assert per_class == {"cat": {5: {1: 1.0, 2: 1.0}}, "dog": {5: {1: 0.0, 2: 1 / 3}}}
    assert total == {5: {1: 1 / 4, 2: 2 / 4}}
    assert mean == {5: {1: 0.5, 2: pytest.approx((1 + 1 / 3) / 2)}}
    rates = [per_class["dog"][5][2], total[5][1], mean[5][1]]
    assert all(type(rate) is float for rate in rates)


def test_rates_per_k():
    top1 = {"a": ["a", "b"]}
    rankings = {
        "a": {
            0: [[("a", 1)], [("a", 2), ("b", 1)]],
            3: [[("b", 1), ("a", 1)], []],
        }
    }
    per_class, total, mean = hit_rates(top1, rankings, [2, 1])
    assert per_class == {"a": {0: {2: 1.0, 1: 0.5}, 3: {2: 0.5, 1: 0.0}}}
    assert total == mean == per_class["a"]
    assert list(per_class["a"][0]) == [2, 1]


def test_class_without_images_is_left_out_and_named_in_one_line():
    top1 = {"a": ["a"], "empty": [], "b": ["a", "b"], "none": []}
    rankings = {
        "a": {1: [[("a", 1)]]},
        "empty": {1: []},
        "b": {1: [[("b", 1)], [("b", 1)]]},
        "none": {1: []},
    }
    per_class, total, mean = hit_rates(top1, rankings, [1])
    assert empty_classes(top1) == (
        "2 classes have no evaluated image ('empty', 'none'); they are left out of "
        "the per-class and mean hit rates"
    )
    assert empty_classes({"a": ["a"]}) is None
    assert list(per_class) == ["a", "b"]
    assert total == {1: {1: 2 / 3}}
    assert mean == {1: {1: (1.0 + 0.5) / 2}}


# ------------------------------------------------------------ fast vs reference


@pytest.mark.parametrize("seed", range(5))
def test_rates_match_reference(seed):
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d"]
    m_values = [1, 2, 3, 6]

    def random_ranking():
        chosen = rng.permutation(names)[: rng.integers(0, 5)]
        return [(str(name), int(rng.integers(1, 9))) for name in chosen]

    top1 = {
        x: [str(rng.choice(names)) for _ in range(rng.integers(0, 6))] for x in names
    }
    rankings = {
        x: {k: [random_ranking() for _ in top1[x]] for k in (0, 1, 4)} for x in names
    }
    if not any(top1.values()):
        top1["a"] = ["a"]
        rankings["a"] = {k: [[("a", 1)]] for k in (0, 1, 4)}
    per_class, total, mean = hit_rates(top1, rankings, m_values)
    expected = reference_rates(top1, rankings, m_values)
    assert per_class == expected[0]
    assert total == expected[1]
    assert list(mean) == list(expected[2])
    for k, rates in mean.items():
        assert rates == pytest.approx(expected[2][k])
    for x, top in top1.items():
        for ranked in rankings[x].values():
            expected_hits = [
                [reference_hit(t, r, m) for m in m_values]
                for t, r in zip(top, ranked, strict=True)
            ]
            np.testing.assert_array_equal(
                hit_matrix(top, ranked, m_values),
                np.array(expected_hits, dtype=bool).reshape(len(top), len(m_values)),
            )


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, "2", True, None])
def test_invalid_m_values_are_refused(bad):
    with pytest.raises(FiltagError, match="m: expected whole numbers >= 1"):
        hit_rates({"a": ["a"]}, {"a": {1: [[("a", 1)]]}}, [1, bad])


def test_m_values_need_one_value_and_lose_repeats():
    with pytest.raises(FiltagError, match="at least one value"):
        check_m_values([])
    assert check_m_values([np.int64(3), 1, 3]) == [3, 1]


def test_mismatched_inputs_are_refused():
    with pytest.raises(FiltagError, match="one per image"):
        hit_rates({"a": ["a", "a"]}, {"a": {1: [[("a", 1)]]}}, [1])
    with pytest.raises(FiltagError, match="rankings of class 'b'"):
        hit_rates(
            {"a": ["a"], "b": ["b"]},
            {"a": {1: [[("a", 1)]], 2: [[]]}, "b": {1: [[("b", 1)]]}},
            [1],
        )
    with pytest.raises(FiltagError, match="rankings of class 'b'"):
        hit_rates({"a": ["a"], "b": ["b"]}, {"a": {1: [[("a", 1)]]}}, [1])
    with pytest.raises(FiltagError, match="expected evaluated images"):
        hit_rates({"a": []}, {"a": {1: []}}, [1])
