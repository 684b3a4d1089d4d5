"""Step 3's computation: rank the classes of each test image by filter tags.

For one rule (a k or q value of step 2), each test image's active filters in a
layer are the ones that the rule selects in the image's row of activations
(:func:`filtag.tagging.selected`, the same rule as step 2). Each active filter
adds 1 to every class it is tagged with. The counts are summed over all layers
and, separately, taken from the last layer only. An image's ranking lists the
classes with a count above 0, by count descending, ties by class index.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from filtag.errors import FiltagError
from filtag.tagging import check_layers, descending_ranks, gc_paused, selected

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
        warn: log the mean rule warnings (see :func:`filtag.tagging.selected`).

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
    return count_tags(active, stack_tags(tag_matrices))


def stack_tags(tag_matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Stack the layers' tag matrices for :func:`count_tags`.

    Args:
        tag_matrices: one bool array per layer, shape (n_filters, n_classes).

    Returns:
        float32, shape (total filters, n_classes), layers in order.
    """
    return np.concatenate(tag_matrices).astype(np.float32)


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
        warn: log the mean-rule warnings.

    Returns:
        one bool array per layer, shape (n_images, n_filters).
    """
    return [
        selected(
            acts, kind, value, None if ranks is None else ranks[layer], layer, warn
        )
        for layer, acts in enumerate(image_acts)
    ]


def count_tags(
    active: Sequence[np.ndarray], stacked_tags: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Count, per image and class, the active filters tagged with the class.

    Args:
        active: one bool array per layer, shape (n_images, n_filters).
        stacked_tags: float32, shape (total filters, n_classes), from
            :func:`stack_tags`.

    Returns:
        ``(counts_all, counts_last)``: int64, shape (n_images, n_classes), over
        all layers and over the last layer alone.
    """
    mask = np.concatenate(active, axis=1).astype(np.float32)
    last = active[-1].shape[1]
    # float32 products are exact: every partial sum is a count < 2**24.
    counts_all = (mask @ stacked_tags).astype(np.int64)
    counts_last = (mask[:, -last:] @ stacked_tags[-last:]).astype(np.int64)
    return counts_all, counts_last


def rankings(counts: np.ndarray, class_names: Sequence[str]) -> list[Ranking]:
    """Return each image's ranking of the classes by count.

    Args:
        counts: int, shape (n_images, n_classes), from :func:`tag_counts`.
        class_names: the class names, index ``i`` for class ``i``.

    Returns:
        per image, the ``(class name, count)`` pairs of the classes with a count
        above 0, by count descending, ties by class index ascending; counts are
        Python ints.
    """
    order = np.argsort(-counts, axis=1, kind="stable")
    sorted_counts = np.take_along_axis(counts, order, axis=1)
    lengths = np.count_nonzero(counts > 0, axis=1).tolist()
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
    outputs = np.asarray(outputs, np.float64)
    is_probability = (outputs >= 0).all() and np.allclose(
        outputs.sum(axis=1), 1, atol=1e-3
    )
    if not is_probability:
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs = shifted / shifted.sum(axis=1, keepdims=True)
    best = np.argsort(-outputs, axis=1, kind="stable")[:, :n]
    return [
        [(class_names[j], float(row[j])) for j in order]
        for row, order in zip(outputs, best.tolist(), strict=True)
    ]


@dataclass
class ClassResults:
    """Step 3's results for the test images of one class, in image order."""

    name: str
    k_q: list[int]
    files: list[str] = field(default_factory=list)
    y: list[list[tuple[str, float]]] = field(default_factory=list)
    rankings: dict[str, dict[int, list]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A restored class (a resumed run) keeps the rankings it was saved with.
        if not self.rankings:
            self.rankings = {
                key: {value: [] for value in self.k_q}
                for key in ("y_k", "y_k_ll", "y_q", "y_q_ll")
            }

    def variables(self) -> dict[str, Any]:
        """Return the class file's variables, in the documented order."""
        return {
            "y": self.y,
            **self.rankings,
            "class_images_dict": {self.name: self.files},
        }


def add_results(
    layer_acts: list[np.ndarray],
    outputs: np.ndarray,
    rows: list[int],
    classes: list[str],
    output_names: list[str],
    tags: dict[str, dict[int, np.ndarray]],
    results: list[ClassResults],
    warn: bool,
) -> None:
    """Add a batch's top-5 predictions and every rule's rankings to its results.

    Args:
        layer_acts: per layer, float (batch, filters): the images' activations
            (``FilterProbe.split_layers`` of the probe's first output).
        outputs: float (batch, n_outputs): the network's outputs.
        rows: per image of the batch, its :class:`ClassResults` in ``results``.
        classes: the class names (rankings name classes by these).
        output_names: the name of each network output.
        tags: per kind ("k", "q"), per value, the :func:`stack_tags` matrix.
        results: the results being filled.
        warn: log the mean-rule warnings (first batch only).
    """
    layer_acts = [np.asarray(a, np.float64) for a in layer_acts]
    ranks = [descending_ranks(a) for a in layer_acts]
    for row, top5 in zip(rows, top_predictions(outputs, output_names), strict=True):
        results[row].y.append(top5)
    with gc_paused():  # millions of small tuples: no cycles to collect
        _add_rankings(layer_acts, ranks, rows, classes, tags, results, warn)


def _add_rankings(
    layer_acts: list[np.ndarray],
    ranks: list[np.ndarray],
    rows: list[int],
    classes: list[str],
    tags: dict[str, dict[int, np.ndarray]],
    results: list[ClassResults],
    warn: bool,
) -> None:
    """Append every rule's rankings of a batch to the images' results."""
    for kind, by_value in tags.items():
        for value, stacked in by_value.items():
            active = active_filters(layer_acts, kind, value, ranks, warn)
            for suffix, count in zip(
                ("", "_ll"), count_tags(active, stacked), strict=True
            ):
                for row, ranking in zip(rows, rankings(count, classes), strict=True):
                    results[row].rankings[f"y_{kind}{suffix}"][value].append(ranking)
