"""The steps as a Python API: keyword arguments in, typed results out.

Each function validates its inputs (:mod:`filtag.params`, the same validators
as the command line), claims a new run in ``save_dir``, runs the stages
(:mod:`filtag.activations`, :mod:`filtag.tagging`, :mod:`filtag.evaluation`,
:mod:`filtag.hitrates`, which do no file I/O), writes the run's files and
returns a result naming them::

    import filtag

    r1 = filtag.step1(network="VGG16", images_dir="imagenet/train")
    r2 = filtag.step2(activations_file=r1.path, k_q="0-25")
    r3 = filtag.step3(filtags_file=r2.path)
    r4 = filtag.step4(eval_file=r3.path)
    print(r4.summary)

The scripts (``step1filteractivations.py``, ...) and the ``filtag`` command call
these functions with their flags.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from filtag import export as exports
from filtag import labels, params
from filtag.artifacts import (
    CLASS_FILE,
    Run,
    atomic_write_text,
    load_step_vars,
    load_vars,
    reserve_run,
    write_vars,
)
from filtag.errors import ArtifactError, FiltagError
from filtag.logs import progress, run_logs
from filtag.networks import Network, load_network
from filtag.provenance import file_digest, now_utc, package_versions, split_digest
from filtag.results import (
    ExplainResult,
    Step1Result,
    Step2Result,
    Step3Result,
    Step4Result,
    result_of,
)
from filtag.resume import Journal, claim_run, resumable
from filtag.variants import HIT_PREFIXES, KINDS, RANKING_ORDER, VARIANTS

if TYPE_CHECKING:  # filtag.activations imports TensorFlow
    from filtag.activations import ExemplarDelta, Exemplars

logger = logging.getLogger(__name__)

#: The network name that stands for the embedded default (made on first use).
DEFAULT_NETWORK = "default"


# --------------------------------------------------------------------- networks


def _resolve_default(
    network: str, images_dir: Path | None, class_names: Path | None
) -> tuple[str, Path, Path | None]:
    """Replace ``network="default"`` by the embedded default's files.

    Returns:
        (network, images_dir, class_names).

    Raises:
        FiltagError: no ``images_dir`` for a network other than the default.
    """
    if network == DEFAULT_NETWORK:
        from filtag import default

        files = default.ensure_default()
        return str(files.model), images_dir or files.images_dir, class_names
    if images_dir is None:
        raise FiltagError(
            f"images_dir is required with network {network!r}; pass a folder with "
            "one sub-folder of images per class."
        )
    return network, images_dir, class_names


# ------------------------------------------------------------------------- step 1


def step1(
    network: str = DEFAULT_NETWORK,
    images_dir: str | Path | None = None,
    *,
    weights: str | None = None,
    save_dir: str | Path = "results",
    split: float = 0.2,
    seed_rn: int = 123,
    time_delta: float = 0,
    batch_size: int = 32,
    preprocess: str = "auto",
    mean: Any = None,
    std: Any = None,
    interpolation: str = "auto",
    image_size: Any = None,
    class_names: str | Path | None = None,
    layers: str = "conv",
    exemplars: int = 9,
    mixed_precision: bool = False,
    xla: str = "auto",
    resume: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    ray_actors: int | None = None,
    ray_gpus_per_actor: float | None = None,
) -> Step1Result:
    """Step 1: per class, the mean scaled activation of every selected filter.

    For every train image and selected layer, the layer output is scaled into
    [0, 1] by min-max over the whole output, each feature map is averaged, and
    these are averaged over the images of the class. In the same pass, every
    filter keeps the ``exemplars`` train images of largest value. The run
    journals each finished class; ``resume`` continues an interrupted run from
    there, with a bit-identical result.

    Args:
        network: ``"default"`` (the embedded Fashion-MNIST CNN), a
            ``keras.applications`` name, a ``.keras``/``.h5`` file, or a
            PyTorch model (``torchvision:NAME``, ``timm:NAME``,
            ``FILE.py:FACTORY``, ``package.module:FACTORY``).
        images_dir: one sub-folder of images per class (None: the default's
            images, with ``network="default"``).
        weights, save_dir, split, seed_rn, time_delta, batch_size, preprocess,
        mean, std, interpolation, image_size, class_names, layers, exemplars,
        mixed_precision, xla, resume, engine, ray_address, ray_actors,
        ray_gpus_per_actor: see :data:`filtag.params.PARAMS` (``filtag step1
        --help``).

    Returns:
        The run; its ``-vars.pkl`` holds labels_id, train_filenames,
        test_filenames, filter_act_<i> per class, exemplar_images,
        exemplar_values and meta.

    Raises:
        FiltagError: bad input (one line saying what to do).
    """
    v = params.checked(locals(), required=["network"])
    ray_options = _ray_options(v)
    net_arg, images, names_file = _resolve_default(
        v["network"], v["images_dir"], v["class_names"]
    )
    from filtag import activations, data

    classes = data.list_classes(images)
    net = load_network(
        net_arg, v["weights"], v["layers"], v["preprocess"], v["interpolation"],
        v["mixed_precision"], v["image_size"], v["mean"], v["std"],
    )  # fmt: skip
    output_names = labels.output_class_names(net.n_outputs, classes, names_file)
    probe = net.probe(v["batch_size"], v["xla"])
    run = claim_run(v["save_dir"], "QFA", net.name, v["time_delta"], v["resume"])
    with run_logs(run), resumable(run):
        logger.debug("step 1 run %s: inputs %s", run.prefix, _plain(v))
        mismatch = labels.mismatch_message(output_names, classes)
        if mismatch:
            logger.warning("%s", mismatch)
        split_files = data.split_images(images, v["split"], v["seed_rn"])
        inputs = {
            "step": "QFA",
            "network": net.name,
            "model_path": str(net.model_file.resolve()) if net.model_file else None,
            "model_sha256": file_digest(net.model_file) if net.model_file else None,
            "weights": v["weights"],
            "layers_rule": v["layers"],
            "layer_names": net.layer_names,
            "filters_per_layer": list(probe.filters_per_layer),
            "image_size": [net.spec.height, net.spec.width],
            "color_mode": net.spec.color_mode,
            "preprocess": net.preprocess,
            "interpolation": net.spec.interpolation,
            "images_dir": str(images.resolve()),
            "split": v["split"],
            "seed_rn": v["seed_rn"],
            "split_sha256": split_digest(split_files.train, split_files.test),
            "class_names": output_names,
            "batch_size": v["batch_size"],
            "exemplars": v["exemplars"],
            "mixed_precision": v["mixed_precision"],
            "xla": {"asked": v["xla"], "used": _xla_used(probe, ray_options)},
            **net.describe(),
        }
        journal = Journal.open(run, inputs, v["resume"])
        paths, image_labels = split_files.files("train")
        n_filters = sum(probe.filters_per_layer)
        finished, deltas = _finished_classes(
            journal, image_labels, len(classes), n_filters
        )
        sums = activations.ClassSums(image_labels, len(classes), n_filters, finished)
        top = activations.Exemplars(image_labels, n_filters, v["exemplars"], deltas)
        if finished:
            logger.info(
                "resuming: %d of %d classes are done", len(finished), len(classes)
            )
        todo = [images / paths[i] for i in sums.positions]

        def journal_class(c: int) -> None:
            delta = top.delta(c)
            record = {"class": c, "sums": sums.sums[c], "count": int(sums.counts[c])}
            journal.append({**record, **_delta_record(delta)})

        with progress(len(sums.positions)) as bar:
            if ray_options is None:
                dataset = data.image_dataset(
                    todo, net.spec, v["batch_size"], sums.positions
                )
                activations.class_sums(probe, dataset, sums, bar, journal_class, top)
            else:
                from filtag import ray_engine

                network_args = (
                    net_arg, v["weights"], v["layers"], v["preprocess"],
                    v["interpolation"], v["mixed_precision"], v["image_size"],
                    v["mean"], v["std"],
                )  # fmt: skip
                job = ray_engine.ProbeJob(
                    network_args, v["batch_size"], v["xla"], outputs=False
                )
                ray_engine.class_sums(job, net.spec, todo, sums, bar, journal_class,
                                      top, *ray_options)  # fmt: skip
        means = sums.means()
        for index in np.flatnonzero(sums.counts == 0):
            logger.warning(
                "class %r has no readable train image; its filter activations are NaN",
                split_files.classes[index],
            )
        expected = np.bincount(image_labels, minlength=len(classes))
        skipped = int((expected - sums.counts).sum())
        meta = {
            **inputs,
            "run_id": run.run_id,
            "created_utc": now_utc(),
            "images_per_class": {
                name: int(n)
                for name, n in zip(split_files.classes, sums.counts, strict=True)
            },
            "skipped_broken": skipped,
            "skipped_not_images": dict(split_files.rejected),
            "skipped_hidden": len(split_files.hidden),
            "output_mismatch": mismatch,
            "engine": _engine_meta(ray_options),
            "versions": package_versions(),
        }
        variables: dict[str, Any] = {
            "labels_id": dict(enumerate(split_files.classes)),
            "train_filenames": paths,
            "test_filenames": split_files.files("test")[0],
        }
        for index, row in enumerate(means):
            variables[f"filter_act_{index}"] = probe.split_layers(row)
        variables.update(_exemplar_variables(top, paths, probe.filters_per_layer))
        variables["meta"] = meta
        header = f"filtag step 1 (filter activations), run {run.prefix}"
        write_vars(run.vars_path, variables, header)
        journal.remove()
        logger.info(
            "step 1: %d classes, %d train images read (%d broken, %d non-image and "
            "%d hidden files skipped); %d layers, %d filters -> %s",
            len(classes), int(sums.counts.sum()), skipped, len(split_files.rejected),
            len(split_files.hidden), len(net.layer_names), n_filters,
            run.vars_path.name,
        )  # fmt: skip
    return result_of(Step1Result, run, run.vars_path)


#: The journal record keys of a class's exemplar delta (see activations.Exemplars).
_DELTA_KEYS = {
    "exemplar_filters": "filters",
    "exemplar_values": "values",
    "exemplar_positions": "positions",
}


def _finished_classes(
    journal: Journal, image_labels: np.ndarray, n_classes: int, n_filters: int
) -> tuple[dict[int, tuple[np.ndarray, int]], list[ExemplarDelta]]:
    """Return what a resumed step-1 journal holds of its finished classes.

    Args:
        journal: the run's journal.
        image_labels: int, shape (train images,): the class of each train position.
        n_classes: number of classes.
        n_filters: filters of all selected layers together.

    Returns:
        {class: (float64 sums of shape (n_filters,), image count)} and the
        classes' exemplar deltas.

    Raises:
        ArtifactError: a record is not a step-1 class record of this run.
    """
    from filtag.activations import ExemplarDelta

    finished, deltas = {}, {}
    for record in journal.records:
        c, sums, count = record.get("class"), record.get("sums"), record.get("count")
        if not (
            isinstance(c, int)
            and 0 <= c < n_classes
            and isinstance(sums, np.ndarray)
            and sums.shape == (n_filters,)
            and sums.dtype == np.float64
            and isinstance(count, int)
            and count >= 0
            and _valid_delta(record, image_labels == c, n_filters)
        ):
            raise ArtifactError(
                f"{journal.path} holds a record that is not a step-1 class record "
                "of this run; start a new run without --resume."
            )
        finished[c] = (sums, count)
        deltas[c] = ExemplarDelta(**{f: record[k] for k, f in _DELTA_KEYS.items()})
    return finished, list(deltas.values())


def _valid_delta(record: dict[str, Any], in_class: np.ndarray, n_filters: int) -> bool:
    """Tell whether ``record`` holds a class's exemplar delta.

    Args:
        record: a journal record.
        in_class: bool, shape (train images,): the train positions of its class.
        n_filters: filters of all selected layers together.
    """
    filters, values, positions = (record.get(key) for key in _DELTA_KEYS)
    arrays = (filters, values, positions)
    if not (
        all(isinstance(a, np.ndarray) and a.ndim == 1 for a in arrays)
        and len(filters) == len(values) == len(positions)
        and values.dtype == np.float32
        and filters.dtype.kind == positions.dtype.kind == "u"
    ):
        return False
    entries = filters.astype(np.int64) * len(in_class) + positions.astype(np.int64)
    return bool(
        (filters < n_filters).all()
        and (positions < len(in_class)).all()
        and in_class[positions].all()
        and len(np.unique(entries)) == len(entries)  # no entry twice
    )


def _delta_record(delta: ExemplarDelta) -> dict[str, np.ndarray]:
    """Return the journal record entries of an :class:`ExemplarDelta`."""
    return {key: getattr(delta, field) for key, field in _DELTA_KEYS.items()}


def _exemplar_variables(
    top: Exemplars, paths: list[str], filters_per_layer: list[int]
) -> dict[str, list]:
    """Return step 1's ``exemplar_images`` and ``exemplar_values`` variables.

    Args:
        top: the run's running top N, all images added.
        paths: the train images (``train_filenames``).
        filters_per_layer: the selected layers' filter counts.

    Returns:
        {"exemplar_images": per layer, per filter, the list of paths, best
        first; "exemplar_values": per layer, float32 (filters, n)}.
    """
    bounds = np.cumsum(filters_per_layer)[:-1]
    values, positions = top.result()
    images = [[paths[p] for p in row] for row in positions.tolist()]
    layers = zip([0, *bounds], [*bounds, None], strict=True)
    return {
        "exemplar_images": [images[a:b] for a, b in layers],
        "exemplar_values": np.split(values, bounds, axis=0),
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Return inputs for a log line: paths as text."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


#: The inputs that apply with ``engine="ray"`` only.
_RAY_INPUTS = ("ray_address", "ray_actors", "ray_gpus_per_actor")


def _ray_options(v: dict[str, Any]) -> tuple[Any, Any] | None:
    """Return (RayOptions, EngineReport) for ``engine="ray"``, None for local.

    Raises:
        FiltagError: a Ray input without ``engine="ray"``, or Ray is not installed.
    """
    if v["engine"] != "ray":
        given = [name for name in _RAY_INPUTS if v[name] is not None]
        if given:
            raise FiltagError(
                f"{given[0]} applies with engine ray only; pass --engine ray or "
                f"leave {given[0]} out."
            )
        return None
    from filtag import ray_engine

    ray_engine.import_ray()  # before any file is written
    options = ray_engine.RayOptions(
        v["ray_address"], v["ray_actors"], v["ray_gpus_per_actor"]
    )
    return options, ray_engine.EngineReport()


def _xla_used(probe: Any, ray_options: tuple[Any, Any] | None) -> str | None:
    """What XLA compiles, for the inputs; None under Ray (each actor decides:
    ``meta["engine"]["xla_used"]``)."""
    return probe.xla_used if ray_options is None else None


def _engine_meta(ray_options: tuple[Any, Any] | None) -> dict[str, Any]:
    """Return ``meta["engine"]``: where the forward passes ran."""
    return {"name": "local"} if ray_options is None else ray_options[1].meta()


# ------------------------------------------------------------------------- step 2


def step2(
    activations_file: str | Path | None = None,
    *,
    k_q: Any = "0-25",
    export: bool = False,
    save_dir: str | Path = "results",
    time_delta: float = 0,
) -> Step2Result:
    """Step 2: tag each filter with the classes whose activations rank it highest.

    Args:
        activations_file: step 1's ``-vars.pkl`` (or a step-1 file of the
            original FilTag scripts).
        k_q: the k and q values: a list, or text such as ``"0-25"`` or ``"1,5,25"``.
        export: also write ``-tags.csv`` and ``-tags.json``.
        save_dir, time_delta: see :data:`filtag.params.PARAMS`.

    Returns:
        The run; its ``-vars.pkl`` holds filTags_k, filTags_q and meta.
    """
    from filtag import tagging, tagpickle

    v = params.checked(
        {"activations_file": activations_file, "k_q": k_q, "export": export,
         "save_dir": save_dir, "time_delta": time_delta},
        required=["activations_file"],
    )  # fmt: skip
    v1 = load_step_vars(
        v["activations_file"], "QFA", "--activations-file", ["labels_id"]
    )
    labels_id = v1["labels_id"]
    class_names = [labels_id[i] for i in sorted(labels_id)]
    missing = [
        f"filter_act_{i}" for i in sorted(labels_id) if f"filter_act_{i}" not in v1
    ]
    if missing:
        raise ArtifactError(
            f"--activations-file {v['activations_file']} lacks "
            f"{', '.join(missing[:3])}; pass a complete step-1 file."
        )
    n_layers = len(v1["filter_act_0"])
    class_acts = [
        np.stack(
            [
                np.asarray(v1[f"filter_act_{i}"][a], np.float64)
                for i in sorted(labels_id)
            ]
        )
        for a in range(n_layers)
    ]
    meta1 = v1.get("meta")
    from filtag.artifacts import network_of

    network = network_of(meta1, v["activations_file"], "QFA")
    run = reserve_run(v["save_dir"], "TF", network, v["time_delta"])
    with run_logs(run):
        logger.debug("step 2 run %s: inputs %s", run.prefix, _plain(v))
        tags = tagging.RuleTags(class_acts, class_names, v["k_q"], v["k_q"])
        meta = {
            "step": "TF",
            "run_id": run.run_id,
            "created_utc": now_utc(),
            "activations_file": str(v["activations_file"].resolve()),
            "k_q": list(v["k_q"]),
            "network": network,
            "class_names": class_names,
            "filters_per_layer": [a.shape[1] for a in class_acts],
            "versions": package_versions(),
            "step1": meta1,
        }
        if v["export"]:  # -tags.csv, -tags.json, from the tags built in memory
            lists = {"filTags_k": tags.lists("k"), "filTags_q": tags.lists("q")}
            exports.write_exports(run.vars_path, {**lists, "meta": meta})
            del lists  # the streamed pickles below need no lists
        # The tags are computed and written rule by rule, never all in memory.
        variables = {**tagpickle.streamed(tags), "meta": meta}
        header = f"filtag step 2 (filter tags), run {run.prefix}"
        write_vars(run.vars_path, variables, header)
        logger.info(
            "step 2: %d filters of %d layers tagged with %d classes for %d k and %d "
            "q values -> %s",
            sum(a.shape[1] for a in class_acts), n_layers, len(class_names),
            len(v["k_q"]), len(v["k_q"]), run.vars_path.name,
        )  # fmt: skip
    return result_of(Step2Result, run, run.vars_path)


# ----------------------------------------------------------------- after step 2


@dataclass
class TagsRun:
    """What the steps after step 2 need from a step-2 file and step 1's network.

    Attributes:
        path: the step-2 file.
        v2: the step-2 variables (filTags_k, filTags_q, meta).
        meta1: step 1's meta.
        k_q: the k and q values chosen (all of step 2's by default).
        build: returns step 1's :class:`Network` (called once, on first use).
    """

    path: Path
    v2: dict[str, Any]
    meta1: dict[str, Any]
    k_q: list[int]
    build: Callable[[], Network]

    @functools.cached_property
    def network(self) -> Network:
        """Step 1's :class:`Network`, built on first use (TensorFlow's memory too)."""
        return self.build()

    @property
    def meta2(self) -> dict[str, Any]:
        return self.v2["meta"]

    def decoded(self, names: list[str]) -> list[str]:
        """Return ``names`` as a labdecode'd step-2 file names them (or unchanged)."""
        mapping = self.meta2.get("label_mapping") or {}
        return [mapping.get(name, name) for name in names]

    @property
    def output_names(self) -> list[str]:
        """The names of the network's outputs, as the step-2 file names classes."""
        return self.decoded(self.meta1["class_names"])

    @property
    def filters_per_layer(self) -> list[int]:
        return list(self.meta1["filters_per_layer"])

    def filtags(self) -> dict[str, dict[int, list]]:
        """Return {kind: {value: tags}} for the chosen values, checked to fit step 1.

        Raises:
            ArtifactError: the tags do not fit the layers of step 1.
        """
        chosen = {kind: {} for kind in KINDS}
        for kind in KINDS:
            for value in self.k_q:
                tags = self.v2[f"filTags_{kind}"][value]
                if [len(layer) for layer in tags] != self.filters_per_layer:
                    raise ArtifactError(
                        f"{self.path} has tags for {[len(layer) for layer in tags]} "
                        "filters per layer but its step-1 file "
                        f"{self.meta2.get('activations_file')} has "
                        f"{self.filters_per_layer}; the files are from different "
                        "runs: rerun step 2 on that step-1 file."
                    )
                chosen[kind][value] = tags
        return chosen


def _previous_meta(meta: Any, key: str, flag: str, path: Path) -> dict:
    """Return the earlier step's meta stored under ``key``, or a clear error."""
    earlier = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(earlier, dict):
        raise ArtifactError(
            f"{flag} {path} carries no {key} meta (it was made from a file of the "
            f"original FilTag scripts); rerun the earlier steps with filtag."
        )
    return earlier


def load_tags_run(
    filtags_file: Path,
    k_q: list[int] | None,
    batch_size: int,
    mixed_precision: bool = False,
    original: dict[str, Any] | None = None,
) -> TagsRun:
    """Load a step-2 file; step 1's network, layers and image reading come with it.

    The network is built when first used (:attr:`TagsRun.network`), so that
    the caller can shrink the tags first.

    Args:
        filtags_file: step 2's ``-vars.pkl``.
        k_q: the values wanted (None: all of the file's).
        batch_size: images per batch of the probe.
        mixed_precision: compute the network in float16.
        original: for a step-2 file of the original FilTag scripts, which
            records no network: ``network``, ``weights``, ``layers``,
            ``preprocess`` and ``class_names`` (see :func:`original_tags_run`);
            None: such a file is refused.

    Raises:
        FiltagError: the file is not a step-2 file, a value of ``k_q`` is not in
            it, or the model file changed since step 1.
    """
    v2 = load_step_vars(
        filtags_file, "TF", "--filtags-file", ["filTags_k", "filTags_q"]
    )
    if v2.get("meta") is None and original is not None:
        return original_tags_run(filtags_file, v2, **original)
    meta2 = _previous_meta(v2, "meta", "--filtags-file", filtags_file)
    meta1 = _previous_meta(meta2, "step1", "--filtags-file", filtags_file)
    k_q = k_q or meta2["k_q"]
    absent = [value for value in k_q if value not in v2["filTags_k"]]
    if absent:
        raise FiltagError(
            f"--k-q {absent} not in {filtags_file} (it has k_q {meta2['k_q']}); "
            "choose among those or rerun step 2 with them."
        )
    model_path = meta1.get("model_path")
    for what in ("model", "weights"):
        _refuse_changed(what, meta1.get(f"{what}_path"), meta1.get(f"{what}_sha256"))
    build = functools.partial(
        load_network,
        meta1.get("network_arg") or model_path or meta1["network"],
        meta1.get("weights_path") or meta1["weights"],
        ",".join(meta1["layer_names"]),
        meta1["preprocess"],
        meta1["interpolation"],
        mixed_precision,
        meta1["image_size"],
    )
    return TagsRun(filtags_file, v2, meta1, list(k_q), build)


def _refuse_changed(what: str, path: str | None, expected: str | None) -> None:
    """Refuse step 1's model or weights file when it is gone or its SHA-256 changed.

    Raises:
        FiltagError: the file differs from the one step 1 read.
    """
    if not (path and expected):
        return
    try:
        same = file_digest(Path(path)) == expected
    except OSError:
        same = False
    if not same:
        raise FiltagError(
            f"the {what} file {path} changed since step 1 (or is gone; "
            "--filtags-file names that run); rerun step 1 with the current file."
        )


def original_tags_run(
    filtags_file: Path,
    v2: dict[str, Any],
    network: str | None,
    weights: str | None,
    layers: str | None,
    preprocess: str,
    class_names: Path | None,
) -> TagsRun:
    """Rebuild what a step-2 file of the original FilTag scripts does not record.

    The original step 2 writes the tags alone: the network is given here, its
    layers by the original rule (``'conv' in layer.name``) unless ``layers``
    says otherwise, and the classes are the tags' names in sorted order (the
    original step 1's class order).

    Raises:
        FiltagError: no ``network``, or the tags do not fit its layers.
    """
    if network is None:
        raise ArtifactError(
            f"--filtags-file {filtags_file} is a file of the original FilTag scripts, "
            "which does not record the network; pass --network (and --weights, "
            "--layers) as step 1 used them."
        )
    net = load_network(network, weights, layers or "name", preprocess, "nearest",
                       False)  # fmt: skip
    filters = net.filters_per_layer
    tags = v2["filTags_k"][min(v2["filTags_k"])]
    if [len(layer) for layer in tags] != filters:
        raise FiltagError(
            f"--filtags-file {filtags_file} has tags for {[len(t) for t in tags]} "
            f"filters per layer but --network {network} --layers {layers or 'name'} "
            f"selects {filters}; pass the network and layers step 1 used."
        )
    classes = sorted({name for kind in ("filTags_k", "filTags_q")
                      for layers_tags in v2[kind].values() for layer in layers_tags
                      for filter_tags in layer for name in filter_tags})  # fmt: skip
    meta1 = {
        "network": net.name,
        "model_path": str(net.model_file) if net.model_file else None,
        "weights": weights,
        "layer_names": net.layer_names,
        "filters_per_layer": filters,
        "image_size": [net.spec.height, net.spec.width],
        "color_mode": net.spec.color_mode,
        "preprocess": net.preprocess,
        "interpolation": "nearest",
        "class_names": labels.output_class_names(net.n_outputs, classes, class_names),
    }
    k_q = sorted(v2["filTags_k"])
    v2 = {**v2, "meta": {"step": "TF", "network": net.name, "class_names": classes,
                         "k_q": k_q, "step1": meta1}}  # fmt: skip
    return TagsRun(filtags_file, v2, meta1, k_q, lambda: net)


def _step1_split(
    source: TagsRun,
    images_dir: Path | None,
    split: float | None,
    seed_rn: int | None,
    flag_file: Path,
):
    """Rebuild step 1's split (from the given values or step 1's).

    Returns:
        (images_dir, split): the folder and its :class:`filtag.data.ImageSplit`.

    Raises:
        FiltagError: other classes, or another split, than step 1's.
    """
    from filtag import data

    meta1 = source.meta1
    images_dir = images_dir or Path(meta1["images_dir"])
    fraction = split or meta1["split"]
    seed = meta1["seed_rn"] if seed_rn is None else seed_rn
    if source.decoded(data.list_classes(images_dir)) != source.meta2["class_names"]:
        raise FiltagError(
            f"--images-dir {images_dir} has other classes than step 1 read "
            f"({flag_file}); pass the images folder step 1 read."
        )
    result = data.split_images(images_dir, fraction, seed)
    if split_digest(result.train, result.test) != meta1["split_sha256"]:
        raise FiltagError(
            f"--images-dir {images_dir} with --split {fraction} and --seed-rn "
            f"{seed} gives another train/test split than step 1 used "
            f"({flag_file}); pass step 1's folder, split and seed."
        )
    return images_dir, result


def _check_names(chosen: list[str], known: list[str], flag: str, where: object) -> None:
    """Refuse names in ``chosen`` that are not in ``known``."""
    unknown = [name for name in chosen if name not in known]
    if unknown:
        more = "..." if len(known) > 10 else ""
        raise FiltagError(
            f"{flag} {unknown} are not classes of {where}; choose among "
            f"{known[:10]}{more}."
        )


# ------------------------------------------------------------------------- step 3


def step3(
    filtags_file: str | Path | None = None,
    *,
    k_q: Any = None,
    top: Any = 20,
    images_dir: str | Path | None = None,
    split: float | None = None,
    seed_rn: int | None = None,
    save_dir: str | Path = "results",
    time_delta: float = 0,
    batch_size: int = 32,
    classes: Any = None,
    export: bool = False,
    mixed_precision: bool = False,
    xla: str = "auto",
    resume: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    ray_actors: int | None = None,
    ray_gpus_per_actor: float | None = None,
) -> Step3Result:
    """Step 3: rank each test image's classes by the tags of its active filters.

    One forward pass per test image gives the network's top-5 and the filter
    activations; the rankings are counted for every k and q value. Each class's
    file is written (and journaled) as soon as its images are done; ``resume``
    continues an interrupted run, redoing only the classes not written.

    Args:
        filtags_file: step 2's ``-vars.pkl``.
        k_q: the values to evaluate (None: all of step 2's).
        top: keep the first ``top`` classes of each ranking (``"all"``: whole
            rankings, as the original did).
        images_dir, split, seed_rn: None: step 1's.
        classes: class names to evaluate (None: all).
        export: also write ``-rankings.csv``.
        save_dir, time_delta, batch_size, mixed_precision, xla, resume, engine,
        ray_address, ray_actors, ray_gpus_per_actor: see
            :data:`filtag.params.PARAMS`.

    Returns:
        The run; its index ``-vars.pkl`` holds eval_files, k_q, classes, meta.
    """
    v = params.checked(
        {"filtags_file": filtags_file, "k_q": k_q, "top": top,
         "images_dir": images_dir, "split": split, "seed_rn": seed_rn,
         "save_dir": save_dir, "time_delta": time_delta, "batch_size": batch_size,
         "classes": classes, "export": export,
         "mixed_precision": mixed_precision, "xla": xla, "resume": resume,
         "engine": engine, "ray_address": ray_address, "ray_actors": ray_actors,
         "ray_gpus_per_actor": ray_gpus_per_actor},
        required=["filtags_file"],
    )  # fmt: skip
    ray_options = _ray_options(v)
    from filtag import data, evaluation

    source = load_tags_run(
        v["filtags_file"], v["k_q"], v["batch_size"], v["mixed_precision"]
    )
    class_list = source.meta2["class_names"]
    chosen = v["classes"] or class_list
    _check_names(chosen, class_list, "--classes", v["filtags_file"])
    class_index = {name: i for i, name in enumerate(class_list)}
    counter = evaluation.TagCounter(
        source.filtags(), class_list, source.filters_per_layer
    )
    for kind in KINDS:  # the counter holds all step 3 needs of the tag lists
        del source.v2[f"filTags_{kind}"]
    _release_freed_memory()  # before the network takes its share
    for kind in KINDS:
        evaluation.warn_mean_fallback(kind, source.k_q, source.filters_per_layer)
    # under Ray, the actors build the network; this process never does
    probe = None if ray_options else source.network.probe(v["batch_size"], v["xla"])
    top_n = None if v["top"] == "all" else v["top"]
    run = claim_run(
        v["save_dir"], "E", source.meta2["network"], v["time_delta"], v["resume"]
    )
    with run_logs(run), resumable(run):
        logger.debug("step 3 run %s: inputs %s", run.prefix, _plain(v))
        folder, split_files = _step1_split(
            source, v["images_dir"], v["split"], v["seed_rn"], v["filtags_file"]
        )
        inputs = {
            "filtags_file": str(v["filtags_file"].resolve()),
            "k_q": source.k_q,
            "top": v["top"],
            "classes": list(chosen),
            "images_dir": str(folder.resolve()),
            "batch_size": v["batch_size"],
            "mixed_precision": v["mixed_precision"],
            "xla": {"asked": v["xla"], "used": _xla_used(probe, ray_options)},
        }
        journal = Journal.open(run, inputs, v["resume"])
        done, counted = _written_classes(journal, run, len(chosen))
        images = [(row, p) for row, name in enumerate(chosen) if row not in done
                  for p in split_files.test[class_index[name]]]  # fmt: skip
        results = _ClassResults(chosen, source.k_q, top_n)
        open_rows = [row for row in range(len(chosen)) if row not in done]
        paths = [folder / p for _, p in images]
        if ray_options is None:
            dataset = data.image_dataset(paths, source.network.spec, v["batch_size"])
            batches = _local_batches(probe, dataset, images, open_rows)
        else:
            batches = _ray_batches(source, v, paths, images, len(chosen),
                                   ray_options)  # fmt: skip
        bounds = np.cumsum(source.filters_per_layer)[:-1]
        predictions: Counter[str] = Counter()

        def write_class(row: int) -> None:
            name = results.names[row]
            path = run.path(f"vars{class_index[name]}.pkl")
            variables = results.pop(row)
            write_vars(path, variables, f"filtag step 3, class {name}", False)
            evaluated = len(variables["y"])
            journal.append({"row": row, "file": path.name, "evaluated": evaluated})
            done[row] = path.name
            counted[row] = evaluated

        def host_work(
            index: np.ndarray,
            acts: np.ndarray,
            outputs: np.ndarray,
            finished: list[int],
        ) -> list:
            """Rank a batch and write the classes it completes (second thread)."""
            top5 = []
            if len(index):
                top5 = results.add(
                    [images[i][0] for i in index], [images[i][1] for i in index],
                    np.split(acts, bounds, axis=1), outputs, counter,
                    source.output_names, index,
                )  # fmt: skip
            for row in finished:
                write_class(row)
            return top5

        def finish(work: Future, settled: int) -> None:
            predictions.update(t[0][0] for t in work.result())
            bar.update(settled)

        # A batch's host work (tag counts, rankings, class files) runs in a
        # second thread while the network computes the next batch, one batch at
        # a time; on an interruption, the batch in that thread is finished.
        pending = None
        with progress(len(images)) as bar, ThreadPoolExecutor(1) as host:
            for index, acts, outputs, finished, settled in batches:
                if pending is not None:
                    finish(*pending)
                work = host.submit(host_work, index, acts, outputs, finished)
                pending = work, settled
            if pending is not None:
                finish(*pending)
        for row in open_rows:  # classes without readable test images
            if row not in done:
                write_class(row)
        evaluated = sum(counted.values())
        n_images = sum(len(split_files.test[class_index[n]]) for n in chosen)
        meta = {
            "step": "E",
            **inputs,
            "run_id": run.run_id,
            "created_utc": now_utc(),
            "network": source.meta2["network"],
            "class_names": class_list,
            "split": source.meta1["split"] if v["split"] is None else v["split"],
            "seed_rn": source.meta1["seed_rn"]
            if v["seed_rn"] is None
            else v["seed_rn"],
            "images_evaluated": evaluated,
            "images_skipped": n_images - evaluated,
            "engine": _engine_meta(ray_options),
            "versions": package_versions(),
            "step2": source.meta2,
        }
        eval_files = [done[row] for row in range(len(chosen))]
        variables = {
            "eval_files": eval_files,
            "k_q": source.k_q,
            "classes": list(chosen),
            "meta": meta,
        }
        if v["export"]:
            exports.write_exports(run.vars_path, variables)  # -rankings.csv
        header = f"filtag step 3 (evaluation), run {run.prefix}"
        write_vars(run.vars_path, variables, header)
        journal.remove()
        common = ", ".join(
            f"{labels.display(name)} ({n})" for name, n in predictions.most_common(3)
        )
        logger.info(
            "step 3: %d of %d test images of %d classes ranked for %d rules "
            "(network's most frequent top-1: %s) -> %s",
            evaluated, n_images, len(chosen), 2 * len(source.k_q), common or "-",
            run.vars_path.name,
        )  # fmt: skip
    return result_of(Step3Result, run, run.vars_path)


#: A batch of step 3: (index, activations (n, F), outputs (n, n_outputs), the
#: class rows it finishes, the images it settles, decoded or not).
_EvalBatch = tuple[np.ndarray, np.ndarray, np.ndarray, list[int], int]


def _local_batches(
    probe: Any, dataset: Any, images: list[tuple[int, str]], open_rows: list[int]
) -> Iterator[_EvalBatch]:
    """Step 3's batches on this process, in image order.

    Args:
        probe: the network's probe.
        dataset: :func:`filtag.data.image_dataset` of the images.
        images: (class row, file) of each image to read, by class row.
        open_rows: the class rows still to write, ascending.
    """
    last_of = {row: i for i, (row, _) in enumerate(images)}
    rows, settled = list(open_rows), 0
    for batch, index in dataset:
        acts, outputs = probe(batch)
        index = index.numpy()
        finished = []
        while rows and last_of.get(rows[0], -1) <= index[-1]:
            finished.append(rows.pop(0))
        yield index, acts, outputs, finished, int(index[-1]) + 1 - settled
        settled = int(index[-1]) + 1


def _ray_batches(
    source: TagsRun,
    v: dict[str, Any],
    paths: list[Path],
    images: list[tuple[int, str]],
    n_rows: int,
    ray_options: tuple[Any, Any],
) -> Iterator[_EvalBatch]:
    """Step 3's batches from Ray actors that build step 1's network themselves.

    Classes finish in any order, and a class's images in any order within it.
    """
    from filtag import data, ray_engine

    meta1 = source.meta1
    spec = data.ImageSpec(*meta1["image_size"], meta1["color_mode"],
                          meta1["interpolation"])  # fmt: skip
    job = ray_engine.ProbeJob(source.build.args, v["batch_size"], v["xla"], True)
    rows = np.array([row for row, _ in images], np.int64)
    return ray_engine.evaluation_batches(job, spec, paths, rows, n_rows, *ray_options)


def _release_freed_memory() -> None:
    """Hand the heap memory freed so far back to the OS (glibc's ``malloc_trim``).

    The C library keeps freed memory for reuse; after the step-2 tag lists (GBs
    of small lists at ImageNet size) are freed, that would stay in the process's
    resident memory. Elsewhere than glibc this does nothing.
    """
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _written_classes(
    journal: Journal, run: Run, n_rows: int
) -> tuple[dict[int, str], dict[int, int]]:
    """Return the class files a resumed step-3 journal names.

    Returns:
        ({row: file name}, {row: test images evaluated}).

    Raises:
        ArtifactError: a record is not a step-3 class record, or its file is gone.
    """
    written, evaluated = {}, {}
    for record in journal.records:
        row, name = record.get("row"), record.get("file")
        count = record.get("evaluated")
        if not (
            isinstance(row, int)
            and 0 <= row < n_rows
            and isinstance(name, str)
            and isinstance(count, int)
        ):
            raise ArtifactError(
                f"{journal.path} holds a record that is not a step-3 class record "
                "of this run; start a new run without --resume."
            )
        if not (run.save_dir / name).is_file():
            raise ArtifactError(
                f"{run.save_dir / name} is missing but {journal.path} lists it; "
                "start a new run without --resume."
            )
        written[row], evaluated[row] = name, count
    return written, evaluated


class _ClassResults:
    """Step 3's results of the classes in progress, until their files are written.

    Args:
        names: the evaluated class names; a class's row is its position.
        k_q: the values counted.
        top: classes kept per ranking (None: all).
    """

    def __init__(self, names: list[str], k_q: list[int], top: int | None) -> None:
        self.names = names
        self.k_q = k_q
        self.top = top
        self.partial: dict[int, dict[str, Any]] = {}

    def _class(self, row: int) -> dict[str, Any]:
        if row not in self.partial:
            self.partial[row] = {
                "y": [],
                **{v.ranking_var: {value: [] for value in self.k_q}
                   for v in RANKING_ORDER},
                "files": [],
                "index": [],
            }  # fmt: skip
        return self.partial[row]

    def add(
        self,
        rows: list[int],
        files: list[str],
        layer_acts: list[np.ndarray],
        outputs: np.ndarray,
        counter: Any,
        output_names: list[str],
        index: np.ndarray,
    ) -> list[list[tuple[str, float]]]:
        """Add a batch's top-5 and rankings to its classes; return the top-5s.

        Args:
            rows: each image's class row.
            files: each image's file.
            layer_acts: per layer, (n_images, n_filters): the activations.
            outputs: (n_images, n_outputs): the network's outputs.
            counter: the :class:`filtag.evaluation.TagCounter` of the run.
            output_names: the names of the network's outputs.
            index: each image's number; a class's file lists its images by it
                (batches may come in any order).
        """
        from filtag import evaluation

        top5 = evaluation.top_predictions(outputs, output_names)
        counts = counter.stacked(layer_acts)
        for variant in RANKING_ORDER:
            block = counts[variant.kind][1 if variant.last_layer else 0]
            values = counter.values[variant.kind]
            ranked = evaluation.rankings(
                block.reshape(-1, block.shape[-1]), counter.class_names, self.top
            )  # image i, value j: ranked[i * len(values) + j]
            for i, row in enumerate(rows):
                lists = self._class(row)[variant.ranking_var]
                for j, value in enumerate(values):
                    lists[value].append(ranked[i * len(values) + j])
        for row, file, t5, i in zip(rows, files, top5, index, strict=True):
            entry = self._class(row)
            entry["y"].append(t5)
            entry["files"].append(file)
            entry["index"].append(int(i))
        return top5

    def pop(self, row: int) -> dict[str, Any]:
        """Return a finished class's file variables (y, y_k, ..., class_images_dict),
        its images in the order of their numbers."""
        self._class(row)  # a class without readable test images: empty lists
        entry = self.partial.pop(row)
        order = np.argsort(entry.pop("index"), kind="stable").tolist()
        entry = {
            key: (
                [value[i] for i in order]
                if isinstance(value, list)
                else {k: [lists[i] for i in order] for k, lists in value.items()}
            )
            for key, value in entry.items()
        }
        files = entry.pop("files")
        return {**entry, "class_images_dict": {self.names[row]: files}}


# ------------------------------------------------------------------------- step 4


def step4(
    eval_file: str | Path | None = None,
    *,
    m: Any = "1-5",
    k_q: Any = None,
    classes_img: Any = None,
    save_dir: str | Path = "results",
    time_delta: float = 0,
) -> Step4Result:
    """Step 4: how often the network's class is among the top m of the tag ranking.

    Args:
        eval_file: step 3's index ``-vars.pkl`` (its class files beside it).
        m: the depths m: a list, or text such as ``"1-5"``.
        k_q: the values to rate (None: all of step 3's).
        classes_img: class names whose images count (None: all evaluated).
        save_dir, time_delta: see :data:`filtag.params.PARAMS`.

    Returns:
        The run; its ``-vars.pkl`` holds hit_*, totalhit_*, meanhit_* and meta;
        ``-results.txt`` beside it the tables.

    Raises:
        FiltagError: bad input, an m above step 3's ``top``, or no class
            folder among the network's outputs (every hit rate would be 0).
    """
    from filtag import hitrates, report

    v = params.checked(
        {"eval_file": eval_file, "m": m, "k_q": k_q, "classes_img": classes_img,
         "save_dir": save_dir, "time_delta": time_delta},
        required=["eval_file"],
    )  # fmt: skip
    v3 = load_step_vars(
        v["eval_file"], "E", "--eval-file", ["eval_files", "k_q", "classes", "meta"]
    )
    values = v["k_q"] or v3["k_q"]
    absent = [value for value in values if value not in v3["k_q"]]
    if absent:
        raise FiltagError(
            f"--k-q {absent} not in {v['eval_file']} (it has k_q {v3['k_q']}); "
            "choose among those or rerun step 3 with them."
        )
    top = v3["meta"].get("top", "all")
    if top != "all" and max(v["m"]) > top:
        raise FiltagError(
            f"--m {max(v['m'])} is more than the {top} classes step 3 kept per "
            f"ranking (--top {top} in {v['eval_file']}); pass --m up to {top} or "
            "rerun step 3 with a larger --top."
        )
    _refuse_mismatch(v3["meta"], v["eval_file"])
    chosen = v["classes_img"] or v3["classes"]
    _check_names(chosen, v3["classes"], "--classes-img", v["eval_file"])
    top1, hits = _class_hits(v["eval_file"], v3, chosen, values, v["m"])
    run = reserve_run(v["save_dir"], "HR", v3["meta"]["network"], v["time_delta"])
    with run_logs(run):
        logger.debug("step 4 run %s: inputs %s", run.prefix, _plain(v))
        empty = hitrates.empty_classes(top1)
        if empty:
            logger.warning("%s", empty)
        per_class, totals, means = {}, {}, {}
        for variant in VARIANTS:
            per_class[variant.name], totals[variant.name], means[variant.name] = (
                hitrates.rates_of_hits(hits[variant.name], v["m"])
            )
        variables: dict[str, Any] = {}
        for prefix, source in zip(
            HIT_PREFIXES, (per_class, totals, means), strict=True
        ):
            for variant in VARIANTS:
                variables[variant.hit_var(prefix)] = source[variant.name]
        n_images = sum(len(top1[name]) for name in chosen)
        variables["meta"] = {
            "step": "HR",
            "run_id": run.run_id,
            "created_utc": now_utc(),
            "eval_file": str(v["eval_file"].resolve()),
            "m": list(v["m"]),
            "k_q": list(values),
            "classes_img": list(chosen),
            "images": n_images,
            "n_classes": len(v3["meta"]["class_names"]),
            "network": v3["meta"]["network"],
            "versions": package_versions(),
            "step3": v3["meta"],
        }
        atomic_write_text(
            run.path("results.txt"),
            report.results_text(
                per_class, totals, means, len(v3["meta"]["class_names"])
            ),
        )
        header = f"filtag step 4 (hit rates), run {run.prefix}"
        write_vars(run.vars_path, variables, header)
        summary = report.summary_line(totals, len(v3["meta"]["class_names"]))
        logger.info("step 4: %d test images; %s -> %s", n_images, summary,
                    run.vars_path.name)  # fmt: skip
    return result_of(Step4Result, run, run.vars_path, totals=totals, summary=summary)


def _refuse_mismatch(meta3: dict[str, Any], eval_file: Path) -> None:
    """Refuse to rate a run whose class folders are none of the network's outputs.

    Raises:
        FiltagError: step 1 found no class folder among the output names.
    """
    meta1 = meta3.get("step2", {}).get("step1", {}) if isinstance(meta3, dict) else {}
    message = meta1.get("output_mismatch") if isinstance(meta1, dict) else None
    if message:
        raise FiltagError(f"{eval_file}: {message}")


def _class_hits(
    eval_file: Path,
    v3: dict[str, Any],
    chosen: list[str],
    values: list[int],
    m_values: list[int],
) -> tuple[dict[str, list[str]], dict[str, dict[str, dict[int, np.ndarray]]]]:
    """Read step 3's class files one at a time; keep only their hit matrices.

    A class file (rankings of every rule for every image) is dropped once its
    hits are taken, so step 4's memory does not grow with the test images.

    Args:
        eval_file: step 3's index; v3: its variables.
        chosen: the classes whose images count, in the order of the results.
        values: the k/q values rated; m_values: the depths.

    Returns:
        ({class: its images' top-1 names}, {variant name: {class:
        {value: bool array (images, len(m_values))}}}), classes in ``chosen``
        order (those without images left out of the hits).

    Raises:
        ArtifactError: a class file is missing or does not belong to the index.
    """
    from filtag import hitrates

    top1: dict[str, list[str]] = {}
    hits: dict[str, dict[str, dict[int, np.ndarray]]] = {
        variant.name: {} for variant in VARIANTS
    }
    wanted = set(chosen)
    for name, variables in _class_files(eval_file, v3):
        if name not in wanted:
            continue
        top1[name] = [y[0][0] for y in variables["y"]]
        for variant in VARIANTS:
            rankings = {
                value: variables[variant.ranking_var][value] for value in values
            }
            hits[variant.name].update(
                hitrates.class_hits({name: top1[name]}, {name: rankings}, m_values)
            )
    order = {name: i for i, name in enumerate(chosen)}
    top1 = dict(sorted(top1.items(), key=lambda item: order[item[0]]))
    for variant in VARIANTS:
        by_class = hits[variant.name]
        hits[variant.name] = {name: by_class[name] for name in top1 if name in by_class}
    return top1, hits


def _class_files(eval_file: Path, v3: dict[str, Any]) -> Iterator[tuple[str, dict]]:
    """Yield (class name, variables) of each of step 3's class files, one at a time.

    Raises:
        ArtifactError: a class file is missing or does not belong to the index.
    """
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
        yield classes[0], variables


# ---------------------------------------------------------------------- explain


def explain(
    filtags_file: str | Path | None = None,
    *,
    class_name: str | None = None,
    image: str | Path | None = None,
    kind: str = "k",
    value: int | None = None,
    html: bool = False,
    cards_page: str | Path | None = None,
    images_dir: str | Path | None = None,
    split: float | None = None,
    seed_rn: int | None = None,
    batch_size: int = 32,
    xla: str = "auto",
    save_dir: str | Path = "results",
    time_delta: float = 0,
    network: str | None = None,
    weights: str | None = None,
    layers: str | None = None,
    preprocess: str = "auto",
    class_names: str | Path | None = None,
) -> ExplainResult:
    """Explain images by the tags of their active filters, under one rule.

    With ``image``: that one file, in full (top-5, ranking, per layer the
    active filters and their tags; with ``html``, a page too, which lays each
    active filter's feature map over the image, grouped by class tag, and
    links each filter to its card on ``cards_page``, a tag page of
    :func:`filtag.views.tag_views`). Otherwise: every test image of
    ``class_name`` (step 1's split), one row each.

    ``network``, ``weights``, ``layers``, ``preprocess`` and ``class_names``
    serve a step-2 file of the original FilTag scripts only, which records no
    network (see :func:`original_tags_run`); filtag's own files ignore them.

    Returns:
        The run; ``path`` is its ``-results.txt``, ``text`` the explanation.
    """
    from filtag import data
    from filtag import explanation as explaining

    v = params.checked(
        {"filtags_file": filtags_file, "class_name": class_name, "image": image,
         "kind": kind, "value": value, "html": html, "cards_page": cards_page,
         "images_dir": images_dir,
         "split": split, "seed_rn": seed_rn, "batch_size": batch_size,
         "xla": xla, "save_dir": save_dir, "time_delta": time_delta, "network": network,
         "weights": weights, "layers": layers, "preprocess": preprocess,
         "class_names": class_names},
        required=["filtags_file"],
    )  # fmt: skip
    if v["image"] is None and v["class_name"] is None:
        raise FiltagError("pass --class-name NAME or --image FILE to explain.")
    if v["cards_page"] is not None and not v["cards_page"].is_file():
        raise FiltagError(
            f"--cards-page {v['cards_page']} is not a file; pass the page that "
            "filtag vis (filTagsvis.py) wrote, or leave it out."
        )
    original = {
        key: v[key]
        for key in ("network", "weights", "layers", "preprocess", "class_names")
    }
    source = load_tags_run(v["filtags_file"], None, v["batch_size"], False, original)
    if source.meta2.get("run_id") is None and v["image"] is None:
        raise FiltagError(
            f"--filtags-file {v['filtags_file']} is a file of the original FilTag "
            "scripts, which does not record step 1's split; explain an --image."
        )
    values = source.v2[f"filTags_{v['kind']}"]
    rule_value = (
        v["value"] if v["value"] is not None else (5 if 5 in values else min(values))
    )
    if rule_value not in values:
        raise FiltagError(
            f"--value {rule_value} is not a {v['kind']} value of {v['filtags_file']}; "
            f"choose among {sorted(values)}."
        )
    rule = (v["kind"], rule_value)
    class_list = source.meta2["class_names"]
    probe = source.network.probe(v["batch_size"], v["xla"])
    run = reserve_run(v["save_dir"], "SI", source.meta2["network"], v["time_delta"])
    with run_logs(run):
        logger.debug("si-eval run %s: inputs %s", run.prefix, _plain(v))
        if v["image"] is not None:
            pixels = data.load_image(str(v["image"]), source.network.spec)
            if pixels is None:
                raise FiltagError(f"--image {v['image']} cannot be read as an image.")
            names, paths = [str(v["image"])], [v["image"]]
        else:
            _check_names([v["class_name"]], class_list, "--class-name",
                         v["filtags_file"])  # fmt: skip
            folder, split_files = _step1_split(
                source, v["images_dir"], v["split"], v["seed_rn"], v["filtags_file"]
            )
            names = split_files.test[class_list.index(v["class_name"])]
            paths = [folder / name for name in names]
        explanations = []
        dataset = data.image_dataset(paths, source.network.spec, v["batch_size"])
        for batch, index in dataset:
            acts, outputs = probe(batch)
            explanations += explaining.explain_batch(
                [names[i] for i in index.numpy()],
                [np.asarray(a, np.float64) for a in probe.split_layers(acts)],
                outputs,
                values[rule_value],
                rule,
                class_list,
                source.output_names,
                source.meta1["layer_names"],
            )
        page, maps = None, {}
        if v["image"] is not None:
            text = explaining.image_text(explanations[0], rule)
            if v["html"]:
                page = run.path("explanation.html")
                cards = _cards_address(v["cards_page"], page, rule)
                fires = explaining.where_it_fires(
                    explanations[0],
                    pixels,
                    {
                        layer: source.network.feature_maps(pixels[None], layer)[0]
                        for layer, active in explanations[0].layers
                        if active
                    },
                    cards,
                )
                maps = fires.summed
                atomic_write_text(
                    page,
                    explaining.image_html(
                        explanations[0], rule, v["image"].read_bytes(), fires.html,
                        cards,
                    ),
                )  # fmt: skip
        else:
            text = explaining.class_table(explanations, rule)
        atomic_write_text(run.path("results.txt"), text + "\n")
        done = (
            f"{explaining.short_name(names[0])} ({explanations[0].verdicts()})"
            if v["image"] is not None
            else f"{len(explanations)} images of {v['class_name']}"
        )
        logger.info("explained %s -> %s", done, (page or run.path("results.txt")).name)
    return result_of(
        ExplainResult, run, run.path("results.txt"), text=text, page=page, maps=maps
    )


def _cards_address(
    cards_page: Path | None, page: Path, rule: tuple[str, int]
) -> str | None:
    """Return the address of the tag page ``cards_page`` relative to ``page``.

    Logs a warning when the tag page's file name says another rule than
    ``rule`` (its cards then show other tags than the explanation).
    """
    if cards_page is None:
        return None
    if not cards_page.name.endswith(f"-{rule[0]}{rule[1]}.html"):
        logger.warning(
            "--cards-page %s may show the tags of another rule than %s = %s; "
            "make it with filtag vis --kind %s --value %s",
            cards_page.name, *rule, *rule,
        )  # fmt: skip
    relative = os.path.relpath(cards_page.resolve(), page.parent.resolve())
    return quote(Path(relative).as_posix())
