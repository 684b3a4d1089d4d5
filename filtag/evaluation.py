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

import numpy as np

from filtag.errors import FiltagError
from filtag.tagging import check_layers, selected

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
    counts_all = np.zeros((image_acts[0].shape[0], tag_matrices[0].shape[1]), np.int64)
    for layer, (tags, acts) in enumerate(zip(tag_matrices, image_acts, strict=True)):
        layer_ranks = None if ranks is None else ranks[layer]
        active = selected(acts, kind, value, layer_ranks, layer, warn)
        # float32 products are exact: every partial sum is a count < 2**24.
        counts_last = (active.astype(np.float32) @ tags.astype(np.float32)).astype(
            np.int64
        )
        counts_all += counts_last
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
    return [
        [
            (class_names[c], n)
            for c, n in zip(row[:length], counts_row[:length], strict=True)
        ]
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
