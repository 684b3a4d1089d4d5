"""Step 2's computation: tag each filter with the classes that activate it most.

Row ``c`` of a layer's class activations holds the mean activation of each of
the layer's filters over the train images of class ``c``. A rule ``(kind,
value)`` selects some filters of each row, and a filter is tagged with class
``c`` when row ``c`` selects it:

- ``("k", k)`` with ``1 <= k <= filters``: the ``k`` largest values;
- ``("q", q)`` with ``1 <= q <= 100``: the ``max(1, floor(q / 100 * filters +
  0.5))`` largest values (a half rounds up; ``q = 100`` selects every filter);
- ``k = 0`` or ``q = 0``: the mean rule, the values strictly above the row's
  mean (exactly, on the float64 values: a constant row selects nothing);
- ``k > filters`` or ``q > 100``: the mean rule, with a logged warning.

Ties at the cut go to the lower filter index (a stable descending order), and
a row holding NaN (a class without readable images) selects nothing. Step 3
selects the active filters of each test image with the same rule.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import numbers
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction

import numpy as np

from filtag.errors import FiltagError
from filtag.variants import KINDS

logger = logging.getLogger(__name__)

#: filTags[value][layer][filter]: the class names the filter is tagged with.
FilterTags = dict[int, list[list[list[str]]]]


def check_whole_numbers(
    values: Iterable[object], minimum: int, name: str, example: str
) -> list[int]:
    """Return ``values`` as Python ints, refusing anything but whole numbers >= minimum.

    Args:
        values: ints or numpy ints (bools, floats such as 2.5 and strings are
            refused).
        minimum: the smallest value allowed.
        name: what the values are, for the error message (e.g. "k_q: k").
        example: valid values to suggest, e.g. "0, 5, 25".

    Returns:
        the values as ``int``, in the given order.

    Raises:
        FiltagError: a value is not a whole number >= ``minimum``.
    """
    checked = []
    for value in values:
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not whole or value < minimum:
            raise FiltagError(
                f"{name}: expected whole numbers >= {minimum}; received {value!r}; "
                f"give values such as {example}."
            )
        checked.append(int(value))
    return checked


def check_rule_values(values: Iterable[object], kind: str) -> list[int]:
    """Return the k (or q) values as Python ints (see :func:`check_whole_numbers`)."""
    return check_whole_numbers(values, 0, f"k_q: {kind} values", "0, 5, 25")


def rule_size(kind: str, value: int, n_filters: int) -> int | None:
    """Return how many filters per row the rule selects; None for the mean rule.

    Args:
        kind: "k" or "q".
        value: the rule's whole number >= 0.
        n_filters: filters in the layer, >= 1.

    Returns:
        ``k`` for ``1 <= k <= n_filters``; ``max(1, floor(q / 100 * n_filters +
        0.5))`` for ``1 <= q <= 100`` (integer arithmetic, so a half always
        rounds up); None when the mean rule applies (0, ``k > n_filters``,
        ``q > 100``).
    """
    if kind not in KINDS:
        raise ValueError(f"rule kind must be one of {KINDS}; received {kind!r}")
    if kind == "k":
        return value if 1 <= value <= n_filters else None
    return max(1, (2 * value * n_filters + 100) // 200) if 1 <= value <= 100 else None


def descending_ranks(values: np.ndarray) -> np.ndarray:
    """Return each value's position in its row's stable descending order.

    Args:
        values: float, shape (rows, n_filters).

    Returns:
        int, shape (rows, n_filters): 0 for the row's largest value; equal
        values keep filter index order. ``ranks < p`` selects the ``p`` largest.
    """
    order = np.argsort(-values, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(values.shape[1])[None, :], axis=1)
    return ranks


def above_mean(values: np.ndarray) -> np.ndarray:
    """Return which values lie strictly above their row's mean, exactly.

    The float mean decides every value farther from it than its rounding error
    bound; the rare values within the bound are decided with exact fractions,
    so rounding never selects a value equal to the mean (a constant row selects
    nothing).

    Args:
        values: float, shape (rows, n_filters).

    Returns:
        bool, shape (rows, n_filters); False throughout a row holding NaN.
    """
    n_filters = values.shape[1]
    mean = values.mean(axis=1, keepdims=True)
    above = values > mean
    # A constant row has nothing above its mean; deciding it here is faster.
    constant = (values.max(axis=1) == values.min(axis=1))[:, None]
    above &= ~constant
    # |float mean - exact mean| <= (n + 1) * eps / 2 * mean|v| in any summation
    # order (to first order); the bound is four times that.
    bound = 2 * (n_filters + 1) * np.finfo(np.float64).eps
    unsure = np.abs(values - mean) <= bound * np.abs(values).mean(1, keepdims=True)
    unsure &= ~constant
    for row in np.flatnonzero(unsure.any(axis=1)):
        total = sum(map(Fraction, values[row].tolist()))
        for col in np.flatnonzero(unsure[row]):
            above[row, col] = Fraction(float(values[row, col])) * n_filters > total
    return above


def selected(
    values: np.ndarray,
    kind: str,
    value: int,
    ranks: np.ndarray | None = None,
    nan_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Return the filters that the rule selects in each row.

    Args:
        values: float, shape (rows, n_filters): one layer's activations, a
            row per class (step 2) or per image (step 3).
        kind: "k" or "q".
        value: the rule's whole number >= 0.
        ranks: ``descending_ranks(values)``, to share one sort between rules;
            computed when None.
        nan_rows: bool, shape (rows,): the rows holding NaN, to share one
            check between rules; computed when None.

    Returns:
        bool, shape (rows, n_filters); no filter in a row holding NaN.
    """
    size = rule_size(kind, value, values.shape[1])
    if size is None:
        mask = above_mean(values)
    else:
        mask = (descending_ranks(values) if ranks is None else ranks) < size
    mask[np.isnan(values).any(axis=1) if nan_rows is None else nan_rows] = False
    return mask


def mean_fallback_warning(
    kind: str, values: Iterable[int], filters_per_layer: Sequence[int]
) -> str | None:
    """Return one line naming the values that fall back to the mean rule, or None.

    A k larger than a layer's filters, or a q above 100, selects the filters
    above the layer's mean instead.

    Args:
        kind: "k" or "q".
        values: the kind's values.
        filters_per_layer: the filters of each layer.
    """
    values = sorted(set(values))
    if kind == "q":
        over = [q for q in values if q > 100]
        return (
            f"q={_ranges(over)} is more than 100 percent; the mean rule (filters "
            "above the layer's mean) applies instead"
            if over
            else None
        )
    layers = [
        f"layer {layer} ({n} filters): k={_ranges([k for k in values if k > n])}"
        for layer, n in enumerate(filters_per_layer)
        if any(k > n for k in values)
    ]
    if not layers:
        return None
    return (
        "k is more than the filters of some layers, which use the mean rule "
        f"(filters above the layer's mean) instead: {'; '.join(layers)}"
    )


def _ranges(numbers: Sequence[int]) -> str:
    """Return ascending whole numbers as text with runs shortened: '17-25,30'."""
    parts, start = [], 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
            run = numbers[start:i]
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
            start = i
    return ",".join(parts)


def check_layers(layers: Sequence[np.ndarray], n_rows: int, row: str) -> None:
    """Check that each layer's activations are (n_rows, n_filters >= 1), no inf.

    Args:
        layers: float arrays, one per layer.
        n_rows: the rows each array must have.
        row: what a row is ("class", "image"), for the error message.

    Raises:
        FiltagError: a layer has the wrong shape or holds an infinite value.
    """
    for layer, values in enumerate(layers):
        if values.ndim != 2 or values.shape[0] != n_rows or values.shape[1] < 1:
            raise FiltagError(
                f"layer {layer} activations: expected shape ({n_rows}, filters >= 1), "
                f"one row per {row}; received {values.shape}; pass one row per {row} "
                "and at least one filter."
            )
        if np.isinf(values).any():
            raise FiltagError(
                f"layer {layer} activations: expected finite values or NaN rows; "
                "received inf; recompute the activations of step 1."
            )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the body runs.

    It would rescan the growing tag lists again and again (a third of step 2's
    time), and they hold no reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _layer_tags(mask: np.ndarray, names: np.ndarray) -> list[list[str]]:
    """Return, per filter, the names of the rows that select it, in row order.

    Args:
        mask: bool, shape (n_classes, n_filters).
        names: object array of the class names, shape (n_classes,).
    """
    flat_classes = np.flatnonzero(mask.T) % mask.shape[0]
    flat = names[flat_classes].tolist()
    ends = np.cumsum(np.count_nonzero(mask, axis=0)).tolist()
    return [flat[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def rule_values(
    k_values: Iterable[int], q_values: Iterable[int]
) -> dict[str, list[int]]:
    """Return the checked rule values of each kind, each value once, in the given order.

    Raises:
        FiltagError: a k or q value is not a whole number >= 0.
    """
    given = {"k": k_values, "q": q_values}
    return {
        kind: list(dict.fromkeys(check_rule_values(given[kind], kind)))
        for kind in KINDS
    }


class RuleTags:
    """The tags of every k and q rule, computed rule by rule from one sort per layer.

    Holding the masks of one rule at a time, it lets step 2 write tags far
    larger than memory (see :mod:`filtag.tagpickle`); :meth:`lists` builds
    them in memory.

    Attributes:
        class_names: the class names, index ``i`` for class ``i``.
        values: ``{"k": [k values], "q": [q values]}``, checked, each once.
    """

    def __init__(
        self,
        class_acts: Sequence[np.ndarray],
        class_names: Sequence[str],
        k_values: Iterable[int],
        q_values: Iterable[int],
    ) -> None:
        """Check the rules and activations; sort each layer's rows once.

        Args:
            class_acts: one float array per layer, shape (n_classes, n_filters):
                row ``i`` holds class ``i``'s mean filter activations (NaN for a
                class without readable train images).
            class_names: the class names, index ``i`` for class ``i``.
            k_values: the k values, whole numbers >= 0.
            q_values: the q values, whole numbers >= 0.

        Raises:
            FiltagError: a k or q value is invalid, or the activations do not
                match ``class_names``.
        """
        self.values = rule_values(k_values, q_values)
        self.class_names = list(class_names)
        acts = [np.asarray(values, dtype=np.float64) for values in class_acts]
        check_layers(acts, len(self.class_names), "class")
        # Fortran order makes every mask Fortran-ordered: mask.T is C-contiguous.
        self._acts = [np.asfortranarray(values) for values in acts]
        # Every rule compares all ranks: the smallest integer type reads least.
        self._ranks = [
            descending_ranks(v).astype(np.min_scalar_type(v.shape[1]), order="F")
            for v in self._acts
        ]
        self._nan_rows = [np.isnan(values).any(axis=1) for values in self._acts]
        filters = [values.shape[1] for values in self._acts]
        for kind in KINDS:
            message = mean_fallback_warning(kind, self.values[kind], filters)
            if message:
                logger.warning("%s", message)

    def masks(self, kind: str, value: int) -> Iterator[np.ndarray]:
        """Yield, layer by layer, the filters that rule ``(kind, value)`` selects.

        Yields:
            bool, shape (n_classes, n_filters), Fortran order: ``[c, f]`` is
            True when class ``c``'s row selects filter ``f``.
        """
        layers = zip(self._acts, self._ranks, self._nan_rows, strict=True)
        for values, ranks, nan_rows in layers:
            yield selected(values, kind, value, ranks, nan_rows)

    def lists(self, kind: str) -> FilterTags:
        """Return ``{value: [per layer [per filter [class names]]]}`` for ``kind``.

        The names in a filter's list are in class index order and are the
        ``class_names`` str objects themselves.
        """
        names = np.empty(len(self.class_names), dtype=object)
        names[:] = self.class_names
        with gc_paused():
            return {
                value: [_layer_tags(mask, names) for mask in self.masks(kind, value)]
                for value in self.values[kind]
            }


def filter_tags(
    class_acts: Sequence[np.ndarray],
    class_names: Sequence[str],
    k_values: Iterable[int],
    q_values: Iterable[int],
) -> tuple[FilterTags, FilterTags]:
    """Tag every filter with classes, for every k and q rule, one sort per layer.

    Args:
        class_acts: one float array per layer, shape (n_classes, n_filters):
            row ``i`` holds class ``i``'s mean filter activations (NaN for a
            class without readable train images).
        class_names: the class names, index ``i`` for class ``i``.
        k_values: the k values, whole numbers >= 0.
        q_values: the q values, whole numbers >= 0.

    Returns:
        ``(filTags_k, filTags_q)``: ``filTags_k[k][layer][filter]`` is the list
        of the names of the classes whose row selects the filter under rule k,
        in class index order (the same str objects as ``class_names``); the
        same for q.

    Raises:
        FiltagError: a k or q value is invalid, or the activations do not
            match ``class_names``.
    """
    tags = RuleTags(class_acts, class_names, k_values, q_values)
    return tags.lists("k"), tags.lists("q")
