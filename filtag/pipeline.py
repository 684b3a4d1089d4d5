"""The steps end to end: read the inputs, run the stages, write the run's files.

Each ``stepN`` function takes the validated command-line values of its script
and returns the path of the ``-vars.pkl`` it wrote. The stages it calls
(:mod:`filtag.activations`, ...) do no file I/O of their own.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import platform
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from filtag import __version__, export
from filtag.artifacts import (
    CLASS_FILE,
    Run,
    atomic_write_text,
    find_run,
    load_checkpoint,
    load_step_vars,
    load_vars,
    reserve_run,
    write_checkpoint,
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


def _start(args: argparse.Namespace, tag: str, network: str) -> tuple[Run, dict | None]:
    """Claim a new run, or take up the interrupted one ``args.resume`` names.

    Returns:
        (run, state): the saved state of a resumed run, None for a new run.
    """
    if getattr(args, "resume", None):
        run = find_run(args.save_dir, args.resume, tag)
        return run, load_checkpoint(run)
    return reserve_run(args.save_dir, tag, network, args.time_delta), None


def _check_resumable(state: dict | None, inputs: dict[str, Any], resume: str) -> None:
    """Refuse to resume a run whose inputs differ from the current ones."""
    if state is None:
        return
    for key, value in inputs.items():
        if state["inputs"].get(key) != value:
            raise FiltagError(
                f"--resume {resume}: {key} was {state['inputs'].get(key)!r} in the "
                f"interrupted run but is {value!r} now; pass the same inputs."
            )


def step1(args: argparse.Namespace) -> Path:
    """Step 1: per class, the mean scaled activation of every selected filter.

    The run saves a checkpoint each time a class is complete; ``--resume``
    continues an interrupted run from there, with the same result.

    Args:
        args: network, weights, images_dir, save_dir, split, seed_rn,
            time_delta, batch_size, preprocess, interpolation, class_names,
            layers, resume (see :data:`filtag.cli.FLAGS`).

    Returns:
        The ``-vars.pkl`` written.
    """
    from filtag import activations, data, labels, models

    classes = data.list_classes(args.images_dir)
    strategy = models.distribution()
    with strategy.scope():
        model = models.load_network(args.network, args.weights)
        if args.mixed_precision:
            model = models.mixed_precision(model)
    layers = models.select_layers(model, args.layers)
    spec = models.image_spec(model, args.interpolation)
    preprocess = models.resolve_preprocess(args.preprocess, args.network)
    class_names = labels.output_class_names(
        int(model.output_shape[-1]), classes, args.class_names
    )
    probe = activations.FilterProbe(
        model,
        layers,
        models.preprocess_function(preprocess),
        batch_size=args.batch_size,
        strategy=strategy,
    )
    model_file = Path(args.network) if models.is_model_file(args.network) else None

    run, state = _start(args, "QFA", models.network_name(args.network))
    with run_logs(run):
        logger.info("step 1 run %s: %s", run.prefix, vars(args))
        split = data.split_images(args.images_dir, args.split, args.seed_rn)
        inputs = {
            "step": "QFA",
            "network": models.network_name(args.network),
            "model_path": str(model_file.resolve()) if model_file else None,
            "model_sha256": file_digest(model_file) if model_file else None,
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
            "class_names": class_names,
            "batch_size": args.batch_size,
            "mixed_precision": args.mixed_precision,
        }
        _check_resumable(state, inputs, args.resume)
        logger.info(
            "%d classes, %d train and %d test images; %d layers, %d filters",
            len(split.classes),
            sum(map(len, split.train)),
            sum(map(len, split.test)),
            len(layers),
            sum(probe.filters_per_layer),
        )
        paths, image_labels = split.files("train")
        start = state["consumed"] if state else 0
        if state:
            logger.info("resuming after %d of %d train images", start, len(paths))
        dataset = data.image_dataset(
            [args.images_dir / p for p in paths[start:]], spec, args.batch_size, start
        )

        def checkpoint(sums: np.ndarray, counts: np.ndarray, consumed: int) -> None:
            write_checkpoint(
                run,
                {
                    "inputs": inputs,
                    "sums": sums,
                    "counts": counts,
                    "consumed": consumed,
                },
            )

        with (
            logging_redirect_tqdm(),
            tqdm(total=len(paths), initial=start, unit="img") as bar,
        ):
            sums, counts = activations.class_sums(
                probe,
                dataset,
                image_labels,
                len(split.classes),
                bar,
                start=(state["sums"], state["counts"]) if state else None,
                on_class_done=checkpoint,
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
            "read %d train images; skipped %d broken, %d non-image and %d hidden files",
            int(counts.sum()),
            skipped,
            len(split.rejected),
            len(split.hidden),
        )
        meta = {
            **inputs,
            "run_id": run.run_id,
            "created_utc": _now(),
            "images_per_class": {
                name: int(n) for name, n in zip(split.classes, counts, strict=True)
            },
            "skipped_broken": skipped,
            "skipped_not_images": dict(split.rejected),
            "skipped_hidden": len(split.hidden),
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
        write_vars(run.vars_path, variables, header)
        run.path("checkpoint.pkl").unlink(missing_ok=True)
        return run.vars_path


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
        args: activations_file, k_q, export, save_dir, time_delta.

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
        if args.export:
            export.write_exports(run.vars_path, variables)  # -tags.csv, -tags.json
        header = f"filtag step 2 (filter tags), run {run.prefix}"
        return write_vars(run.vars_path, variables, header)


def _check_same_network(meta1: dict[str, Any], flag: str) -> None:
    """Refuse a model file that changed since step 1 read it."""
    model_path, expected = meta1.get("model_path"), meta1.get("model_sha256")
    if model_path and expected and file_digest(Path(model_path)) != expected:
        raise FiltagError(
            f"the model file {model_path} changed since step 1 ({flag} names that "
            "run); rerun step 1 with the current model."
        )


def _stacked_tags(
    filtags: dict, values: list[int], class_index: dict[str, int], source: TagsRun
) -> dict[int, np.ndarray]:
    """Return {value: float32 (total filters, n_classes)} matrices of step 2's tags.

    Raises:
        ArtifactError: the tags do not fit the layers of step 1.
    """
    from filtag import evaluation

    filters = source.meta1["filters_per_layer"]
    stacked = {}
    for value in values:
        layers = filtags[value]
        if [len(layer) for layer in layers] != filters:
            raise ArtifactError(
                f"{source.path} has tags for {[len(layer) for layer in layers]} "
                f"filters per layer but its step-1 file "
                f"{source.meta2.get('activations_file')} has {filters}; the files "
                "are from different runs: rerun step 2 on that step-1 file."
            )
        matrices = [evaluation.tag_matrix(layer, class_index) for layer in layers]
        stacked[value] = evaluation.stack_tags(matrices)
    return stacked


@dataclass
class TagsRun:
    """What steps after step 2 need from a step-2 file and the network of step 1.

    Attributes:
        path: the step-2 file.
        v2: the step-2 variables (filTags_k, filTags_q, meta).
        meta1: step 1's meta.
        k_q: the k and q values chosen (all of step 2's by default).
        probe: the network's FilterProbe for step 1's layers and preprocessing.
        spec: how step 1 read images.
    """

    path: Path
    v2: dict[str, Any]
    meta1: dict[str, Any]
    k_q: list[int]
    probe: Any
    spec: Any

    @property
    def meta2(self) -> dict[str, Any]:
        return self.v2["meta"]

    def decoded(self, labels: list[str]) -> list[str]:
        """Return ``labels`` as a labdecode'd step-2 file names them (or unchanged)."""
        mapping = self.meta2.get("label_mapping") or {}
        return [mapping.get(label, label) for label in labels]

    @property
    def output_names(self) -> list[str]:
        """The names of the network's outputs, as the step-2 file names classes."""
        return self.decoded(self.meta1["class_names"])

    def tags(self, class_index: dict[str, int]) -> dict[str, dict[int, np.ndarray]]:
        """Return {kind: {value: stacked tag matrix}} for the chosen values."""
        return {
            kind: _stacked_tags(self.v2[f"filTags_{kind}"], self.k_q, class_index, self)
            for kind in ("k", "q")
        }


def load_tags_run(
    filtags_file: Path,
    k_q: list[int] | None,
    batch_size: int,
    mixed_precision: bool = False,
) -> TagsRun:
    """Load a step-2 file and rebuild step 1's network, layers and image reading.

    Raises:
        FiltagError: the file is not a filtag step-2 file, a value of ``k_q`` is
            not in it, or the model file changed since step 1.
    """
    from filtag import activations, data, models

    v2 = load_step_vars(
        filtags_file, "TF", "--filtags-file", ["filTags_k", "filTags_q"]
    )
    meta2 = _previous_meta(v2, "meta", "--filtags-file", filtags_file)
    meta1 = _previous_meta(meta2, "step1", "--filtags-file", filtags_file)
    k_q = k_q or meta2["k_q"]
    absent = [value for value in k_q if value not in v2["filTags_k"]]
    if absent:
        raise FiltagError(
            f"--k-q {absent} not in {filtags_file} (it has k_q {meta2['k_q']}); "
            "choose among those or rerun step 2 with them."
        )
    _check_same_network(meta1, "--filtags-file")
    strategy = models.distribution()
    with strategy.scope():
        model = models.load_network(
            meta1["model_path"] or meta1["network"], meta1["weights"]
        )
        if mixed_precision:
            model = models.mixed_precision(model)
    layers = models.select_layers(model, ",".join(meta1["layer_names"]))
    probe = activations.FilterProbe(
        model,
        layers,
        models.preprocess_function(meta1["preprocess"]),
        batch_size=batch_size,
        strategy=strategy,
    )
    spec = data.ImageSpec(
        *meta1["image_size"], meta1["color_mode"], meta1["interpolation"]
    )
    return TagsRun(filtags_file, v2, meta1, list(k_q), probe, spec)


def _step1_split(args: argparse.Namespace, source: TagsRun):
    """Rebuild step 1's split (images_dir, split, seed from args or step 1).

    Returns:
        (images_dir, split): the folder and its :class:`filtag.data.ImageSplit`.

    Raises:
        FiltagError: other classes, or another split, than step 1's.
    """
    from filtag import data

    meta1 = source.meta1
    images_dir = args.images_dir or Path(meta1["images_dir"])
    split_fraction = args.split or meta1["split"]
    seed = meta1["seed_rn"] if args.seed_rn is None else args.seed_rn
    if source.decoded(data.list_classes(images_dir)) != source.meta2["class_names"]:
        raise FiltagError(
            f"--images-dir {images_dir} has other classes than step 1 read "
            f"({args.filtags_file}); pass the images folder step 1 read."
        )
    split = data.split_images(images_dir, split_fraction, seed)
    if split_digest(split.train, split.test) != meta1["split_sha256"]:
        raise FiltagError(
            f"--images-dir {images_dir} with --split {split_fraction} and --seed-rn "
            f"{seed} gives another train/test split than step 1 used "
            f"({args.filtags_file}); pass step 1's folder, split and seed."
        )
    return images_dir, split


def _check_names(chosen: list[str], known: list[str], flag: str, where: object) -> None:
    """Refuse names in ``chosen`` that are not in ``known``."""
    unknown = [name for name in chosen if name not in known]
    if unknown:
        more = "..." if len(known) > 10 else ""
        raise FiltagError(
            f"{flag} {unknown} are not classes of {where}; choose among "
            f"{known[:10]}{more}."
        )


def step3(args: argparse.Namespace) -> Path:
    """Step 3: rank each test image's classes by the tags of its active filters.

    One forward pass per test image gives the network's prediction and the
    filter activations; the rankings are counted for every k and q value. Each
    class's results are written as soon as its images are done (memory holds
    one class at a time), with a checkpoint that ``--resume`` continues from.

    Args:
        args: filtags_file, k_q, images_dir, split, seed_rn, save_dir,
            time_delta, batch_size, classes, export, mixed_precision, resume
            (None: step 1's values, all classes).

    Returns:
        The index ``-vars.pkl`` written (eval_files, k_q, classes, meta).
    """
    from filtag import data, evaluation

    source = load_tags_run(
        args.filtags_file, args.k_q, args.batch_size, args.mixed_precision
    )
    classes = source.meta2["class_names"]
    chosen = args.classes or classes
    _check_names(chosen, classes, "--classes", args.filtags_file)
    class_index = {name: i for i, name in enumerate(classes)}
    tags = source.tags(class_index)

    run, state = _start(args, "E", source.meta2["network"])
    with run_logs(run):
        logger.info("step 3 run %s: %s", run.prefix, vars(args))
        images_dir, split = _step1_split(args, source)
        inputs = {
            "filtags_file": str(args.filtags_file.resolve()),
            "k_q": source.k_q,
            "classes": list(chosen),
            "images_dir": str(images_dir.resolve()),
            "batch_size": args.batch_size,
            "mixed_precision": args.mixed_precision,
        }
        _check_resumable(state, inputs, args.resume)
        images = [(row, p) for row, name in enumerate(chosen)
                  for p in split.test[class_index[name]]]  # fmt: skip
        progress = _Step3Progress.restore(state, chosen, source.k_q)
        dataset = data.image_dataset(
            [images_dir / p for _, p in images[progress.consumed :]],
            source.spec,
            args.batch_size,
            progress.consumed,
        )
        # The host work of a batch (rankings) runs in a second thread while the
        # network computes the next batch; results are added in batch order.
        pending = None
        with (
            logging_redirect_tqdm(),
            tqdm(total=len(images), initial=progress.consumed, unit="img") as bar,
            ThreadPoolExecutor(max_workers=1) as host,
        ):
            for batch, index in dataset:
                acts, outputs = source.probe(batch)
                if pending is not None:
                    pending.result()
                rows = [images[i][0] for i in index.numpy()]
                for i in index.numpy():
                    progress.results[images[i][0]].files.append(images[i][1])
                pending = host.submit(
                    evaluation.add_results, source.probe.split_layers(acts), outputs,
                    rows, classes, source.output_names, tags, progress.results,
                    not bar.n,
                )  # fmt: skip
                progress.evaluated += len(rows)
                progress.consumed = int(index[-1]) + 1
                bar.update(progress.consumed - bar.n)
                more = progress.consumed < len(images)
                next_row = images[progress.consumed][0] if more else len(chosen)
                if progress.any_unwritten(next_row):
                    pending.result()
                    progress.write_done(run, class_index, next_row)
                    write_checkpoint(run, {"inputs": inputs, **progress.state()})
            if pending is not None:
                pending.result()
        progress.write_done(run, class_index, len(chosen))
        logger.info("evaluated %d of %d test images", progress.evaluated, len(images))
        meta = {
            "step": "E",
            **inputs,
            "run_id": run.run_id,
            "created_utc": _now(),
            "network": source.meta2["network"],
            "class_names": classes,
            "split": source.meta1["split"] if args.split is None else args.split,
            "seed_rn": source.meta1["seed_rn"]
            if args.seed_rn is None
            else args.seed_rn,
            "images_evaluated": progress.evaluated,
            "images_skipped": len(images) - progress.evaluated,
            "versions": package_versions(),
            "step2": source.meta2,
        }
        variables = {
            "eval_files": progress.eval_files,
            "k_q": source.k_q,
            "classes": list(chosen),
            "meta": meta,
        }
        if args.export:
            export.write_exports(run.vars_path, variables)  # -rankings.csv
        header = f"filtag step 3 (evaluation), run {run.prefix}"
        write_vars(run.vars_path, variables, header)
        run.path("checkpoint.pkl").unlink(missing_ok=True)
        return run.vars_path


@dataclass
class _Step3Progress:
    """Step 3's state between batches: what a checkpoint saves.

    Attributes:
        results: per chosen class, its results so far (None once written).
        eval_files: the class files written, in order.
        consumed: test images read so far (the next one's position).
        evaluated: test images decoded and evaluated so far.
    """

    results: list
    eval_files: list[str] = field(default_factory=list)
    consumed: int = 0
    evaluated: int = 0

    @classmethod
    def restore(cls, state: dict | None, chosen: list[str], k_q: list[int]):
        """Return the progress saved in ``state``, or a fresh one."""
        from filtag.evaluation import ClassResults

        results = [ClassResults(name, k_q) for name in chosen]
        if state is None:
            return cls(results)
        for row, saved in state["partial"].items():
            results[row] = ClassResults(**saved)
        for row in range(state["written"]):
            results[row] = None
        return cls(results, state["eval_files"], state["consumed"], state["evaluated"])

    def state(self) -> dict[str, Any]:
        """Return the plain-data state for a checkpoint."""
        written = sum(result is None for result in self.results)
        partial = {
            row: dataclasses.asdict(result)
            for row, result in enumerate(self.results)
            if result is not None and result.files
        }
        return {
            "partial": partial,
            "written": written,
            "eval_files": self.eval_files,
            "consumed": self.consumed,
            "evaluated": self.evaluated,
        }

    def any_unwritten(self, up_to: int) -> bool:
        """Tell whether a class file of the rows below ``up_to`` is still to write."""
        return any(result is not None for result in self.results[:up_to])

    def write_done(self, run: Run, class_index: dict[str, int], up_to: int) -> bool:
        """Write the class files of rows below ``up_to`` not written yet.

        Returns:
            True when a file was written.
        """
        wrote = False
        for row in range(up_to):
            result = self.results[row]
            if result is None:
                continue
            path = run.path(f"vars{class_index[result.name]}.pkl")
            header = f"filtag step 3, class {result.name}"
            write_vars(path, result.variables(), header, info=False)
            self.eval_files.append(path.name)
            self.results[row] = None
            wrote = True
        return wrote


#: Step 4's variants: the variable suffix, and the title of its tables.
HIT_VARIANTS = {
    "k": "k most active filters, all layers",
    "q": "q % most active filters, all layers",
    "k_ll": "k most active filters, last layer",
    "q_ll": "q % most active filters, last layer",
}


def _load_class_files(eval_file: Path, v3: dict[str, Any]) -> dict[str, dict]:
    """Load step 3's per-class files named in its index; return them by class name.

    Raises:
        ArtifactError: a class file is missing or does not belong to the index.
    """
    by_class = {}
    for name in v3["eval_files"]:
        path = eval_file.parent / name
        variables = load_vars(path, CLASS_FILE)
        classes = list(variables.get("class_images_dict", {}))
        values = sorted(variables.get("y_k", {}))
        if (
            len(classes) != 1
            or classes[0] not in v3["classes"]
            or values != sorted(v3["k_q"])
        ):
            raise ArtifactError(
                f"{path} (classes {classes}, k_q {values}) does not belong to "
                f"{eval_file} (classes {v3['classes'][:5]}..., k_q {v3['k_q']}); the "
                "files are from different runs: keep each step-3 run's files together."
            )
        by_class[classes[0]] = variables
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
    _check_names(chosen, v3["classes"], "--classes-img", args.eval_file)
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


def si_eval(args: argparse.Namespace) -> Path:
    """Explain images by the tags of their active filters, under one rule.

    With ``args.image``: that one file, in full (top-5, ranking, per layer the
    active filters and their tags). Otherwise: every test image of
    ``args.class_name`` (step 1's split), one row each.

    Args:
        args: filtags_file, kind, value, class_name or image, images_dir,
            split, seed_rn, batch_size, html, save_dir, time_delta.

    Returns:
        The ``-results.txt`` written (and ``-explanation.html`` with html); the
        text is printed too, unless ``args.quiet``.
    """
    from filtag import data, explain

    source = load_tags_run(args.filtags_file, None, args.batch_size)
    values = source.v2[f"filTags_{args.kind}"]
    value = (
        args.value if args.value is not None else (5 if 5 in values else min(values))
    )
    if value not in values:
        raise FiltagError(
            f"--value {value} is not a {args.kind} value of {args.filtags_file}; "
            f"choose among {sorted(values)}."
        )
    classes = source.meta2["class_names"]
    if args.image is None and args.class_name is None:
        raise FiltagError("pass --class-name NAME or --image FILE to explain.")
    run = reserve_run(args.save_dir, "SI", source.meta2["network"], args.time_delta)
    with run_logs(run):
        logger.info("si-eval run %s: %s", run.prefix, vars(args))
        if args.image is not None:
            if data.load_image(str(args.image), source.spec) is None:
                raise FiltagError(f"--image {args.image} cannot be read as an image.")
            names, paths = [str(args.image)], [args.image]
        else:
            _check_names([args.class_name], classes, "--class-name", args.filtags_file)
            images_dir, split = _step1_split(args, source)
            names = split.test[classes.index(args.class_name)]
            paths = [images_dir / name for name in names]
        explanations = []
        for batch, index in data.image_dataset(paths, source.spec, args.batch_size):
            acts, outputs = source.probe(batch)
            explanations += explain.explain_batch(
                [names[i] for i in index.numpy()],
                [np.asarray(a, np.float64) for a in source.probe.split_layers(acts)],
                outputs,
                values[value],
                (args.kind, value),
                classes,
                source.output_names,
                source.meta1["layer_names"],
            )
        rule = (args.kind, value)
        if args.image is not None:
            text = explain.image_text(explanations[0], rule)
            if args.html:
                page = explain.image_html(
                    explanations[0], rule, args.image.read_bytes()
                )
                atomic_write_text(run.path("explanation.html"), page)
        else:
            text = explain.class_table(explanations, rule)
        atomic_write_text(run.path("results.txt"), text + "\n")
        if not getattr(args, "quiet", False):
            print(text)
        return run.path("results.txt")
