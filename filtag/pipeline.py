"""The steps end to end: read the inputs, run the stages, write the run's files.

Each ``stepN`` function takes the validated command-line values of its script
and returns the path of the ``-vars.pkl`` it wrote. The stages it calls
(:mod:`filtag.activations`, ...) do no file I/O of their own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from filtag import __version__
from filtag.artifacts import (
    Run,
    atomic_write_text,
    load_step_vars,
    load_vars,
    reserve_run,
    write_vars,
)
from filtag.cli import run_logs
from filtag.errors import ArtifactError, FiltagError

logger = logging.getLogger(__name__)


def package_versions() -> dict[str, str]:
    """Return the versions of Python and the packages that shape the results."""
    versions = {"python": platform.python_version(), "filtag": __version__}
    for name in ("tensorflow", "keras", "numpy", "pillow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _now() -> str:
    """Return the current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_digest(train: list[list[str]], test: list[list[str]]) -> str:
    """Return the SHA-256 of a split's file lists, to recognise the same split later."""
    return hashlib.sha256(
        json.dumps([train, test]).encode("utf-8", "surrogateescape")
    ).hexdigest()


def step1(args: argparse.Namespace) -> Path:
    """Step 1: per class, the mean scaled activation of every selected filter.

    Args:
        args: network, weights, images_dir, save_dir, split, seed_rn,
            time_delta, batch_size, preprocess, interpolation, class_names,
            layers (see :data:`filtag.cli.FLAGS`).

    Returns:
        The ``-vars.pkl`` written.
    """
    from filtag import activations, data, labels, models

    classes = data.list_classes(args.images_dir)
    model = models.load_network(args.network, args.weights)
    layers = models.select_layers(model, args.layers)
    spec = models.image_spec(model, args.interpolation)
    preprocess = models.resolve_preprocess(args.preprocess, args.network)
    class_names = labels.output_class_names(
        int(model.output_shape[-1]), classes, args.class_names
    )
    probe = activations.FilterProbe(
        model, layers, models.preprocess_function(preprocess)
    )

    run = reserve_run(
        args.save_dir, "QFA", models.network_name(args.network), args.time_delta
    )
    with run_logs(run):
        logger.info("step 1 run %s: %s", run.prefix, vars(args))
        split = data.split_images(args.images_dir, args.split, args.seed_rn)
        logger.info(
            "%d classes, %d train and %d test images; %d layers, %d filters",
            len(split.classes),
            sum(map(len, split.train)),
            sum(map(len, split.test)),
            len(layers),
            sum(probe.filters_per_layer),
        )
        paths, image_labels = split.files("train")
        dataset = data.image_dataset(
            [args.images_dir / p for p in paths], spec, args.batch_size
        )
        with logging_redirect_tqdm(), tqdm(total=len(paths), unit="img") as bar:
            sums, counts = activations.class_sums(
                probe, dataset, image_labels, len(split.classes), bar
            )
        expected = np.bincount(image_labels, minlength=len(split.classes))
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts[:, None]
        for index in np.flatnonzero(counts == 0):
            logger.warning(
                "class %r has no readable train image; its filter activations are NaN",
                split.classes[index],
            )
        skipped = int((expected - counts).sum())
        logger.info(
            "read %d train images; skipped %d broken and %d non-image files",
            int(counts.sum()),
            skipped,
            len(split.rejected),
        )
        meta = {
            "step": "QFA",
            "run_id": run.run_id,
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "network": models.network_name(args.network),
            "model_path": str(Path(args.network).resolve())
            if models.is_model_file(args.network)
            else None,
            "model_sha256": file_digest(Path(args.network))
            if models.is_model_file(args.network)
            else None,
            "weights": args.weights,
            "layers_rule": args.layers,
            "layer_names": [layer.name for layer in layers],
            "filters_per_layer": list(probe.filters_per_layer),
            "image_size": [spec.height, spec.width],
            "color_mode": spec.color_mode,
            "preprocess": preprocess,
            "interpolation": spec.interpolation,
            "images_dir": str(args.images_dir.resolve()),
            "split": args.split,
            "seed_rn": args.seed_rn,
            "split_sha256": split_digest(split.train, split.test),
            "images_per_class": {
                name: int(n) for name, n in zip(split.classes, counts, strict=True)
            },
            "skipped_broken": skipped,
            "skipped_not_images": dict(split.rejected),
            "class_names": class_names,
            "batch_size": args.batch_size,
            "versions": package_versions(),
        }
        variables: dict[str, Any] = {
            "labels_id": dict(enumerate(split.classes)),
            "train_filenames": paths,
            "test_filenames": split.files("test")[0],
        }
        for index, row in enumerate(means):
            variables[f"filter_act_{index}"] = probe.split_layers(row)
        variables["meta"] = meta
        header = f"filtag step 1 (filter activations), run {run.prefix}"
        return write_vars(run.vars_path, variables, header)


def _previous_meta(meta: dict[str, Any], key: str, flag: str, path: Path) -> dict:
    """Return the earlier step's meta stored under ``key``, or a clear error."""
    earlier = meta.get(key)
    if not isinstance(earlier, dict):
        raise ArtifactError(
            f"{flag} {path} carries no {key} meta (it was made from a file of the "
            f"original FilTag scripts); rerun the earlier steps with filtag."
        )
    return earlier


def _network_from_file(path: Path, tag: str) -> str:
    """Guess the network name from a file name ``<id>-<tag>-<network>-vars.pkl``."""
    match = re.search(rf"-{tag}-(.+)-vars\.pkl$", path.name)
    return match.group(1) if match else path.name.removesuffix(".pkl")


def step2(args: argparse.Namespace) -> Path:
    """Step 2: tag each filter with the classes whose activations rank it highest.

    Args:
        args: activations_file, k_q, save_dir, time_delta.

    Returns:
        The ``-vars.pkl`` written, holding filTags_k, filTags_q and meta.
    """
    from filtag import tagging

    v = load_step_vars(
        args.activations_file, "QFA", "--activations-file", ["labels_id"]
    )
    labels_id = v["labels_id"]
    class_names = [labels_id[i] for i in sorted(labels_id)]
    missing = [
        f"filter_act_{i}" for i in sorted(labels_id) if f"filter_act_{i}" not in v
    ]
    if missing:
        raise ArtifactError(
            f"--activations-file {args.activations_file} lacks "
            f"{', '.join(missing[:3])}; pass a complete step-1 file."
        )
    n_layers = len(v["filter_act_0"])
    class_acts = [
        np.stack(
            [np.asarray(v[f"filter_act_{i}"][a], np.float64) for i in sorted(labels_id)]
        )
        for a in range(n_layers)
    ]
    meta1 = v.get("meta")
    network = (
        meta1["network"] if meta1 else _network_from_file(args.activations_file, "QFA")
    )
    run = reserve_run(args.save_dir, "TF", network, args.time_delta)
    with run_logs(run):
        logger.info("step 2 run %s: %s", run.prefix, vars(args))
        filtags_k, filtags_q = tagging.filter_tags(
            class_acts, class_names, args.k_q, args.k_q
        )
        meta = {
            "step": "TF",
            "run_id": run.run_id,
            "created_utc": _now(),
            "activations_file": str(args.activations_file.resolve()),
            "k_q": list(args.k_q),
            "network": network,
            "class_names": class_names,
            "filters_per_layer": [a.shape[1] for a in class_acts],
            "versions": package_versions(),
            "step1": meta1,
        }
        variables = {"filTags_k": filtags_k, "filTags_q": filtags_q, "meta": meta}
        header = f"filtag step 2 (filter tags), run {run.prefix}"
        return write_vars(run.vars_path, variables, header)


def _check_same_network(
    meta1: dict[str, Any], model_path: str | None, flag: str
) -> None:
    """Refuse a model file that changed since step 1 read it."""
    expected = meta1.get("model_sha256")
    if model_path and expected and file_digest(Path(model_path)) != expected:
        raise FiltagError(
            f"the model file {model_path} changed since step 1 ({flag} names that "
            "run); rerun step 1 with the current model."
        )


def _stacked_tags(
    filtags: dict, values: list[int], class_index: dict[str, int], filters: list[int]
) -> dict[int, np.ndarray]:
    """Return {value: float32 (total filters, n_classes)} tag matrices of step 2's tags.

    Raises:
        ArtifactError: the tags do not fit the layers of step 1.
    """
    from filtag import evaluation

    stacked = {}
    for value in values:
        layers = filtags[value]
        if [len(layer) for layer in layers] != filters:
            raise ArtifactError(
                f"step 2's tags have {[len(layer) for layer in layers]} filters per "
                f"layer but step 1's layers have {filters}; the files are from "
                "different runs."
            )
        matrices = [evaluation.tag_matrix(layer, class_index) for layer in layers]
        stacked[value] = evaluation.stack_tags(matrices)
    return stacked


def step3(args: argparse.Namespace) -> Path:
    """Step 3: rank each test image's classes by the tags of its active filters.

    One forward pass per test image gives the network's prediction and the
    filter activations; the rankings are counted for every k and q value. Each
    class's results are written as soon as its images are done, so memory holds
    one class at a time.

    Args:
        args: filtags_file, k_q, images_dir, split, seed_rn, save_dir,
            time_delta, batch_size, classes (None: step 1's values, all classes).

    Returns:
        The index ``-vars.pkl`` written (eval_files, k_q, classes, meta).
    """
    from filtag import activations, data, evaluation, models

    v2 = load_step_vars(
        args.filtags_file, "TF", "--filtags-file", ["filTags_k", "filTags_q", "meta"]
    )
    meta2 = v2["meta"]
    meta1 = _previous_meta(meta2, "step1", "--filtags-file", args.filtags_file)
    k_q = args.k_q or meta2["k_q"]
    absent = [value for value in k_q if value not in v2["filTags_k"]]
    if absent:
        raise FiltagError(
            f"--k-q {absent} not in {args.filtags_file} (it has k_q {meta2['k_q']}); "
            "choose among those or rerun step 2 with them."
        )
    images_dir = args.images_dir or Path(meta1["images_dir"])
    classes = data.list_classes(images_dir)
    if classes != meta2["class_names"]:
        raise FiltagError(
            f"--images-dir {images_dir} has other classes than step 1 read "
            f"({args.filtags_file}); pass the images folder step 1 read."
        )
    chosen = args.classes or classes
    unknown = [name for name in chosen if name not in classes]
    if unknown:
        raise FiltagError(
            f"--classes {unknown} are not classes of {images_dir}; choose among "
            f"{classes[:10]}{'...' if len(classes) > 10 else ''}."
        )
    _check_same_network(meta1, meta1["model_path"], "--filtags-file")
    model = models.load_network(
        meta1["model_path"] or meta1["network"], meta1["weights"]
    )
    layers = models.select_layers(model, ",".join(meta1["layer_names"]))
    spec = data.ImageSpec(
        *meta1["image_size"], meta1["color_mode"], meta1["interpolation"]
    )
    probe = activations.FilterProbe(
        model, layers, models.preprocess_function(meta1["preprocess"])
    )
    class_index = {name: i for i, name in enumerate(classes)}
    filters = meta1["filters_per_layer"]
    tags = {
        "k": _stacked_tags(v2["filTags_k"], k_q, class_index, filters),
        "q": _stacked_tags(v2["filTags_q"], k_q, class_index, filters),
    }
    split_args = (
        args.split or meta1["split"],
        meta1["seed_rn"] if args.seed_rn is None else args.seed_rn,
    )

    run = reserve_run(args.save_dir, "E", meta2["network"], args.time_delta)
    with run_logs(run):
        logger.info("step 3 run %s: %s", run.prefix, vars(args))
        split = data.split_images(images_dir, *split_args)
        if split_digest(split.train, split.test) != meta1["split_sha256"]:
            raise FiltagError(
                f"--images-dir {images_dir} with --split {split_args[0]} and --seed-rn "
                f"{split_args[1]} gives another train/test split than step 1 used "
                f"({args.filtags_file}); pass step 1's folder, split and seed."
            )
        results = [evaluation.ClassResults(name, k_q) for name in chosen]
        images = [
            (r, p)
            for r, name in enumerate(chosen)
            for p in split.test[class_index[name]]
        ]
        dataset = data.image_dataset(
            [images_dir / p for _, p in images], spec, args.batch_size
        )
        eval_files: list[str] = []
        evaluated = 0
        with logging_redirect_tqdm(), tqdm(total=len(images), unit="img") as bar:
            for batch, index in dataset:
                rows = [images[i][0] for i in index.numpy()]
                evaluated += len(rows)
                for i in index.numpy():
                    results[images[i][0]].files.append(images[i][1])
                evaluation.evaluate_batch(
                    probe, batch, rows, classes, meta1["class_names"], tags,
                    results, warn=not bar.n,
                )  # fmt: skip
                bar.update(int(index[-1]) + 1 - bar.n)
                eval_files += _write_done(results, run, class_index, up_to=rows[-1])
        eval_files += _write_done(results, run, class_index, up_to=len(results))
        logger.info("evaluated %d of %d test images", evaluated, len(images))
        meta = {
            "step": "E",
            "run_id": run.run_id,
            "created_utc": _now(),
            "filtags_file": str(args.filtags_file.resolve()),
            "k_q": list(k_q),
            "classes": list(chosen),
            "network": meta2["network"],
            "class_names": classes,
            "images_dir": str(images_dir.resolve()),
            "split": split_args[0],
            "seed_rn": split_args[1],
            "images_evaluated": evaluated,
            "images_skipped": len(images) - evaluated,
            "versions": package_versions(),
            "step2": meta2,
        }
        variables = {
            "eval_files": eval_files,
            "k_q": list(k_q),
            "classes": list(chosen),
            "meta": meta,
        }
        header = f"filtag step 3 (evaluation), run {run.prefix}"
        return write_vars(run.vars_path, variables, header)


def _write_done(
    results: list, run: Run, class_index: dict[str, int], up_to: int
) -> list[str]:
    """Write the class files of ``results[:up_to]`` not written yet; free them.

    Returns:
        The names of the files written, ``<prefix>-varsX.pkl``, X = class index.
    """
    written = []
    for row in range(up_to):
        result = results[row]
        if result is None:
            continue
        path = run.path(f"vars{class_index[result.name]}.pkl")
        header = f"filtag step 3, class {result.name}"
        write_vars(path, result.variables(), header, info=False)
        written.append(path.name)
        results[row] = None
    return written


#: Step 4's variants: the variable suffix, and the title of its tables.
HIT_VARIANTS = {
    "k": "k most active filters, all layers",
    "q": "q % most active filters, all layers",
    "k_ll": "k most active filters, last layer",
    "q_ll": "q % most active filters, last layer",
}


def _load_class_files(eval_file: Path, v3: dict[str, Any]) -> dict[str, dict]:
    """Load step 3's per-class files named in its index; return them by class name."""
    by_class = {}
    for name in v3["eval_files"]:
        variables = load_vars(eval_file.parent / name)
        (class_name,) = variables["class_images_dict"]
        by_class[class_name] = variables
    return by_class


def rate_tables(title: str, rates: dict[str, dict]) -> str:
    """Return one hit-rate table per variant (k, q, k_ll, q_ll) under ``title``.

    Args:
        title: what the rates are, e.g. "Total (pooled over all images)".
        rates: {variant: {value: {m: rate}}}.
    """
    from filtag.hitrates import rates_table

    return "\n".join(
        f"{title}, {what}: hit rate %\n{rates_table(rates[variant], variant[0])}\n"
        for variant, what in HIT_VARIANTS.items()
    )


def results_text(
    per_class: dict[str, dict], totals: dict[str, dict], means: dict[str, dict]
) -> str:
    """Return step 4's ``-results.txt``: the hit-rate tables, total first.

    Args:
        per_class: {variant: {class name: {value: {m: rate}}}}.
        totals: {variant: {value: {m: rate}}}, pooled over images.
        means: {variant: {value: {m: rate}}}, mean over classes.
    """
    parts = [
        rate_tables("Total (pooled over all images)", totals),
        rate_tables("Mean over classes", means),
    ]
    for name in per_class["k"]:
        by_variant = {variant: per_class[variant][name] for variant in HIT_VARIANTS}
        parts.append(rate_tables(f"Class {name}", by_variant))
    return "\n".join(parts)


def step4(args: argparse.Namespace) -> Path:
    """Step 4: how often the network's class is among the top m of the tag ranking.

    Args:
        args: eval_file, m, k_q, classes_img, save_dir, time_delta.

    Returns:
        The ``-vars.pkl`` written (hit_*, totalhit_*, meanhit_*, meta); the
        ``-results.txt`` beside it holds the tables.
    """
    from filtag import hitrates

    v3 = load_step_vars(
        args.eval_file, "E", "--eval-file", ["eval_files", "k_q", "classes", "meta"]
    )
    k_q = args.k_q or v3["k_q"]
    absent = [value for value in k_q if value not in v3["k_q"]]
    if absent:
        raise FiltagError(
            f"--k-q {absent} not in {args.eval_file} (it has k_q {v3['k_q']}); "
            "choose among those or rerun step 3 with them."
        )
    chosen = args.classes_img or v3["classes"]
    unknown = [name for name in chosen if name not in v3["classes"]]
    if unknown:
        raise FiltagError(
            f"--classes-img {unknown} were not evaluated in {args.eval_file}; choose "
            f"among {v3['classes'][:10]}{'...' if len(v3['classes']) > 10 else ''}."
        )
    by_class = _load_class_files(args.eval_file, v3)
    top1 = {name: [y[0][0] for y in by_class[name]["y"]] for name in chosen}
    run = reserve_run(args.save_dir, "HR", v3["meta"]["network"], args.time_delta)
    with run_logs(run):
        logger.info("step 4 run %s: %s", run.prefix, vars(args))
        per_class, totals, means = {}, {}, {}
        for variant in HIT_VARIANTS:
            rankings = {
                name: {value: by_class[name][f"y_{variant}"][value] for value in k_q}
                for name in chosen
            }
            per_class[variant], totals[variant], means[variant] = hitrates.hit_rates(
                top1, rankings, args.m
            )
        variables: dict[str, Any] = {}
        for prefix, source in (
            ("hit", per_class),
            ("totalhit", totals),
            ("meanhit", means),
        ):
            for variant in HIT_VARIANTS:
                variables[f"{prefix}_{variant}"] = source[variant]
        variables["meta"] = {
            "step": "HR",
            "run_id": run.run_id,
            "created_utc": _now(),
            "eval_file": str(args.eval_file.resolve()),
            "m": list(args.m),
            "k_q": list(k_q),
            "classes_img": list(chosen),
            "images": sum(len(top1[name]) for name in chosen),
            "network": v3["meta"]["network"],
            "versions": package_versions(),
            "step3": v3["meta"],
        }
        text = results_text(per_class, totals, means)
        atomic_write_text(run.path("results.txt"), text)
        print(rate_tables("Total (pooled over all images)", totals))
        header = f"filtag step 4 (hit rates), run {run.prefix}"
        return write_vars(run.vars_path, variables, header)
