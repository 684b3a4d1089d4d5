"""The tag check's computation: do a class's tagged filters matter for it?

Hit rates say how often the tags agree with the network; ablation says
whether the tagged filters carry the class (Bau et al., PNAS 2020; Zhou et al.
2018). For class c, T_c is the set of filters of the chosen layers that the
rule tags with c. Ablating a set multiplies those channels of the layers'
outputs by 0 (:mod:`filtag.keras_ablation`). With p_c(x) the network's
probability of c for test image x (its output when the outputs are
probabilities, else their softmax: :func:`filtag.evaluation.as_probabilities`):

- ``drop_tagged[c]``: the mean, over the test images of class c, of
  p_c(x) - p_c(x with T_c ablated);
- ``drop_random[c]``: the same with, per layer, as many filters as T_c has
  there, drawn uniformly without replacement from the layer's filters not
  tagged with c; the mean over the draws (each draw's mean is kept too);
- ``drop_others[c]``: the mean over the test images of the other classes of
  p_c'(x) - p_c'(x with T_c ablated), c' the image's own class;
- the same drops of the top-1 accuracy (1 when the network's top-1 output is
  the image's class) and of log p_c (natural log, p clipped at
  :data:`LOG_EPSILON`; a confident network's p_c sits near 1 and hides what
  was lost, log p_c does not).

Every forward row measures the image's own class, so a row's drop is its
image's unablated score minus its ablated score; which mean it joins depends
on whose set was ablated (:class:`AblationPlan`, :class:`DropSums`).

The hit-rate baselines (:class:`HitCounts`): chance, m / classes, and shuffled
tags: the rule's tags with the class labels permuted (one permutation of the
classes per draw, applied to every filter, so every filter keeps its number of
tags), which permutes the columns of the tag counts. Specificity
(:func:`specificity`): per filter, its number of tags and the normalised
entropy of its class activations from step 1.

Random draws are seeded by ``(seed, class index)``, the shuffles by
``(seed, 2**32 - 1)`` (numpy ``default_rng``), so reruns are identical and a
class's draws do not depend on the other classes. Nothing here reads or writes a file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

from filtag.errors import FiltagError
from filtag.evaluation import as_probabilities, rankings, tag_matrix
from filtag.hitrates import hit_matrix

logger = logging.getLogger(__name__)

#: Probabilities are clipped at this before the natural log.
LOG_EPSILON = 1e-12

#: The depths m of the hit-rate baselines.
M_VALUES = (1, 2, 3, 4, 5)

#: The tag counts a hit rate ranks by: over all selected layers, or the last.
SCOPES = ("all", "last")

#: What each forward row measures, in the columns of scores and drops.
MEASURES = ("p", "logp", "acc")


# ------------------------------------------------------------------ the sets


def choose_layers(spec: str, layer_names: Sequence[str]) -> list[int]:
    """Return the indices of the layers whose tagged filters are ablated.

    Args:
        spec: ``"last"`` (the last selected layer), ``"all"`` (every selected
            layer), or a comma list of selected layer names.
        layer_names: step 1's selected layers, in model order.

    Returns:
        Layer indices, ascending, without repeats.

    Raises:
        FiltagError: a name is not a selected layer.
    """
    if spec == "last":
        return [len(layer_names) - 1]
    if spec == "all":
        return list(range(len(layer_names)))
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in layer_names]
    if unknown or not names:
        shown = ", ".join(layer_names[:8]) + (", ..." if len(layer_names) > 8 else "")
        raise FiltagError(
            f"--layers {spec!r}: {unknown or 'no name'} are not layers step 1 "
            f"selected ({shown}); pass last, all or a comma list of those."
        )
    return sorted({layer_names.index(name) for name in names})


def tag_matrices(
    tags: Sequence[Sequence[Sequence[str]]], class_names: Sequence[str]
) -> list[np.ndarray]:
    """Return one rule's tags as matrices, one per layer.

    Args:
        tags: one rule's step-2 tags, ``[layer][filter] -> [class names]``.
        class_names: the class names, index ``c`` for class ``c``.

    Returns:
        per layer, bool (filters, n_classes) (:func:`filtag.evaluation.tag_matrix`).

    Raises:
        FiltagError: a tag is not a class name.
    """
    index = {name: c for c, name in enumerate(class_names)}
    return [tag_matrix(layer, index) for layer in tags]


def tag_sets(matrices: Sequence[np.ndarray], layers: Sequence[int]) -> np.ndarray:
    """Return T_c of every class: the chosen layers' filters tagged with c.

    Args:
        matrices: per layer, bool (filters, n_classes) (:func:`tag_matrices`).
        layers: the chosen layers' indices.

    Returns:
        bool, shape (n_classes, F): F = the chosen layers' filters together,
        layer after layer.
    """
    return np.concatenate([matrices[a] for a in layers], axis=0).T


def random_draws(
    tagged: np.ndarray,
    filters_per_layer: Sequence[int],
    draws: int,
    seed: int,
    class_index: int,
) -> np.ndarray | None:
    """Return random sets matched to a tagged set, layer by layer.

    Per draw and layer: as many filters as ``tagged`` has in the layer, drawn
    uniformly without replacement from the layer's filters outside it.

    Args:
        tagged: bool, shape (F,): T_c over the chosen layers.
        filters_per_layer: the chosen layers' filters (sum F).
        draws: how many sets.
        seed, class_index: the generator's seed is ``(seed, class_index)``.

    Returns:
        bool, shape (draws, F); None when a layer has fewer untagged filters
        than tagged ones (no set of that size exists).
    """
    starts = np.cumsum([0, *filters_per_layer[:-1]])
    layers = []  # per layer: (filters to draw, the untagged filters)
    for start, n in zip(starts, filters_per_layer, strict=True):
        layer = tagged[start : start + n]
        layers.append((int(layer.sum()), start + np.flatnonzero(~layer)))
        if layers[-1][0] > len(layers[-1][1]):
            return None
    rng = np.random.default_rng([seed, class_index])
    sets = np.zeros((draws, len(tagged)), bool)
    for d in range(draws):  # draw d is the same whatever the number of draws
        for size, pool in layers:
            sets[d, rng.choice(pool, size, replace=False)] = True
    return sets


class AblationPlan:
    """Every ablation set of a check, and the forward rows that measure them.

    Args:
        tagged: bool (n_classes, F): T_c of every class (:func:`tag_sets`).
        filters_per_layer: the chosen layers' filters (sum F).
        checked: the classes to ablate (each with test images, tags and a
            network output), ascending.
        draws: random sets per class.
        seed: the random draws' seed.

    Attributes:
        sets: bool (n_sets, F): row 0 ablates nothing; row ``1 + j`` is
            T_c of ``checked[j]``; row ``1 + n + j * draws + d`` is its random
            draw d (n = len(checked)).
        set_class: int64 (n_sets,): whose set a row is (-1 for row 0).
        set_draw: int64 (n_sets,): the draw (-1 for row 0 and tagged sets).
        random_ok: bool (n,): the class has random draws (see
            :func:`random_draws`; else its random rows stay empty).
    """

    def __init__(
        self,
        tagged: np.ndarray,
        filters_per_layer: Sequence[int],
        checked: Sequence[int],
        draws: int,
        seed: int,
    ) -> None:
        self.checked = np.asarray(checked, np.int64)
        self.draws = draws
        n, width = len(self.checked), tagged.shape[1]
        self.sets = np.zeros((1 + n + n * draws, width), bool)
        self.sets[1 : 1 + n] = tagged[self.checked]
        self.random_ok = np.zeros(n, bool)
        for j, c in enumerate(self.checked.tolist()):
            drawn = random_draws(tagged[c], filters_per_layer, draws, seed, c)
            if drawn is not None:
                start = 1 + n + j * draws
                self.sets[start : start + draws] = drawn
                self.random_ok[j] = True
        self.set_class = np.concatenate(
            [[-1], self.checked, np.repeat(self.checked, draws)]
        ).astype(np.int64)
        self.set_draw = np.concatenate(
            [[-1], np.full(n, -1), np.tile(np.arange(draws), n)]
        ).astype(np.int64)

    def masks(self, set_index: np.ndarray) -> np.ndarray:
        """Return the masks of sets: float32 (len(set_index), F), 0 = ablated."""
        return (~self.sets[set_index]).astype(np.float32)

    def rows(
        self, image_classes: np.ndarray, others: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ablated forward rows of a batch of images.

        Each checked class's tagged set on the images of that class and on
        the images that count for ``drop_others``; each random draw on the
        class's own images.

        Args:
            image_classes: int (b,): each image's class.
            others: bool (b,): the image counts for other classes'
                ``drop_others``.

        Returns:
            (image index, set index): int64 (R,) each; a row runs the image
            with the set ablated.
        """
        own = np.asarray(image_classes)[:, None] == self.checked[None, :]
        image, j = np.nonzero(own | np.asarray(others, bool)[:, None])
        tagged = (image, 1 + j)
        image, j = np.nonzero(own & self.random_ok[None, :])
        n = len(self.checked)
        drawn = (
            np.repeat(image, self.draws),
            (1 + n + j[:, None] * self.draws + np.arange(self.draws)).ravel(),
        )
        return (
            np.concatenate([tagged[0], drawn[0]]).astype(np.int64),
            np.concatenate([tagged[1], drawn[1]]).astype(np.int64),
        )


# -------------------------------------------------------------------- drops


def own_class_scores(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Return each image's scores for its own class.

    Args:
        outputs: float (n, n_outputs): the network's outputs.
        targets: int (n,): the output index of each image's class.

    Returns:
        float64 (n, 3), columns :data:`MEASURES`: p (the probability of the
        class), log p (natural log, p clipped at :data:`LOG_EPSILON`), and 1.0
        where the top-1 output is the class (the first of equal maxima).
    """
    probabilities = as_probabilities(outputs)
    rows = np.arange(len(targets))
    p = probabilities[rows, targets]
    correct = probabilities.argmax(axis=1) == targets
    return np.stack(
        [p, np.log(np.maximum(p, LOG_EPSILON)), correct.astype(np.float64)], axis=1
    )


class DropSums:
    """Sums of the per-image drops, per class and ablation set.

    Args:
        plan: the check's :class:`AblationPlan`.
        n_classes: all classes (the sums are indexed by class).
    """

    def __init__(self, plan: AblationPlan, n_classes: int) -> None:
        self.plan = plan
        self.tagged = np.zeros((n_classes, len(MEASURES)))
        self.tagged_n = np.zeros(n_classes, np.int64)
        self.others = np.zeros((n_classes, len(MEASURES)))
        self.others_n = np.zeros(n_classes, np.int64)
        self.random = np.zeros((n_classes, plan.draws, len(MEASURES)))
        self.random_n = np.zeros((n_classes, plan.draws), np.int64)

    def add(
        self, set_index: np.ndarray, image_classes: np.ndarray, drops: np.ndarray
    ) -> None:
        """Add forward rows' drops (unablated score - ablated score).

        Args:
            set_index: int (R,): the set each row ablated (not 0).
            image_classes: int (R,): the class of each row's image.
            drops: float (R, 3): the rows' drops, columns :data:`MEASURES`.
        """
        owner = self.plan.set_class[set_index]
        draw = self.plan.set_draw[set_index]
        own = owner == image_classes
        for sums, counts, rows in (
            (self.tagged, self.tagged_n, own & (draw < 0)),
            (self.others, self.others_n, ~own),
        ):
            np.add.at(sums, owner[rows], drops[rows])
            np.add.at(counts, owner[rows], 1)
        rows = draw >= 0
        np.add.at(self.random, (owner[rows], draw[rows]), drops[rows])
        np.add.at(self.random_n, (owner[rows], draw[rows]), 1)

    def means(self) -> dict[str, np.ndarray]:
        """Return the mean drops: NaN where no row counted.

        Returns:
            {"tagged": (n_classes, 3), "others": (n_classes, 3), "random":
            (n_classes, 3), the mean over draws, "random_draws": (n_classes,
            draws, 3)}; columns :data:`MEASURES`.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = self.random / self.random_n[..., None]
            return {
                "tagged": self.tagged / self.tagged_n[:, None],
                "others": self.others / self.others_n[:, None],
                "random": draws.mean(axis=1),
                "random_draws": draws,
            }


def drop_variables(
    means: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    classes: Sequence[int],
    n_ablated: np.ndarray,
) -> dict[str, dict]:
    """Return the check's drop variables, dicts keyed by class name.

    Args:
        means: :meth:`DropSums.means`.
        class_names: every class name.
        classes: the classes reported (those with test images), in order.
        n_ablated: int (n_classes,): |T_c|.

    Returns:
        {"drop_tagged", "drop_random", "drop_others", "n_ablated",
        "acc_drop_tagged", "acc_drop_random", "logp_drop_tagged",
        "logp_drop_random": {class: float (int for n_ablated)},
        "drop_random_draws", "acc_drop_random_draws", "logp_drop_random_draws":
        {class: float64 (draws,)}}.
    """
    column = {"drop": 0, "logp_drop": 1, "acc_drop": 2}  # :data:`MEASURES`

    def by_class(values: Sequence) -> dict:
        return {class_names[c]: values[c] for c in classes}

    def means_of(kind: str, name: str) -> dict:
        return by_class(means[kind][:, column[name]].tolist())

    return {
        "drop_tagged": means_of("tagged", "drop"),
        "drop_random": means_of("random", "drop"),
        "drop_others": means_of("others", "drop"),
        "n_ablated": by_class(n_ablated.tolist()),
        **{f"{name}_{kind}": means_of(kind, name)
           for name in ("acc_drop", "logp_drop") for kind in ("tagged", "random")},
        **{f"{name}_random_draws": by_class(list(means["random_draws"][..., i]))
           for name, i in column.items()},
    }  # fmt: skip


# -------------------------------------------------------- hit-rate baselines


def chance_rates(n_classes: int, m_values: Sequence[int] = M_VALUES) -> dict:
    """Return the hit rate of a random ranking: {m: min(1, m / n_classes)}."""
    return {m: min(1.0, m / n_classes) for m in m_values}


class HitCounts:
    """Hits of the rule's rankings and of shuffled tags, summed over batches.

    Args:
        class_names: the class names, index ``c`` for class ``c``.
        draws: shuffles of the class labels.
        seed: their seed (see :func:`shuffles`).
        m_values: the depths m.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        draws: int,
        seed: int,
        m_values: Sequence[int] = M_VALUES,
    ) -> None:
        self.class_names = list(class_names)
        self.m_values = list(m_values)
        self.permutations = shuffles(len(class_names), draws, seed)
        self.images = 0
        self.real = {scope: np.zeros(len(m_values), np.int64) for scope in SCOPES}
        self.shuffled = {
            scope: np.zeros((draws, len(m_values)), np.int64) for scope in SCOPES
        }

    def _hits(self, counts: np.ndarray, top1: Sequence[str]) -> np.ndarray:
        ranked = rankings(counts, self.class_names, max(self.m_values))
        return hit_matrix(top1, ranked, self.m_values).sum(axis=0)

    def add(self, counts: Mapping[str, np.ndarray], top1: Sequence[str]) -> None:
        """Add a batch of images.

        Args:
            counts: {scope: int (b, n_classes)}: the tag counts of the rule
                (:func:`filtag.evaluation.tag_counts`), all layers and last.
            top1: the network's top-1 output name of each image.
        """
        self.images += len(top1)
        for scope in SCOPES:
            self.real[scope] += self._hits(counts[scope], top1)
            for d, permutation in enumerate(self.permutations):
                shuffled = np.empty_like(counts[scope])
                shuffled[:, permutation] = counts[scope]  # tag c becomes tag pi(c)
                self.shuffled[scope][d] += self._hits(shuffled, top1)

    def rates(self) -> dict[str, dict]:
        """Return the hit rates, pooled over the images added.

        Returns:
            {"hit_rate": {scope: {m: rate}}, "hit_shuffled": {scope: {m: mean
            rate over the shuffles}}, "hit_shuffled_draws": {scope: {m:
            float64 (draws,)}}}; NaN without images.
        """
        n = self.images or math.nan
        return {
            "hit_rate": {
                scope: dict(zip(self.m_values, (hits / n).tolist(), strict=True))
                for scope, hits in self.real.items()
            },
            "hit_shuffled": {
                scope: dict(
                    zip(self.m_values, (hits.mean(axis=0) / n).tolist(), strict=True)
                )
                for scope, hits in self.shuffled.items()
            },
            "hit_shuffled_draws": {
                scope: {m: hits[:, i] / n for i, m in enumerate(self.m_values)}
                for scope, hits in self.shuffled.items()
            },
        }


def shuffles(n_classes: int, draws: int, seed: int) -> np.ndarray:
    """Return ``draws`` permutations of the classes, int64 (draws, n_classes).

    Seeded by ``(seed, 2**32 - 1)``, apart from every class's random draws.
    """
    rng = np.random.default_rng([seed, 2**32 - 1])
    return np.stack([rng.permutation(n_classes) for _ in range(draws)]).reshape(
        draws, n_classes
    )


# -------------------------------------------------------------- specificity


def normalised_entropy(class_acts: np.ndarray) -> np.ndarray:
    """Return each filter's normalised entropy over the classes.

    With a_c the filter's step-1 activation for class c (>= 0) and p_c = a_c /
    sum a, the entropy -sum p_c log p_c divided by log(classes): 0 when one
    class alone activates the filter, 1 when every class does alike. Classes
    without activations (NaN rows) are left out.

    Args:
        class_acts: float (n_classes, n_filters): one layer's class activations.

    Returns:
        float64 (n_filters,); NaN where every activation is 0 or fewer than 2
        classes have activations.
    """
    acts = np.asarray(class_acts, np.float64)
    acts = acts[~np.isnan(acts).any(axis=1)]
    if len(acts) < 2:
        return np.full(class_acts.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = acts / acts.sum(axis=0)
        terms = np.where(p > 0, -p * np.log(p), 0.0)
        entropy = terms.sum(axis=0) / math.log(len(acts))
    entropy[~np.isfinite(p).all(axis=0)] = np.nan
    return entropy


def specificity(
    class_acts: Sequence[np.ndarray], matrices: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return, per layer and filter, its number of tags and its entropy.

    Args:
        class_acts: per layer, float (n_classes, filters): step 1's class
            activations.
        matrices: per layer, bool (filters, n_classes): one rule's tags
            (:func:`tag_matrices`).

    Returns:
        (n_tags, entropy): per layer, int64 (filters,) and float64 (filters,)
        (:func:`normalised_entropy`).

    Raises:
        FiltagError: the tags and the activations differ in layers or filters.
    """
    filters = [a.shape[1] for a in class_acts]
    if filters != [m.shape[0] for m in matrices]:
        raise FiltagError(
            f"specificity: the step-1 activations have {filters} filters per layer "
            f"and the tags {[m.shape[0] for m in matrices]}; use the step-1 file of "
            "the step-2 run."
        )
    n_tags = [m.sum(axis=1).astype(np.int64) for m in matrices]
    return n_tags, [normalised_entropy(a) for a in class_acts]


# -------------------------------------------------------------------- text


def _number(value: float, digits: int = 3) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def class_order(variables: Mapping[str, Mapping]) -> list[str]:
    """Return the classes by drop_tagged - drop_random, largest first, NaN last."""
    gap = {
        name: variables["drop_tagged"][name] - variables["drop_random"][name]
        for name in variables["drop_tagged"]
    }
    return sorted(gap, key=lambda name: (math.isnan(gap[name]), -gap[name]))


def matters(variables: Mapping[str, Mapping], name: str) -> bool:
    """Tell whether class ``name``'s tagged filters cost its log p_c more than
    every random draw of the same size did (False when either is NaN)."""
    tagged = variables["logp_drop_tagged"][name]
    draws = np.asarray(variables["logp_drop_random_draws"][name])
    return bool(
        not math.isnan(tagged)
        and len(draws)
        and not np.isnan(draws).any()
        and tagged > draws.max()
    )


def class_table(variables: Mapping[str, Mapping], tablefmt: str = "github") -> str:
    """Return the per-class table, sorted by drop_tagged - drop_random.

    Args:
        variables: :func:`drop_variables`.
        tablefmt: a tabulate format.
    """
    from tabulate import tabulate

    headers = [
        "class", "n_ablated", "drop_tagged", "drop_random", "random min-max",
        "drop_others", "logp_drop_tagged", "logp_drop_random", "acc_drop_tagged",
        "acc_drop_random", "matters",
    ]  # fmt: skip
    rows = []
    for name in class_order(variables):
        draws = np.asarray(variables["drop_random_draws"][name])
        spread = (
            f"[{_number(draws.min())}, {_number(draws.max())}]"
            if len(draws) and not np.isnan(draws).any()
            else "nan"
        )
        rows.append(
            [
                name,
                variables["n_ablated"][name],
                _number(variables["drop_tagged"][name]),
                _number(variables["drop_random"][name]),
                spread,
                _number(variables["drop_others"][name]),
                _number(variables["logp_drop_tagged"][name]),
                _number(variables["logp_drop_random"][name]),
                _number(variables["acc_drop_tagged"][name]),
                _number(variables["acc_drop_random"][name]),
                "yes" if matters(variables, name) else "no",
            ]
        )
    return tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True)


def summary_line(variables: Mapping[str, Mapping], draws: int) -> str:
    """Return one line: for how many classes the tagged filters matter.

    A class counts when its tagged filters' drop of log p_c is larger than
    that of each of the ``draws`` random sets (:func:`matters`); the mean
    drops of p_c and log p_c over the classes with both values follow.
    """
    names = list(variables["drop_tagged"])
    valid = [
        name
        for name in names
        if not math.isnan(variables["drop_tagged"][name])
        and not math.isnan(variables["drop_random"][name])
    ]
    count = sum(matters(variables, name) for name in valid)
    left = len(names) - len(valid)
    skipped = f" ({left} with NaN drops: see the warnings)" if left else ""

    def mean(name: str) -> str:
        values = [variables[name][c] for c in valid]
        return _number(float(np.mean(values)) if values else math.nan)

    return (
        f"tagged filters matter for {count} of {len(names)} classes{skipped} "
        f"(their drop of log p_c beats all {draws} random draws): mean drop of "
        f"p_c {mean('drop_tagged')} vs {mean('drop_random')} for random filters, "
        f"of log p_c {mean('logp_drop_tagged')} vs {mean('logp_drop_random')}"
    )


def hit_table(
    hits: Mapping[str, Mapping], chance: Mapping[int, float], tablefmt: str = "github"
) -> str:
    """Return the rule's hit rates (%) beside shuffled tags and chance.

    Args:
        hits: :meth:`HitCounts.rates`.
        chance: :func:`chance_rates`.
        tablefmt: a tabulate format.
    """
    from tabulate import tabulate

    m_values = sorted(chance)
    rows = []
    for scope in SCOPES:
        where = "all layers" if scope == "all" else "last layer"
        for label, rates in (
            ("tags", hits["hit_rate"][scope]),
            ("shuffled tags (mean)", hits["hit_shuffled"][scope]),
        ):
            rows.append(
                [f"{label}, {where}", *(_number(100 * rates[m], 1) for m in m_values)]
            )
    rows.append(["chance", *(_number(100 * chance[m], 1) for m in m_values)])
    return tabulate(
        rows, ["hit rate %", *(f"m={m}" for m in m_values)], tablefmt=tablefmt,
        disable_numparse=True,
    )  # fmt: skip


def specificity_table(
    n_tags: Sequence[np.ndarray],
    entropy: Sequence[np.ndarray],
    layer_names: Sequence[str],
    tablefmt: str = "github",
) -> str:
    """Return per layer the filters with and without tags and their mean entropy."""
    from tabulate import tabulate

    rows = []
    for name, tags, values in zip(layer_names, n_tags, entropy, strict=True):
        tagged = tags > 0
        rows.append(
            [
                name,
                int(tagged.sum()),
                _mean_text(values[tagged]),
                int((~tagged).sum()),
                _mean_text(values[~tagged]),
            ]
        )
    headers = [
        "layer", "tagged filters", "mean entropy", "untagged filters", "mean entropy",
    ]  # fmt: skip
    return tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True)


def _mean_text(values: np.ndarray) -> str:
    values = values[~np.isnan(values)]
    return _number(float(values.mean())) if len(values) else "-"
