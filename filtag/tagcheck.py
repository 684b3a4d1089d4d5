"""The tag check run (``filtag check``, ``tagcheck.py``): ablate, measure, write.

:func:`check` loads step 2's file with step 1's network, rebuilds step 1's
test split, and reads the test images once, batch after batch. Per batch:

1. step 1's probe gives the filter activations and the outputs: the rule's tag
   counts, rankings and hit rates, real and with shuffled tags
   (:class:`filtag.ablation.HitCounts`);
2. the network with all masks 1 gives each image's unablated scores;
3. the forward rows of :meth:`filtag.ablation.AblationPlan.rows`, one mask
   row per image, run through ONE traced graph
   (:class:`filtag.keras_ablation.ChannelAblator`) in chunks of
   ``batch_size``, and their drops are summed (:class:`filtag.ablation.DropSums`).

The computation is in :mod:`filtag.ablation` (numpy) and
:mod:`filtag.keras_ablation` (the network); this module reads and writes the
files: ``<id>-TC-<network>-vars.pkl`` (+ names, info), ``-results.txt``,
``-check.html``, the logs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from filtag import ablation, evaluation, pages, params
from filtag.ablation_plots import check_page
from filtag.artifacts import (
    Run,
    atomic_write_text,
    load_step_vars,
    reserve_run,
    write_vars,
)
from filtag.errors import ArtifactError, FiltagError
from filtag.logs import progress, run_logs
from filtag.provenance import now_utc, package_versions
from filtag.results import CheckResult, result_of
from filtag.steps import TagsRun, _step1_split, load_tags_run

logger = logging.getLogger(__name__)


def check(
    filtags_file: str | Path | None = None,
    *,
    kind: str = "k",
    value: int = 5,
    check_layers: str = "last",
    random_draws: int = 10,
    others_per_class: int | None = None,
    images_dir: str | Path | None = None,
    split: float | None = None,
    seed_rn: int | None = None,
    batch_size: int = 32,
    save_dir: str | Path = "results",
    time_delta: float = 0,
) -> CheckResult:
    """Check whether each class's tagged filters matter for it, by ablation.

    See :mod:`filtag.ablation` for the exact definitions.

    Args:
        filtags_file: step 2's ``-vars.pkl``.
        kind, value: the rule whose tags are checked (one of step 2's values).
        check_layers: ``"last"``, ``"all"`` or a comma list of step 1's layer
            names: the layers whose tagged filters are ablated (together).
        random_draws: random sets per class, and shuffles of the tags.
        others_per_class: ``drop_others`` counts at most the first this many
            test images of each other class (None: all).
        images_dir, split, seed_rn: None: step 1's (the split must be step
            1's); ``seed_rn`` seeds the random draws too.
        batch_size, save_dir, time_delta: see :data:`filtag.params.PARAMS`.

    Returns:
        The run; ``path`` is its ``-vars.pkl``, ``text`` the results as
        printed, ``page`` the figures.

    Raises:
        FiltagError: bad input (one line saying what to do).
    """
    v = params.checked(
        {"filtags_file": filtags_file, "kind": kind, "value": value,
         "check_layers": check_layers, "random_draws": random_draws,
         "others_per_class": others_per_class, "images_dir": images_dir,
         "split": split, "seed_rn": seed_rn, "batch_size": batch_size,
         "save_dir": save_dir, "time_delta": time_delta},
        required=["filtags_file", "value"],
    )  # fmt: skip
    source = load_tags_run(v["filtags_file"], None, v["batch_size"])
    class_names = source.meta2["class_names"]
    matrices = ablation.tag_matrices(_rule_tags(source, v["kind"], v["value"]),
                                     class_names)  # fmt: skip
    layer_names = source.meta1["layer_names"]
    chosen = ablation.choose_layers(v["check_layers"], layer_names)
    class_acts = _step1_activations(source)
    folder, split_files = _step1_split(
        source, v["images_dir"], v["split"], v["seed_rn"], v["filtags_file"]
    )
    seed = source.meta1["seed_rn"] if v["seed_rn"] is None else v["seed_rn"]
    run = reserve_run(v["save_dir"], "TC", source.meta2["network"], v["time_delta"])
    with run_logs(run):
        logger.debug("tag check run %s: inputs %s", run.prefix, v)
        paths, labels = split_files.files("test")
        targets = _output_index(class_names, source.output_names)
        tagged = ablation.tag_sets(matrices, chosen)
        reported = sorted(set(labels.tolist()))
        columns = [layer_names[a] for a in chosen]
        rule = f"{v['kind']} = {v['value']}"
        checked = _checked_classes(reported, tagged, targets, class_names, rule,
                                   columns)  # fmt: skip
        filters = [source.filters_per_layer[a] for a in chosen]
        plan = ablation.AblationPlan(tagged, filters, checked, v["random_draws"], seed)
        _warn_without_draws(plan, class_names)
        evaluation.warn_mean_fallback(v["kind"], [v["value"]], source.filters_per_layer)
        measure = _Measure(source, plan, matrices, columns, v, seed)
        measure.run([folder / p for p in paths], labels, targets)
        variables = {
            **ablation.drop_variables(
                measure.sums.means(), class_names, reported, tagged.sum(axis=1)
            ),
            **measure.hits.rates(),
            "hit_chance": ablation.chance_rates(len(class_names)),
        }
        n_tags, entropy = ablation.specificity(class_acts, matrices)
        variables["filter_tags"], variables["filter_entropy"] = n_tags, entropy
        variables["meta"] = _meta(run, source, v, chosen, seed, folder, measure)
        summary = ablation.summary_line(variables, v["random_draws"])
        text = _results_text(variables, summary, n_tags, entropy, layer_names)
        atomic_write_text(run.path("results.txt"), text + "\n")
        page = run.path("check.html")
        pages.write_page(
            page, *check_page(variables, layer_names, summary), plotly=True
        )
        header = f"filtag tag check (ablation), run {run.prefix}"
        write_vars(run.vars_path, variables, header)
        logger.info(
            "tag check (%s, layers %s): %d test images, %d forward rows in %.1f s; "
            "%s -> %s",
            rule, v["check_layers"], measure.images, measure.rows, measure.seconds,
            summary, run.vars_path.name,
        )  # fmt: skip
    return result_of(
        CheckResult, run, run.vars_path, summary=summary, text=text, page=page
    )


def _rule_tags(source: TagsRun, kind: str, value: int) -> list:
    """Return the rule's tags, checked to be in the file and to fit step 1's layers.

    Raises:
        FiltagError: the value is not in the step-2 file.
        ArtifactError: the tags do not fit step 1's layers.
    """
    values = source.v2[f"filTags_{kind}"]
    if value not in values:
        raise FiltagError(
            f"--value {value} is not a {kind} value of {source.path}; choose among "
            f"{sorted(values)} or rerun step 2 with it in --k-q."
        )
    tags = values[value]
    if [len(layer) for layer in tags] != source.filters_per_layer:
        raise ArtifactError(
            f"{source.path} has tags for {[len(layer) for layer in tags]} filters "
            f"per layer but its step-1 run has {source.filters_per_layer}; rerun "
            "step 2 on that step-1 file."
        )
    return tags


def _step1_activations(source: TagsRun) -> list[np.ndarray]:
    """Return step 1's class activations per layer, float64 (n_classes, filters).

    Raises:
        FiltagError: step 1's file is gone or is not the step-2 run's.
    """
    path = Path(source.meta2.get("activations_file") or "")
    if not path.is_file():
        raise FiltagError(
            f"step 1's file {path} (named in {source.path}) is not there; the "
            "check needs its class activations: put it back where step 1 wrote it."
        )
    v1 = load_step_vars(path, "QFA", "step 1's file", ["labels_id"])
    classes = sorted(v1["labels_id"])
    missing = [i for i in classes if f"filter_act_{i}" not in v1]
    if len(classes) != len(source.meta2["class_names"]) or missing:
        raise ArtifactError(
            f"{path} has {len(classes)} classes ({len(missing)} without "
            f"filter_act_<i>) but {source.path} has "
            f"{len(source.meta2['class_names'])}; the files are from different runs."
        )
    return [
        np.stack([np.asarray(v1[f"filter_act_{i}"][a], np.float64) for i in classes])
        for a in range(len(source.filters_per_layer))
    ]


def _output_index(class_names: list[str], output_names: list[str]) -> np.ndarray:
    """Return each class's output index, int64 (n_classes,); -1: not an output."""
    index = {name: i for i, name in enumerate(output_names)}
    return np.array([index.get(name, -1) for name in class_names], np.int64)


def _checked_classes(
    reported: list[int],
    tagged: np.ndarray,
    targets: np.ndarray,
    class_names: list[str],
    rule: str,
    layers: list[str],
) -> list[int]:
    """Return the classes to ablate; warn about the others (their drops are NaN)."""
    checked = []
    for c in reported:
        if targets[c] < 0:
            logger.warning(
                "class %r is none of the network's outputs; its drops are NaN",
                class_names[c],
            )
        elif not tagged[c].any():
            logger.warning(
                "class %r has no filter tagged by %s in %s; its drops are NaN",
                class_names[c], rule, ", ".join(layers),
            )  # fmt: skip
        else:
            checked.append(c)
    return checked


def _warn_without_draws(plan: ablation.AblationPlan, class_names: list[str]) -> None:
    """Warn about the classes without random draws (their drop_random is NaN)."""
    for j in np.flatnonzero(~plan.random_ok):
        logger.warning(
            "class %r: a layer has fewer untagged than tagged filters, so no "
            "random set of the same size exists; its drop_random is NaN",
            class_names[plan.checked[j]],
        )


@dataclass
class _Measure:
    """The forward passes of a check, and what they add up to.

    Attributes:
        source: the step-2 run and step 1's network.
        plan: the ablation sets.
        matrices: the rule's tags, per layer bool (filters, n_classes).
        columns: the chosen layers' names (the mask columns, in order).
        v: the checked inputs.
        seed: the seed of the random draws and shuffles.
    """

    source: TagsRun
    plan: ablation.AblationPlan
    matrices: list[np.ndarray]
    columns: list[str]
    v: dict[str, Any]
    seed: int

    def __post_init__(self) -> None:
        net = self.source.network
        self.batch_size = self.v["batch_size"]
        self.probe = net.probe(self.batch_size)
        self.ablator = net.ablator(self.columns)
        n_classes = len(self.source.meta2["class_names"])
        self.sums = ablation.DropSums(self.plan, n_classes)
        self.hits = ablation.HitCounts(
            self.source.meta2["class_names"], self.v["random_draws"], self.seed
        )
        self.listed = 0
        self.images = 0
        self.rows = 0
        self.seconds = 0.0  # the whole loop: reading, probe, hit counts, ablation
        self.ablation_seconds = 0.0  # the masked network's forward rows alone

    def run(self, paths: list[Path], labels: np.ndarray, targets: np.ndarray) -> None:
        """Read the test images once and run every forward row.

        Args:
            paths: the test images, by class.
            labels: int (n,): their classes.
            targets: int (n_classes,): each class's output index (-1: none).
        """
        from filtag import data

        started = time.perf_counter()
        self.listed = len(paths)
        first = np.searchsorted(labels, labels)  # each class's first position
        within = np.arange(len(labels)) - first
        limit = self.v["others_per_class"]
        others = targets[labels] >= 0
        if limit is not None:
            others &= within < limit
        dataset = data.image_dataset(paths, self.source.network.spec, self.batch_size)
        with progress(len(paths)) as bar:
            for batch, index in dataset:
                images, index = batch.numpy(), index.numpy()
                acts, outputs = self.probe(images)
                counts = evaluation.tag_counts(
                    self.matrices,
                    self.probe.split_layers(acts),
                    self.v["kind"],
                    self.v["value"],
                    warn=False,
                )
                top1 = evaluation.top_predictions(outputs, self.source.output_names, 1)
                self.hits.add(dict(zip(ablation.SCOPES, counts, strict=True)),
                              [t[0][0] for t in top1])  # fmt: skip
                keep = targets[labels[index]] >= 0
                self._ablate(
                    images[keep], labels[index[keep]], others[index[keep]], targets
                )
                self.images += len(index)
                bar.update(len(index))
        self.seconds = time.perf_counter() - started

    def _ablate(
        self,
        images: np.ndarray,
        classes: np.ndarray,
        others: np.ndarray,
        targets: np.ndarray,
    ) -> None:
        """Run a batch's forward rows and add their drops."""
        if not len(images):
            return
        started = time.perf_counter()
        own = targets[classes]
        ones = np.ones((len(images), self.ablator.n_filters), np.float32)
        base = ablation.own_class_scores(self.ablator(images, ones), own)
        image, sets = self.plan.rows(classes, others)
        for start in range(0, len(image), self.batch_size):
            i = image[start : start + self.batch_size]
            s = sets[start : start + self.batch_size]
            outputs = self.ablator(images[i], self.plan.masks(s))
            drops = base[i] - ablation.own_class_scores(outputs, own[i])
            self.sums.add(s, classes[i], drops)
        self.rows += len(images) + len(image)
        self.ablation_seconds += time.perf_counter() - started


def _meta(
    run: Run,
    source: TagsRun,
    v: dict[str, Any],
    chosen: list[int],
    seed: int,
    folder: Path,
    measure: _Measure,
) -> dict[str, Any]:
    """Return the check's ``meta``: its inputs, what it read and ran, step 2's meta."""
    layer_names = source.meta1["layer_names"]
    return {
        "step": "TC",
        "run_id": run.run_id,
        "created_utc": now_utc(),
        "filtags_file": str(v["filtags_file"].resolve()),
        "network": source.meta2["network"],
        "class_names": source.meta2["class_names"],
        "kind": v["kind"],
        "value": v["value"],
        "layers_rule": v["check_layers"],
        "layers": [layer_names[a] for a in chosen],
        "filters_per_layer": [source.filters_per_layer[a] for a in chosen],
        "random_draws": v["random_draws"],
        "seed_rn": seed,
        "others_per_class": v["others_per_class"],
        "images_dir": str(folder.resolve()),
        "split": source.meta1["split"] if v["split"] is None else v["split"],
        "test_images": measure.listed,
        "images_read": measure.images,
        "forward_rows": measure.rows,
        "seconds": measure.seconds,
        "ablation_seconds": measure.ablation_seconds,
        "log_epsilon": ablation.LOG_EPSILON,
        "m": list(ablation.M_VALUES),
        "batch_size": v["batch_size"],
        "versions": package_versions(),
        "step2": source.meta2,
    }


def _results_text(
    variables: dict[str, Any],
    summary: str,
    n_tags: list[np.ndarray],
    entropy: list[np.ndarray],
    layer_names: list[str],
) -> str:
    """Return the ``-results.txt``: what was done, the table, summary, baselines."""
    meta = variables["meta"]
    return "\n".join(
        [
            f"Tag check of {meta['network']} by ablation: rule {meta['kind']} = "
            f"{meta['value']}, layers {', '.join(meta['layers'])} "
            f"({sum(meta['filters_per_layer'])} filters); {meta['images_read']} "
            f"test images, {meta['random_draws']} random draws (seed "
            f"{meta['seed_rn']}).",
            "",
            "Drops of the network's probability p_c of each class (and of log p_c, "
            "and of the top-1 accuracy) when the class's tagged filters are switched "
            "off, on the class's test images; random: as many untagged filters per "
            "layer; others: on the other classes' images, for their own class. "
            "Sorted by drop_tagged - drop_random.",
            "",
            ablation.class_table(variables),
            "",
            summary,
            "",
            f"Hit rates of {meta['kind']} = {meta['value']} beside shuffled tags "
            f"({meta['random_draws']} permutations of the class labels) and chance:",
            "",
            ablation.hit_table(variables, variables["hit_chance"]),
            "",
            "Specificity: normalised entropy of the filters' step-1 class "
            "activations (0: one class only; 1: every class alike):",
            "",
            ablation.specificity_table(n_tags, entropy, layer_names),
        ]
    )
