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
import math
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
    product = mask.astype(np.float32, copy=False) @ tags.astype(np.float32, copy=False)
    return product.astype(np.int64)


# ------------------------------------------------------------- every rule at once

#: The padded tag tables of :class:`TagCounter` come in row widths that grow by
#: this factor, so padding adds at most a quarter to the work.
WIDTH_STEP = 1.25

#: (image, filter, tag) triples counted per ``np.add.at`` call: their int64
#: keys (1 MiB) stay in the CPU's cache.
CHUNK_TRIPLES = 1 << 17


@dataclass
class _Table:
    """The tags of some filters, one row per filter, padded to one width.

    Attributes:
        filters: int64, shape (n,): the filters, numbered over all layers.
        keys: int64, shape (n, width): per tag, ``(group * n_classes + class)
            * n_values``; padding holds ``n_groups * n_classes * n_values``,
            the first of the bins that are dropped.
        levels: unsigned int, shape (n, width): per tag, its level (the index
            of the first value that tags the filter with the class); padding
            holds 0.
    """

    filters: np.ndarray
    keys: np.ndarray
    levels: np.ndarray


@dataclass
class _KindPlan:
    """How :class:`TagCounter` counts the values of one rule kind.

    In each layer, the values with a top-k / top-q % selection form a run of
    consecutive values from the first value >= 1 on, counted by levels (level
    j stands for ``values[j]``); the others (value 0, k above the layer's
    filters, q above 100, or all of them where the tags are not nested) are
    counted one by one with a dense product each.

    Attributes:
        rank_level: int64, shape (n_filters of all layers,): entry
            ``offset[layer] + r`` is the level of the filter of rank r (0: the
            most active) in the layer's run: the first j whose value selects
            r + 1 filters or more; ``n_values`` past the run.
        group: int64, shape (n_layers,): the layer's counting group: layers
            with the same run share one; the last layer has its own.
        group_stop: int64, shape (n_groups,): each group's run end.
        tables: the tags counted by levels.
        dense: {(layer, value): index into ``TagCounter._products``}: the
            values counted one by one in a layer.
    """

    rank_level: np.ndarray
    group: np.ndarray
    group_stop: np.ndarray
    tables: list[_Table]
    dense: dict[tuple[int, int], int]


class TagCounter:
    """Counts the tags of every rule of a step-2 file for batches of test images.

    Equal to :func:`tag_counts` rule by rule (tested), much faster for many
    rules and classes, and with memory in proportion to the tags.

    How: within a layer, an image's top-k (top-q %) selections are nested, and
    so are step 2's tags (checked), so an (image, filter) pair has a level (the
    first value whose rule selects the filter for the image) and so has a
    (filter, class) tag (the first value that tags the filter with the class);
    the pair counts for the class at every value from the larger of the two
    levels on. One histogram of ``(class, larger level)`` over the
    (image, filter, tag) triples of the largest value, then a cumulative sum
    over the levels, give the counts of every value. The triples are read from
    padded tables (one row of tags per filter) in cache-sized chunks: no
    per-triple index arithmetic but a maximum and two additions.

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
        #: The dense products, each distinct one once (k = 0 and q = 0 share
        #: one): (layer, kind, value, float32 tag matrix); the mask is the
        #: rule's, and rules of the same size (or both mean rules) share it.
        self._products: list[tuple[int, str, int, np.ndarray]] = []
        index = {name: c for c, name in enumerate(self.class_names)}
        self._plans = {kind: self._plan(kind, filtags[kind], index) for kind in KINDS}

    def _plan(
        self, kind: str, tags: Mapping[int, list], index: Mapping[str, int]
    ) -> _KindPlan:
        """Return how to count the values of ``kind`` (see :class:`_KindPlan`)."""
        values = self.values[kind]
        n_values = len(values)
        first = sum(v == 0 for v in values)
        stop, rank_level, dense, levels = [], [], {}, []
        for layer, n in enumerate(self.filters):
            if [len(t[layer]) for t in tags.values()] != [n] * n_values:
                raise FiltagError(
                    f"filter tags {kind}: expected {n} filters in layer {layer}; use "
                    "the step 2 file made for this network."
                )
            matrices = [tag_matrix(tags[v][layer], index) for v in values]
            end = first
            while end < n_values and rule_size(kind, values[end], n) is not None:
                end += 1
            if not _is_nested(matrices[first:end]):
                end = first  # counted value by value instead
            stop.append(end)
            sizes = [rule_size(kind, v, n) for v in values[first:end]]
            level = first + np.searchsorted(sizes, np.arange(n), side="right")
            rank_level.append(np.where(level < end, level, n_values))
            for j, v in enumerate(values):
                if not first <= j < end:
                    dense[layer, v] = self._product_index(layer, kind, v, matrices[j])
            level = np.full((n, len(self.class_names)), n_values)
            for j in reversed(range(first, end)):
                level[matrices[j]] = j
            levels.append(level.astype(np.min_scalar_type(n_values)))
        groups = {end: g for g, end in enumerate(dict.fromkeys(stop[:-1]))}
        group = np.array([groups[end] for end in stop[:-1]] + [len(groups)])
        tables = self._tables(
            np.concatenate(levels), np.repeat(group, self.filters), n_values
        )
        return _KindPlan(
            np.concatenate(rank_level).astype(np.int64),
            group,
            np.array([*groups, stop[-1]], np.int64),
            tables,
            dense,
        )

    def _product_index(
        self, layer: int, kind: str, value: int, tags: np.ndarray
    ) -> int:
        """Return the index of the dense product of a rule in ``layer``.

        Args:
            tags: bool, shape (n_filters, n_classes): the rule's tags.
        """
        size = rule_size(kind, value, self.filters[layer])
        for i, (other_layer, other_kind, other_value, other) in enumerate(
            self._products
        ):
            other_size = rule_size(other_kind, other_value, self.filters[layer])
            same = other_layer == layer and other_size == size
            if same and np.array_equal(other, tags):
                return i
        self._products.append((layer, kind, value, tags.astype(np.float32)))
        return len(self._products) - 1

    def _tables(
        self, levels: np.ndarray, group: np.ndarray, n_values: int
    ) -> list[_Table]:
        """Return the tags as padded tables, filters grouped by their number of tags.

        Args:
            levels: shape (n_filters, n_classes), all layers: each tag's level;
                ``n_values`` where the filter is not tagged with the class.
            group: int64, shape (n_filters,): each filter's counting group.
            n_values: the kind's values.
        """
        n_classes = len(self.class_names)
        padding = (int(group.max(initial=0)) + 1) * n_classes * n_values
        tagged = levels < n_values
        counts = np.count_nonzero(tagged, axis=1)
        steps = [8]
        while steps[-1] < n_classes:
            steps.append(math.ceil(steps[-1] * WIDTH_STEP))
        widths = np.asarray(steps)[np.searchsorted(steps, counts)]
        tables = []
        for width in np.unique(widths[counts > 0]).tolist():
            filters = np.flatnonzero((widths == width) & (counts > 0))
            n = counts[filters]
            rows, classes = np.nonzero(tagged[filters])
            columns = np.arange(len(rows)) - np.repeat(np.cumsum(n) - n, n)
            keys = np.full((len(filters), width), padding, np.int64)
            keys[rows, columns] = (
                group[filters[rows]] * n_classes + classes
            ) * n_values
            table_levels = np.zeros((len(filters), width), levels.dtype)
            table_levels[rows, columns] = levels[filters[rows], classes]
            tables.append(_Table(filters, keys, table_levels))
        return tables

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
        stacked = self.stacked(layer_acts)
        return {
            (kind, value): (stacked[kind][0][:, j], stacked[kind][1][:, j])
            for kind in KINDS
            for j, value in enumerate(self.values[kind])
        }

    def stacked(
        self, layer_acts: Sequence[np.ndarray]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Count every rule's tags for a batch of images, the values stacked.

        Args:
            layer_acts: per layer, float (n_images, n_filters): the images'
                activations.

        Returns:
            {kind: (counts_all, counts_last)}: int64, shape (n_images,
            n_values, n_classes): ``[:, j]`` holds the counts of
            ``values[kind][j]`` as :func:`tag_counts` returns them.

        Raises:
            FiltagError: the activations do not fit the layers.
        """
        acts = [np.asarray(a, np.float64) for a in layer_acts]
        check_layers(acts, acts[0].shape[0], "image")
        if [a.shape[1] for a in acts] != self.filters:
            raise FiltagError(
                f"image activations: expected {self.filters} filters per layer; "
                f"received {[a.shape[1] for a in acts]}."
            )
        ranks = [_descending_ranks(np.asarray(a)) for a in layer_acts]
        nan_rows = [np.isnan(a).any(axis=1) for a in acts]
        products = _Products(self._products, acts, ranks, nan_rows)
        result = {}
        for kind in KINDS:
            plan = self._plans[kind]
            n_values = len(self.values[kind])
            levels = self._image_levels(plan, ranks, nan_rows, n_values)
            # (images, groups, values, classes); a group counts up to its run's end
            histogram = self._histogram(plan, levels, n_values)
            by_group = np.ascontiguousarray(histogram.transpose(0, 1, 3, 2))
            for j in range(1, n_values):  # cumulative over the levels
                by_group[:, :, j] += by_group[:, :, j - 1]
            by_group *= (np.arange(n_values) < plan.group_stop[:, None])[..., None]
            counts_all = by_group.sum(axis=1)
            counts_last = by_group[:, -1].copy()
            last = len(acts) - 1
            for (layer, value), i in plan.dense.items():
                j = self.values[kind].index(value)
                counts_all[:, j] += products[i]
                if layer == last:
                    counts_last[:, j] += products[i]
            result[kind] = (counts_all, counts_last)
        return result

    def _image_levels(
        self,
        plan: _KindPlan,
        ranks: Sequence[np.ndarray],
        nan_rows: Sequence[np.ndarray],
        n_values: int,
    ) -> np.ndarray:
        """Return each (image, filter) pair's level; ``n_values``: never selected.

        Returns:
            int64, shape (n_images, n_filters of all layers).
        """
        offsets = np.cumsum([0, *self.filters[:-1]])
        ranks = np.concatenate(
            [rank + offset for rank, offset in zip(ranks, offsets, strict=True)], axis=1
        )
        levels = plan.rank_level[ranks]
        for layer, offset in enumerate(offsets):  # a NaN row selects nothing
            levels[nan_rows[layer], offset : offset + self.filters[layer]] = n_values
        return levels

    def _histogram(
        self, plan: _KindPlan, image_levels: np.ndarray, n_values: int
    ) -> np.ndarray:
        """Count the (image, filter, tag) triples by class and larger level.

        Args:
            image_levels: from :meth:`_image_levels`.

        Returns:
            int64, shape (n_images, n_groups, n_classes, n_values): entry
            ``[i, g, c, j]`` counts the filters of group g's layers whose
            larger level for image i and class c is j.
        """
        n_images = image_levels.shape[0]
        cells = len(plan.group_stop) * len(self.class_names) * n_values
        block = cells + n_values  # an image's bins, the padding's last
        histogram = np.zeros(n_images * block, np.int64)
        for table in plan.tables:
            levels = image_levels[:, table.filters]
            rows, columns = np.nonzero(levels < n_values)
            levels = levels[rows, columns].astype(table.levels.dtype)[:, None]
            offsets = (rows * block)[:, None]
            step = max(1, CHUNK_TRIPLES // table.keys.shape[1])
            for start in range(0, len(rows), step):
                chunk = slice(start, start + step)
                tag_levels = table.levels[columns[chunk]]
                np.maximum(tag_levels, levels[chunk], out=tag_levels)
                keys = table.keys[columns[chunk]]
                keys += tag_levels
                keys += offsets[chunk]
                np.add.at(histogram, keys.ravel(), 1)
        by_image = histogram.reshape(n_images, block)[:, :cells]
        return by_image.reshape(n_images, len(plan.group_stop), -1, n_values)


class _Products:
    """A batch's dense tag products, each computed once when first asked for.

    Args:
        products: ``TagCounter._products``.
        acts, ranks, nan_rows: the batch's activations per layer, their
            :func:`filtag.tagging.descending_ranks` and NaN rows.
    """

    def __init__(
        self,
        products: Sequence[tuple[int, str, int, np.ndarray]],
        acts: Sequence[np.ndarray],
        ranks: Sequence[np.ndarray],
        nan_rows: Sequence[np.ndarray],
    ) -> None:
        self._products = products
        self._acts, self._ranks, self._nan_rows = acts, ranks, nan_rows
        self._masks: dict[tuple[int, int | None], np.ndarray] = {}
        self._done: dict[int, np.ndarray] = {}

    def __getitem__(self, i: int) -> np.ndarray:
        """Return product ``i``: int64, shape (n_images, n_classes)."""
        if i not in self._done:
            layer, kind, value, tags = self._products[i]
            acts = self._acts[layer]
            size = rule_size(kind, value, acts.shape[1])
            if (layer, size) not in self._masks:
                self._masks[layer, size] = selected(
                    acts, kind, value, self._ranks[layer], self._nan_rows[layer]
                )
            self._done[i] = _product(self._masks[layer, size], tags)
        return self._done[i]


def _descending_ranks(values: np.ndarray) -> np.ndarray:
    """Return :func:`filtag.tagging.descending_ranks` of ``values``; fast for float32.

    float32 values (the probe's output) as order-preserving integers, with the
    filter index in the low 32 bits, make distinct int64 keys: their plain sort
    is the stable sort of the values, three times as fast.
    """
    if values.dtype != np.float32:
        return descending_ranks(np.asarray(values, np.float64))
    ordered = (values + np.float32(0)).view(np.int32).astype(np.int64)  # -0 -> 0
    ordered ^= (ordered >> 31) & 0x7FFFFFFF  # negative floats: reverse their bits
    keys = (-ordered << 32) | np.arange(values.shape[1])
    order = np.sort(keys, axis=1) & 0xFFFFFFFF
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(values.shape[1])[None, :], axis=1)
    return ranks


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
    # one key per class, distinct within a row: higher count first, then lower
    # index; 32 bits when they fit (the partition is twice as fast)
    wide = (int(counts.max(initial=0)) + 1) * n_classes >= 2**31
    key = counts.astype(np.int64 if wide else np.int32)
    key *= n_classes
    key += np.arange(n_classes - 1, -1, -1, dtype=key.dtype)
    if keep < n_classes:
        best = np.argpartition(key, n_classes - keep, axis=1)[:, n_classes - keep :]
        order = np.take_along_axis(
            best, np.argsort(-np.take_along_axis(key, best, axis=1), axis=1), axis=1
        )
    else:
        order = np.argsort(-key, axis=1)
    sorted_counts = np.take_along_axis(counts, order, axis=1)
    counted = sorted_counts > 0  # a prefix of each row
    names = np.empty(n_classes, dtype=object)
    names[:] = class_names
    pairs = list(
        zip(
            names[order[counted]].tolist(), sorted_counts[counted].tolist(), strict=True
        )
    )
    ends = np.cumsum(np.count_nonzero(counted, axis=1)).tolist()
    return [pairs[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


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
