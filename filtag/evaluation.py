"""Step 3's computation: rank the classes of each test image by filter tags.

For one rule (a k or q value of step 2), each test image's active filters in a
layer are the ones that the rule selects in the image's row of activations
(:func:`filtag.tagging.selected`, the same rule as step 2). Each active filter
adds 1 to every class it is tagged with. The counts are summed over all layers
and, separately, taken from the last layer only. An image's ranking lists the
classes with a count above 0, by count descending, ties by class index; it
keeps the first ``top`` of them (all with ``top=None``).

:func:`tag_counts` counts one rule on its own. :class:`TagCounter` counts every
rule of a run at once, as step 3 does at ImageNet size: the top-k and top-q %
selections of a layer are nested (the k most active filters are among the k+1
most active, with the same stable order for ties), and so are step 2's tags, so
a filter counts for an image, a class and a value exactly when the larger of
its two "levels" (the first value that selects it for the image, the first
that tags it with the class) is at most that value. Counting those levels once
gives the counts of every value, in time proportional to the (image, class,
filter) triples that count at the largest value, and in memory proportional to
the tags; the mean rule (value 0, or k above a layer's filters) is one matrix
product per layer that uses it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from filtag.errors import FiltagError
from filtag.tagging import (
    check_layers,
    descending_ranks,
    mean_fallback_warning,
    rule_size,
    selected,
)
from filtag.variants import KINDS

logger = logging.getLogger(__name__)

#: An image's ranking: (class name, count) pairs, best first.
Ranking = list[tuple[str, int]]

#: Test images whose (image, class, filter) triples are counted in one go.
CHUNK_TRIPLES = 4_000_000


def tag_matrix(
    tags_layer: Sequence[Sequence[str]], class_index: Mapping[str, int]
) -> np.ndarray:
    """Return one layer's filter tags as a matrix.

    Args:
        tags_layer: ``filTags[k][layer]``: per filter, its class names.
        class_index: class name -> class index, the indices 0 .. n_classes - 1.

    Returns:
        bool, shape (n_filters, n_classes): True where the filter is tagged
        with the class.

    Raises:
        FiltagError: a tag is not a name of ``class_index``.
    """
    names = [name for tags in tags_layer for name in tags]
    unknown = set(names).difference(class_index)
    if unknown:
        raise FiltagError(
            f"filter tags: expected class names of the network; received "
            f"{sorted(unknown)[:3]!r}; use the step 2 file made for this network."
        )
    rows = np.repeat(np.arange(len(tags_layer)), [len(tags) for tags in tags_layer])
    matrix = np.zeros((len(tags_layer), len(class_index)), dtype=bool)
    matrix[rows, [class_index[name] for name in names]] = True
    return matrix


def _check_tags(
    tag_matrices: Sequence[np.ndarray], image_acts: Sequence[np.ndarray]
) -> None:
    """Check that the tag matrices match the layers and each other.

    Raises:
        FiltagError: the layer counts, the filters or the classes differ.
    """
    if len(tag_matrices) != len(image_acts):
        raise FiltagError(
            f"filter tags: expected one tag matrix per layer ({len(image_acts)}); "
            f"received {len(tag_matrices)}; use the step 2 file made for these layers."
        )
    n_classes = tag_matrices[0].shape[1]
    for layer, (tags, acts) in enumerate(zip(tag_matrices, image_acts, strict=True)):
        if tags.shape != (acts.shape[1], n_classes):
            raise FiltagError(
                f"layer {layer} tags: expected shape ({acts.shape[1]} filters, "
                f"{n_classes} classes); received {tags.shape}; use the step 2 file "
                "made for this network."
            )


def tag_counts(
    tag_matrices: Sequence[np.ndarray],
    image_acts: Sequence[np.ndarray],
    kind: str,
    value: int,
    ranks: Sequence[np.ndarray] | None = None,
    warn: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Count, per image and class, the active filters tagged with the class.

    Args:
        tag_matrices: one bool array per layer, shape (n_filters, n_classes),
            from :func:`tag_matrix` for this rule.
        image_acts: one float array per layer, shape (n_images, n_filters):
            the images' filter activations.
        kind: "k" or "q".
        value: the rule's whole number >= 0.
        ranks: per layer, ``filtag.tagging.descending_ranks(image_acts[layer])``
            to share one sort between rules; computed when None.
        warn: log the mean rule warning (see :func:`filtag.tagging.selected`).

    Returns:
        ``(counts_all, counts_last)``: int64, shape (n_images, n_classes): the
        counts summed over all layers, and those of the last layer alone.

    Raises:
        FiltagError: the arrays do not match each other.
    """
    if not image_acts:
        raise FiltagError(
            "image activations: expected at least one layer; received none; "
            "select at least one layer."
        )
    image_acts = [np.asarray(acts, dtype=np.float64) for acts in image_acts]
    tag_matrices = [np.asarray(tags, dtype=bool) for tags in tag_matrices]
    check_layers(image_acts, image_acts[0].shape[0], "image")
    _check_tags(tag_matrices, image_acts)
    active = active_filters(image_acts, kind, value, ranks, warn)
    return count_tags(active, tag_matrices)


def active_filters(
    image_acts: Sequence[np.ndarray],
    kind: str,
    value: int,
    ranks: Sequence[np.ndarray] | None = None,
    warn: bool = True,
) -> list[np.ndarray]:
    """Return each layer's active filters by the rule (:func:`filtag.tagging.selected`).

    Args:
        image_acts: one float64 array per layer, shape (n_images, n_filters).
        kind, value: the rule.
        ranks: per layer, ``descending_ranks(image_acts[layer])``, or None.
        warn: log the mean rule warning.

    Returns:
        one bool array per layer, shape (n_images, n_filters).
    """
    if warn:
        warn_mean_fallback(kind, [value], [a.shape[1] for a in image_acts])
    return [
        selected(acts, kind, value, None if ranks is None else ranks[layer])
        for layer, acts in enumerate(image_acts)
    ]


def warn_mean_fallback(
    kind: str, values: Sequence[int], filters: Sequence[int]
) -> None:
    """Log the values that fall back to the mean rule in some layers (one line)."""
    message = mean_fallback_warning(kind, values, filters)
    if message:
        logger.warning("%s", message)


def count_tags(
    active: Sequence[np.ndarray], tag_matrices: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Count, per image and class, the active filters tagged with the class.

    Args:
        active: one bool array per layer, shape (n_images, n_filters).
        tag_matrices: one bool array per layer, shape (n_filters, n_classes).

    Returns:
        ``(counts_all, counts_last)``: int64, shape (n_images, n_classes), over
        all layers and over the last layer alone.
    """
    per_layer = [
        _product(mask, tags) for mask, tags in zip(active, tag_matrices, strict=True)
    ]
    return np.sum(per_layer, axis=0), per_layer[-1]


def _product(mask: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Return ``mask @ tags`` of 0/1 matrices as int64 (exact below 2**24)."""
    return (mask.astype(np.float32) @ tags.astype(np.float32)).astype(np.int64)


# ------------------------------------------------------------- every rule at once


@dataclass
class _KindPlan:
    """How :class:`TagCounter` counts the values of one rule kind.

    In each layer, the values with a top-k / top-q % selection form a run of
    consecutive values, ``values[first:stop[layer]]``, counted by levels
    (level j stands for ``values[j]``); the others (value 0, k above the
    layer's filters, q above 100, or tags that are not nested) are counted one
    by one with the rule's mask and ``mean`` tag matrices.

    Attributes:
        n_values: the kind's values.
        first: the index of the first value >= 1 (levels start there).
        stop: int64, shape (n_layers,): the end of each layer's run.
        sizes: per layer, int64 (run length,): the filters each value of the
            run selects in the layer, ascending.
        group: int64, shape (n_layers,): the layer's counting group: layers
            with the same run share one; the last layer has its own.
        indptr, classes, levels: per filter (all layers, in order), the
            classes it is tagged with at some level of its layer's run and the
            first such level (CSR rows).
        mean: {(layer, value): float32 (n_filters, n_classes) tag matrix}.
    """

    n_values: int
    first: int
    stop: np.ndarray
    sizes: list[np.ndarray]
    group: np.ndarray
    indptr: np.ndarray
    classes: np.ndarray
    levels: np.ndarray
    mean: dict[tuple[int, int], np.ndarray]


class TagCounter:
    """Counts the tags of every rule of a step-2 file for batches of test images.

    Equal to :func:`tag_counts` rule by rule (tested), much faster for many
    rules and classes, and with memory in proportion to the tags.

    Args:
        filtags: ``{kind: {value: [per layer [per filter [class names]]]}}``
            for "k" and "q": step 2's ``filTags_k`` and ``filTags_q``,
            restricted to the values to count.
        class_names: the class names, index ``i`` for class ``i``.
        filters_per_layer: the filters of each layer.

    Raises:
        FiltagError: a tag is not a class name, or the tags do not fit the layers.
    """

    def __init__(
        self,
        filtags: Mapping[str, Mapping[int, list[list[list[str]]]]],
        class_names: Sequence[str],
        filters_per_layer: Sequence[int],
    ) -> None:
        self.class_names = list(class_names)
        self.filters = list(filters_per_layer)
        self.values = {kind: sorted(filtags[kind]) for kind in KINDS}
        index = {name: c for c, name in enumerate(self.class_names)}
        self._plans = {kind: self._plan(kind, filtags[kind], index) for kind in KINDS}

    def _plan(
        self, kind: str, tags: Mapping[int, list], index: Mapping[str, int]
    ) -> _KindPlan:
        """Return how to count the values of ``kind`` (see :class:`_KindPlan`)."""
        values = self.values[kind]
        first = sum(v == 0 for v in values)
        stop, sizes, mean = [], [], {}
        indptr, classes, levels = [0], [], []
        for layer, n in enumerate(self.filters):
            if [len(t[layer]) for t in tags.values()] != [n] * len(values):
                raise FiltagError(
                    f"filter tags {kind}: expected {n} filters in layer {layer}; use "
                    "the step 2 file made for this network."
                )
            matrices = [tag_matrix(tags[v][layer], index) for v in values]
            end = first
            while end < len(values) and rule_size(kind, values[end], n) is not None:
                end += 1
            if not _is_nested(matrices[first:end]):
                end = first  # counted value by value instead
            stop.append(end)
            sizes.append(np.array([rule_size(kind, v, n) for v in values[first:end]]))
            for j, v in enumerate(values):
                if not first <= j < end:
                    mean[layer, v] = matrices[j].astype(np.float32)
            level = np.full((n, len(self.class_names)), -1, np.int64)
            for j in reversed(range(first, end)):
                level[matrices[j]] = j
            for row in level:
                tagged = np.flatnonzero(row >= 0)
                classes.append(tagged)
                levels.append(row[tagged])
                indptr.append(indptr[-1] + len(tagged))
        groups = {end: g for g, end in enumerate(dict.fromkeys(stop[:-1]))}
        group = [groups[end] for end in stop[:-1]] + [len(groups)]
        return _KindPlan(
            len(values),
            first,
            np.asarray(stop, np.int64),
            sizes,
            np.asarray(group, np.int64),
            np.asarray(indptr, np.int64),
            np.concatenate(classes).astype(np.int64),
            np.concatenate(levels).astype(np.int64),
            mean,
        )

    def counts(
        self, layer_acts: Sequence[np.ndarray]
    ) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
        """Count every rule's tags for a batch of images.

        Args:
            layer_acts: per layer, float (n_images, n_filters): the images'
                activations.

        Returns:
            {(kind, value): (counts_all, counts_last)}: int64, shape
            (n_images, n_classes), as :func:`tag_counts` returns them.
        """
        acts = [np.asarray(a, np.float64) for a in layer_acts]
        check_layers(acts, acts[0].shape[0], "image")
        if [a.shape[1] for a in acts] != self.filters:
            raise FiltagError(
                f"image activations: expected {self.filters} filters per layer; "
                f"received {[a.shape[1] for a in acts]}."
            )
        ranks = [descending_ranks(a) for a in acts]
        result = {}
        for kind in KINDS:
            plan = self._plans[kind]
            by_group = self._level_counts(plan, ranks, acts)  # (b, C, G, V)
            counts_all = by_group.sum(axis=2)
            counts_last = by_group[:, :, -1]
            for j, value in enumerate(self.values[kind]):
                every, last = counts_all[..., j], counts_last[..., j]
                for layer in range(len(acts)):
                    tags = plan.mean.get((layer, value))
                    if tags is None:
                        continue
                    mask = selected(acts[layer], kind, value, ranks[layer])
                    extra = _product(mask, tags)
                    every = every + extra
                    if layer == len(acts) - 1:
                        last = last + extra
                result[kind, value] = (every, last)
        return result

    def _level_counts(
        self,
        plan: _KindPlan,
        ranks: Sequence[np.ndarray],
        acts: Sequence[np.ndarray],
    ) -> np.ndarray:
        """Count the values that each layer's run covers, per counting group.

        Returns:
            int64, shape (n_images, n_classes, n_groups, n_values): entry j
            holds the count of ``values[j]`` over the group's layers (0 where
            ``values[j]`` is outside the group's run).
        """
        n_values = plan.n_values
        n_groups = int(plan.group.max()) + 1
        shape = (ranks[0].shape[0], len(self.class_names), n_groups, n_values)
        never = n_values
        image_level = []
        for layer, (rank, a) in enumerate(zip(ranks, acts, strict=True)):
            level = plan.first + np.searchsorted(plan.sizes[layer], rank, side="right")
            level[level >= plan.stop[layer]] = never
            level[np.isnan(a).any(axis=1)] = never  # a NaN row selects nothing
            image_level.append(level)
        image_level = np.concatenate(image_level, axis=1)
        group = np.repeat(plan.group, self.filters)
        rows, filters = np.nonzero(image_level < never)
        lengths = plan.indptr[filters + 1] - plan.indptr[filters]
        hist = np.zeros(shape, np.int64)
        parts = max(1, int(lengths.sum()) // CHUNK_TRIPLES + 1)
        for chunk in np.array_split(np.arange(len(rows)), parts):
            r, f, n = rows[chunk], filters[chunk], lengths[chunk]
            position = np.repeat(plan.indptr[f] - np.cumsum(n) + n, n) + np.arange(
                int(n.sum())
            )
            level = np.maximum(plan.levels[position], np.repeat(image_level[r, f], n))
            key = np.repeat(r, n) * shape[1] + plan.classes[position]
            key = (key * n_groups + np.repeat(group[f], n)) * n_values + level
            hist += np.bincount(key, minlength=hist.size).reshape(shape)
        counts = np.cumsum(hist, axis=3)
        stops = np.zeros(n_groups, np.int64)
        stops[plan.group] = plan.stop
        counts[:, :, np.arange(n_values)[None, :] >= stops[:, None]] = 0
        return counts


def _is_nested(matrices: Sequence[np.ndarray]) -> bool:
    """Tell whether each tag matrix contains the one before it."""
    return all(
        not (earlier & ~later).any() for earlier, later in itertools.pairwise(matrices)
    )


# ----------------------------------------------------------------------- rankings


def rankings(
    counts: np.ndarray, class_names: Sequence[str], top: int | None = None
) -> list[Ranking]:
    """Return each image's ranking of the classes by count.

    Args:
        counts: int, shape (n_images, n_classes), from :func:`tag_counts`.
        class_names: the class names, index ``i`` for class ``i``.
        top: keep the first ``top`` classes of each ranking; None: all.

    Returns:
        per image, the ``(class name, count)`` pairs of the classes with a count
        above 0, by count descending, ties by class index ascending, at most
        ``top`` of them; counts are Python ints.
    """
    n_classes = counts.shape[1]
    keep = n_classes if top is None else min(top, n_classes)
    # one key per class: higher count first, then lower index
    key = counts.astype(np.int64) * n_classes + (n_classes - 1 - np.arange(n_classes))
    if keep < n_classes:
        best = np.argpartition(-key, keep - 1, axis=1)[:, :keep]
        order = np.take_along_axis(
            best, np.argsort(-np.take_along_axis(key, best, axis=1), axis=1), axis=1
        )
    else:
        order = np.argsort(-key, axis=1)
    sorted_counts = np.take_along_axis(counts, order, axis=1)
    lengths = np.count_nonzero(sorted_counts > 0, axis=1).tolist()
    name = class_names.__getitem__
    return [
        list(zip(map(name, row[:length]), counts_row[:length]))  # noqa: B905
        for row, counts_row, length in zip(
            order.tolist(), sorted_counts.tolist(), lengths, strict=True
        )
    ]


def top_predictions(
    outputs: np.ndarray, class_names: Sequence[str], n: int = 5
) -> list[list[tuple[str, float]]]:
    """Return each image's n most probable classes, best first.

    Args:
        outputs: float, shape (n_images, n_outputs): the network's outputs;
            softmax is applied to a row set that is not probabilities
            (negative values, or rows not summing to 1 within 1e-3).
        class_names: the name of each output.
        n: how many classes per image.

    Returns:
        per image, ``n`` (class name, probability) pairs, probabilities as
        Python floats; ties by output index.
    """
    probabilities = as_probabilities(outputs)
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :n]
    return [
        [(class_names[j], float(row[j])) for j in order]
        for row, order in zip(probabilities, best.tolist(), strict=True)
    ]


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Return the network's outputs as probabilities, float64 (n_images, n_outputs).

    Outputs that are probabilities already (all >= 0, each row summing to 1
    within 1e-3) are kept; others get a softmax.
    """
    outputs = np.asarray(outputs, np.float64)
    is_probability = (outputs >= 0).all() and np.allclose(
        outputs.sum(axis=1), 1, atol=1e-3
    )
    if is_probability:
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
