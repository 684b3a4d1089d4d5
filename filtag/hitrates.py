"""Step 4's computation: how often the tag ranking agrees with the network.

An image is a hit for rule k and depth m when the network's top-1 class is
among the first m classes of the image's step 3 ranking for k (a ranking
shorter than m just offers fewer classes; an empty ranking never hits). Hit
rates are fractions of images in [0, 1]: per evaluated class, pooled over all
evaluated images, and the mean of the per-class rates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from filtag.errors import FiltagError
from filtag.evaluation import Ranking
from filtag.tagging import check_whole_numbers

logger = logging.getLogger(__name__)

#: Hit rates {k: {m: rate}}.
Rates = dict[int, dict[int, float]]


def check_m_values(m_values: Iterable[object]) -> list[int]:
    """Return the m values as Python ints, without repeats, refusing anything else.

    Raises:
        FiltagError: a value is not a whole number >= 1, or there is none.
    """
    checked = check_whole_numbers(m_values, 1, "m", "1, 3, 5")
    if not checked:
        raise FiltagError("m: expected at least one value; received none; give 1.")
    return list(dict.fromkeys(checked))


def _position(name: str, ranking: Ranking) -> float:
    """Return the 0-based place of ``name`` in ``ranking``; inf when absent."""
    places = (i for i, (ranked, _) in enumerate(ranking) if ranked == name)
    return next(places, math.inf)


def hit_matrix(
    top1: Sequence[str], rankings: Sequence[Ranking], m_values: Sequence[int]
) -> np.ndarray:
    """Return which images are hits at each depth m.

    Args:
        top1: per image, the network's top-1 class name.
        rankings: per image, its step 3 ranking for one rule.
        m_values: the depths, whole numbers >= 1.

    Returns:
        bool, shape (n_images, len(m_values)): True where ``top1[i]`` is among
        the first ``m_values[j]`` classes of ``rankings[i]``.

    Raises:
        FiltagError: ``top1`` and ``rankings`` differ in length.
    """
    if len(top1) != len(rankings):
        raise FiltagError(
            f"rankings: expected one per image ({len(top1)}); received "
            f"{len(rankings)}; use the step 3 file made with these images."
        )
    places = np.array(
        [
            _position(name, ranking)
            for name, ranking in zip(top1, rankings, strict=True)
        ],
        dtype=np.float64,
    )
    return places[:, None] < np.asarray(m_values, dtype=np.float64)[None, :]


def _rates(hits: np.ndarray, m_values: Sequence[int]) -> dict[int, float]:
    """Return {m: fraction of hits} from a (n_images >= 1, len(m_values)) matrix."""
    return dict(zip(m_values, (hits.sum(axis=0) / len(hits)).tolist(), strict=True))


def class_hits(
    top1_by_class: Mapping[str, Sequence[str]],
    rankings_by_class: Mapping[str, Mapping[int, Sequence[Ranking]]],
    m_values: Sequence[int],
) -> dict[str, dict[int, np.ndarray]]:
    """Return the hit matrices of every class that has images, per k.

    Args:
        top1_by_class: per evaluated class name, its images' top-1 class names.
        rankings_by_class: per evaluated class name, per k, its images'
            rankings, in the order of ``top1_by_class``.
        m_values: the depths, whole numbers >= 1.

    Returns:
        {class: {k: bool array (n_images of the class, len(m_values))}};
        classes without images are left out (see :func:`empty_classes`).

    Raises:
        FiltagError: a class with images lacks rankings, or its k values
            differ from the other classes'.
    """
    hits: dict[str, dict[int, np.ndarray]] = {}
    k_values = None
    for name, top1 in top1_by_class.items():
        if not top1:
            continue
        by_k = rankings_by_class.get(name, {})
        k_values = list(by_k) if k_values is None else k_values
        if not by_k or set(by_k) != set(k_values):
            raise FiltagError(
                f"rankings of class {name!r}: expected k values {k_values}; received "
                f"{list(by_k)}; use the step 3 files of one run."
            )
        hits[name] = {k: hit_matrix(top1, by_k[k], m_values) for k in k_values}
    return hits


def empty_classes(top1_by_class: Mapping[str, Sequence[str]]) -> str | None:
    """Return one line naming the classes without evaluated images, or None."""
    empty = [name for name, top1 in top1_by_class.items() if not top1]
    if not empty:
        return None
    shown = ", ".join(map(repr, empty[:5])) + (", ..." if len(empty) > 5 else "")
    return (
        f"{len(empty)} classes have no evaluated image ({shown}); they are left "
        "out of the per-class and mean hit rates"
    )


def hit_rates(
    top1_by_class: Mapping[str, Sequence[str]],
    rankings_by_class: Mapping[str, Mapping[int, Sequence[Ranking]]],
    m_values: Iterable[int],
) -> tuple[dict[str, Rates], Rates, Rates]:
    """Return the hit rates per class, pooled over all images and class-averaged.

    Args:
        top1_by_class: per evaluated class name, its images' top-1 class names.
        rankings_by_class: per evaluated class name, per k, its images'
            rankings (:func:`filtag.evaluation.rankings`), in the same order.
        m_values: the depths, whole numbers >= 1.

    Returns:
        ``(per_class, total, mean)``: ``per_class[class][k][m]`` is the class's
        hit rate; ``total[k][m]`` the rate over all evaluated images;
        ``mean[k][m]`` the mean of the per-class rates. Classes without images
        are left out of ``per_class`` and ``mean``. Rates are Python floats.

    Raises:
        FiltagError: an m value is invalid, no class has images, or the
            rankings do not match the images.
    """
    m_values = check_m_values(m_values)
    return rates_of_hits(
        class_hits(top1_by_class, rankings_by_class, m_values), m_values
    )


def rates_of_hits(
    hits: Mapping[str, Mapping[int, np.ndarray]], m_values: Sequence[int]
) -> tuple[dict[str, Rates], Rates, Rates]:
    """Return the hit rates of :func:`class_hits`' matrices (see :func:`hit_rates`).

    Args:
        hits: {class: {k: bool array (n_images of the class, len(m_values))}},
            classes with images only, all with the same k values.
        m_values: the depths of the matrices' columns.

    Returns:
        ``(per_class, total, mean)`` as :func:`hit_rates` returns them.

    Raises:
        FiltagError: ``hits`` is empty (no class has images).
    """
    if not hits:
        raise FiltagError(
            "hit rates: expected evaluated images; received none; run step 3 on "
            "classes that have test images."
        )
    per_class = {
        name: {k: _rates(matrix, m_values) for k, matrix in by_k.items()}
        for name, by_k in hits.items()
    }
    k_values = list(next(iter(hits.values())))
    total = {
        k: _rates(np.concatenate([by_k[k] for by_k in hits.values()]), m_values)
        for k in k_values
    }
    mean = {
        k: {
            m: math.fsum(rates[k][m] for rates in per_class.values()) / len(per_class)
            for m in m_values
        }
        for k in k_values
    }
    return per_class, total, mean


def rates_table(rates: Rates, kind: str, tablefmt: str = "github") -> str:
    """Return ``{value: {m: rate}}`` as a table: a row per k (or q), a column per m.

    Args:
        rates: {k or q value: {m: rate in [0, 1]}}.
        kind: "k" or "q", the first column's title.
        tablefmt: a tabulate format ("github" for text, "html" for a page).

    Returns:
        A plain-text table (tabulate), rates as percentages with one decimal.
    """
    from tabulate import tabulate

    m_values = sorted({m for by_m in rates.values() for m in by_m})
    rows = [
        [value, *(f"{100 * rates[value][m]:.1f}" for m in m_values)]
        for value in sorted(rates)
    ]
    headers = [kind, *(f"m={m}" for m in m_values)]
    return tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True)
