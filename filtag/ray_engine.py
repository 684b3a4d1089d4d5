"""Steps 1 and 3 on Ray Data (``--engine ray``): many GPUs and machines, same results.

Step 1 is a map-reduce (a forward pass per image, then per-class sums) and
step 3 a map (a forward pass per image, then per-image rankings). Under Ray
the map runs in Ray Data:

- a dataset of (index, path) rows, one row per image;
- image decoding in Ray tasks, by :func:`filtag.data.load_image` (the pixels
  of the local engine);
- ``map_batches`` into a pool of actors (:class:`ProbeActor`), each building
  the network once from the plain arguments of
  :func:`filtag.networks.load_network` and returning per image only its index,
  whether it decoded, its filter activations (and, for step 3, the outputs).

The reduce stays on the driver: step 1 adds the rows to the float64
:class:`filtag.activations.ClassSums` and :class:`filtag.activations.Exemplars`
of the local engine, step 3 feeds them to the same counting and ranking code.
Rows come back in any order, so classes finish in any order (the journal of
:mod:`filtag.resume` takes them so). Ray retries the batches of an actor that
died; :class:`Settled` counts every image exactly once, by its index, and
refuses a run that lost one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filtag.data import ImageSpec, load_image
from filtag.errors import FiltagError

logger = logging.getLogger(__name__)

#: What to install for ``--engine ray``.
INSTALL = "pip install 'filtag[ray]'"

#: Images per row block of the input dataset, in batches (a Ray task's share).
BATCHES_PER_BLOCK = 2

#: The memory of a decoding worker besides its batches (Python, Pillow, Arrow;
#: Ray Data measured about 100-150 MiB).
DECODE_WORKER_BYTES = 160 * 2**20


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs.

    Attributes:
        address: a running cluster (``"auto"`` or ``"ray://host:10001"``,
            ``"host:6379"``); None: a local Ray that starts and stops with
            the run (or the one this process already started).
        actors: network actors; None: one per GPU (``gpus_per_actor`` each),
            else one per 2 CPUs of the cluster.
        gpus_per_actor: GPUs each actor holds; None: 1 when the cluster has
            GPUs, else 0.
    """

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None


@dataclass(frozen=True)
class ProbeJob:
    """What an actor needs to build the probe: the network's plain arguments.

    Attributes:
        network_args: the positional arguments of
            :func:`filtag.networks.load_network` (network, weights, layers,
            preprocess, interpolation, mixed_precision, image_size, mean, std;
            a model file must be readable on every node).
        batch_size: images per forward pass (smaller batches are padded).
        xla: ``--xla`` (auto, on, off), resolved by each actor on its device.
        outputs: also return the network's outputs (step 3).
    """

    network_args: tuple
    batch_size: int
    xla: str
    outputs: bool

    @property
    def weights(self) -> str | None:
        """The ``--weights`` value."""
        return self.network_args[1]


@dataclass
class EngineReport:
    """What a Ray run records in ``meta["engine"]``.

    Attributes:
        address: the cluster joined, or None (a local Ray).
        actors: network actors in the pool.
        gpus_per_actor: GPUs per actor.
        xla_used: what XLA compiled in the actors (see
            :attr:`filtag.activations.FilterProbe.xla_used`), each value once.
    """

    address: str | None = None
    actors: int = 0
    gpus_per_actor: float = 0.0
    xla_used: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        """Return the report as ``meta["engine"]``."""
        return {
            "name": "ray",
            "address": self.address,
            "actors": self.actors,
            "gpus_per_actor": self.gpus_per_actor,
            "xla_used": sorted(self.xla_used),
        }


# ----------------------------------------------------------------------- Ray itself


def import_ray() -> Any:
    """Import Ray with Ray Data.

    Raises:
        FiltagError: Ray Data is not installed (one line: what to install).
    """
    try:
        import ray
        import ray.data  # the extra, not only Ray's core
    except ImportError:
        raise FiltagError(
            f"--engine ray needs Ray Data, which is not installed; {INSTALL} "
            "(or pass --engine local)."
        ) from None
    return ray


def local_init_args(actors: int | None) -> dict[str, Any]:
    """Return ``ray.init``'s arguments for a local Ray started by the run.

    The workers find filtag where the driver found it, TensorFlow's start-up
    lines stay quiet, and there is a CPU for decoding beside the actors.
    """
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    cpus = os.cpu_count() or 1
    return {
        "num_cpus": max(cpus, (actors or 0) + 1),
        "include_dashboard": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}},
        "logging_level": logging.WARNING,
    }


@contextlib.contextmanager
def connected(options: RayOptions) -> Iterator[Any]:
    """Join ``options.address``, or start a local Ray that stops at the end.

    A Ray this process already started (e.g. by ``ray.init()`` in a notebook)
    is used as it is and left running.

    Yields:
        The ``ray`` module.

    Raises:
        FiltagError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = import_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the run has its own
    context.print_on_execution_start = False
    if ray.is_initialized():
        yield ray
        return
    if options.address is None:
        ray.init(**local_init_args(options.actors))
    else:
        try:
            ray.init(address=options.address, logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise FiltagError(
                f"--ray-address {options.address}: no Ray cluster there ({exc}); "
                "start one (ray start --head, ray up) or leave --ray-address out "
                "for a local Ray."
            ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def pool_size(resources: dict[str, float], options: RayOptions) -> tuple[int, float]:
    """Return (actors, GPUs per actor) for a cluster with ``resources``.

    Args:
        resources: ``ray.cluster_resources()`` (``"CPU"``, ``"GPU"``, ...).
        options: the asked values (None: the defaults of :class:`RayOptions`).
    """
    gpus = float(resources.get("GPU", 0))
    per_actor = options.gpus_per_actor
    if per_actor is None:
        per_actor = 1.0 if gpus else 0.0
    if options.actors is not None:
        actors = options.actors
    elif per_actor > 0:
        actors = max(1, int(gpus // per_actor))
    else:
        actors = max(1, int(resources.get("CPU", 1) // 2))
    return actors, per_actor


# --------------------------------------------------------------------- the workers


def decode_batch(batch: dict[str, np.ndarray], spec: ImageSpec) -> dict[str, Any]:
    """Decode a batch of rows (a Ray task), as the local engine does.

    Args:
        batch: ``index`` int64 (n,) and ``path`` (n,) file paths.
        spec: how the network reads images.

    Returns:
        ``index``; ``image`` uint8 (n, height, width, channels), zeros where a
        file cannot be decoded; ``ok`` bool (n,), False there.
    """
    shape = (spec.height, spec.width, spec.channels)
    decoded = [load_image(str(path), spec) for path in batch["path"]]
    ok = np.array([image is not None for image in decoded], bool)
    blank = np.zeros(shape, np.uint8)
    images = np.stack([blank if image is None else image for image in decoded])
    return {"index": batch["index"], "image": images.reshape(-1, *shape), "ok": ok}


class ProbeActor:
    """A Ray actor holding the network: decoded batches in, activations out.

    Args:
        job: the network's plain arguments, built once per actor.
    """

    def __init__(self, job: ProbeJob) -> None:
        from filtag.cli import quiet_tensorflow

        quiet_tensorflow()
        from filtag.networks import load_network

        network = load_network(*job.network_args)
        self.probe = network.probe(job.batch_size, job.xla)
        self.n_filters = sum(self.probe.filters_per_layer)
        self.n_outputs = network.n_outputs
        self.outputs = job.outputs

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Probe a decoded batch.

        Args:
            batch: ``index``, ``image`` and ``ok`` (see :func:`decode_batch`).

        Returns:
            ``index`` and ``ok`` as given; ``activations`` float32 (n, F) and,
            for step 3, ``outputs`` float32 (n, n_outputs), zeros where ``ok``
            is False; ``xla`` (n,) what XLA compiled.
        """
        ok = np.asarray(batch["ok"], bool)
        n = len(ok)
        activations = np.zeros((n, self.n_filters), np.float32)
        outputs = np.zeros((n, self.n_outputs), np.float32)
        if ok.any():
            activations[ok], outputs[ok] = self.probe(batch["image"][ok])
        result = {
            "index": batch["index"],
            "ok": ok,
            "activations": activations,
            "xla": np.full(n, self.probe.xla_used),
        }
        if self.outputs:
            result["outputs"] = outputs
        return result


def probed_batches(
    job: ProbeJob,
    spec: ImageSpec,
    paths: Sequence[Path],
    indices: np.ndarray,
    options: RayOptions,
    report: EngineReport,
) -> Iterator[dict[str, np.ndarray]]:
    """Run the probe over ``paths`` on Ray; yield the result rows as they come.

    Args:
        job: the network's arguments.
        spec: how the network reads images.
        paths: the image files (readable on every node).
        indices: int64 (len(paths),): the number each row carries back.
        options: where and how wide.
        report: filled with the pool's size and what XLA compiled.

    Yields:
        Batches of :meth:`ProbeActor.__call__`'s rows, in any order; a
        retried batch may come back twice.

    Raises:
        FiltagError: Ray is not installed, or the cluster cannot be reached.
    """
    if not len(paths):
        return
    if str(job.weights).lower() == "none":
        logger.warning(
            "--weights none under Ray: every actor draws its own random weights, "
            "so the actors compute different networks; save the network as a "
            ".keras file and pass that file instead."
        )
    with connected(options) as ray:
        report.actors, report.gpus_per_actor = pool_size(
            ray.cluster_resources(), options
        )
        report.address = options.address
        logger.info(
            "Ray: %d images, %d actors with %g GPUs each, on %s",
            len(paths), report.actors, report.gpus_per_actor,
            options.address or "a local Ray",
        )  # fmt: skip
        rows = _rows(ray, paths, indices, job.batch_size * BATCHES_PER_BLOCK)
        # The memory a decoding task asks for (the worker, its decoded batch
        # twice) also keeps decoding in tasks of its own: Ray Data fuses a map
        # into the actors' only when both ask for the same resources.
        batch_bytes = job.batch_size * spec.height * spec.width * spec.channels
        decoded = rows.map_batches(
            decode_batch,
            fn_kwargs={"spec": spec},
            batch_size=job.batch_size,
            batch_format="numpy",
            memory=DECODE_WORKER_BYTES + 2 * batch_bytes,
        )
        # Ray Data (>= 2.60) restarts an actor that dies and retries its batches
        # (max_restarts=-1, max_task_retries=-1 by default).
        probed = decoded.map_batches(
            ProbeActor,
            fn_constructor_kwargs={"job": job},
            batch_size=job.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=report.actors),
            num_gpus=report.gpus_per_actor or None,
        )
        used: set[str] = set()
        for batch in probed.iter_batches(batch_size=None, batch_format="numpy"):
            used.update(str(x) for x in np.unique(batch["xla"]))
            report.xla_used = sorted(used)
            yield batch


def _rows(ray: Any, paths: Sequence[Path], indices: np.ndarray, block: int) -> Any:
    """Return the dataset of (index, path) rows, ``block`` rows per block."""
    import pyarrow as pa

    table = pa.table(
        {
            "index": pa.array(np.asarray(indices, np.int64)),
            "path": pa.array([os.fspath(p) for p in paths], pa.string()),
        }
    )
    blocks = [table.slice(start, block) for start in range(0, len(table), block)]
    return ray.data.from_arrow(blocks)


# ------------------------------------------------------------------- the driver


class Settled:
    """Which images have come back (once each) and which groups that finishes.

    An image is settled when its row comes back, decoded or not; a group
    (step 1's class, step 3's class row) is finished when all its images to
    read are settled.

    Args:
        groups: int64 (n,): the group of each index.
        todo: the indices to read.
        n_groups: number of groups.
    """

    def __init__(self, groups: np.ndarray, todo: np.ndarray, n_groups: int) -> None:
        self.groups = np.asarray(groups, np.int64)
        self.pending = np.zeros(len(self.groups), bool)
        self.pending[todo] = True
        self.left = np.bincount(self.groups[todo], minlength=n_groups)

    def take(self, index: np.ndarray) -> np.ndarray:
        """Settle a batch; return the mask of its rows not seen before.

        Args:
            index: int64 (n,): the rows' indices (a retried row may repeat).

        Returns:
            bool (n,): True for each index's first row; False for a repeat.
        """
        index = np.asarray(index, np.int64)
        first = np.zeros(len(index), bool)
        _, at = np.unique(index, return_index=True)
        first[at] = True
        first &= self.pending[index]
        self.pending[index[first]] = False
        return first

    def finished(self, index: np.ndarray) -> list[int]:
        """Count newly settled ``index`` (from :meth:`take`); return finished groups."""
        groups = self.groups[index]
        np.subtract.at(self.left, groups, 1)
        return [int(g) for g in np.unique(groups) if self.left[g] == 0]

    def check_all(self) -> None:
        """Refuse a run that lost an image.

        Raises:
            FiltagError: an image to read never came back.
        """
        lost = np.flatnonzero(self.pending)
        if lost.size:
            raise FiltagError(
                f"Ray returned no result for {lost.size} images (e.g. index "
                f"{lost[0]}); nothing was written for their classes: continue "
                "with --resume."
            )


def class_sums(
    job: ProbeJob,
    spec: ImageSpec,
    paths: Sequence[Path],
    sums: Any,
    progress: Any,
    on_class_done: Any,
    exemplars: Any,
    options: RayOptions,
    report: EngineReport,
) -> None:
    """Step 1 on Ray: add every image's activations to ``sums`` and ``exemplars``.

    Args:
        job: the network's arguments (``outputs`` False).
        spec: how the network reads images.
        paths: the train images of ``sums.positions``, in that order.
        sums: the run's :class:`filtag.activations.ClassSums` (updated).
        progress: a progress bar, advanced by the images settled.
        on_class_done: called with each class once finished, in any order.
        exemplars: the run's :class:`filtag.activations.Exemplars` (updated).
        options, report: see :func:`probed_batches`.

    Raises:
        FiltagError: Ray is missing, or an image was lost.
    """
    settled = Settled(sums.labels, sums.positions, len(sums.counts))
    reported: set[int] = set()
    batches = probed_batches(job, spec, paths, sums.positions, options, report)
    for batch in batches:
        first = settled.take(batch["index"])
        index, ok = batch["index"][first], batch["ok"][first]
        activations = batch["activations"][first][ok]
        sums.accumulate(activations, index[ok])
        exemplars.add(activations, index[ok])
        progress.update(len(index))
        for c in settled.finished(index):
            reported.add(c)
            on_class_done(c)
    settled.check_all()
    for c in sums.finish():  # classes without images to read
        if c not in reported:
            on_class_done(c)


def evaluation_batches(
    job: ProbeJob,
    spec: ImageSpec,
    paths: Sequence[Path],
    rows: np.ndarray,
    n_rows: int,
    options: RayOptions,
    report: EngineReport,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[int], int]]:
    """Step 3 on Ray: the decoded test images' activations and outputs.

    Args:
        job: the network's arguments (``outputs`` True).
        spec: how the network reads images.
        paths: the test images to read; index i is ``paths[i]``.
        rows: int64 (len(paths),): the class row of each image.
        n_rows: number of class rows.
        options, report: see :func:`probed_batches`.

    Yields:
        ``(index, activations, outputs, finished, settled)``: the decoded
        images of a batch (each once, in any order), float32 (n, F) and
        (n, n_outputs); the class rows all of whose images are now settled;
        the images settled by the batch (decoded or not).

    Raises:
        FiltagError: Ray is missing, or an image was lost.
    """
    every = np.arange(len(paths))
    settled = Settled(rows, every, n_rows)
    for batch in probed_batches(job, spec, paths, every, options, report):
        first = settled.take(batch["index"])
        index, ok = batch["index"][first], batch["ok"][first]
        yield (
            index[ok],
            batch["activations"][first][ok],
            batch["outputs"][first][ok],
            settled.finished(index),
            len(index),
        )
    settled.check_all()
