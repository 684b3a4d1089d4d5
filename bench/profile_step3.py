"""Profile step 3's host work per batch: where ``evaluation.add_results`` spends.

The network is left out: a stand-in probe returns synthetic activations (uniform
in [0, 1), VGG16's 13 convolution layers, 4224 filters) and softmax outputs for
1000 classes, and the tags are step 2's for random class activations
(:func:`benchlib.random_tags`). What remains is exactly the host work of one
batch: the per-layer sorts, every rule's active filters and tag counts, the
rankings as lists of ``(class name, count)`` pairs, and the top-5.

Prints the wall time per batch (without the profiler), a table of filtag's
functions (cumulative seconds per batch under cProfile), and the top functions
by own time. cProfile slows Python-level calls more than numpy's, so read its
seconds as shares; the wall time is measured without it. Usage, from the
repository root:

    python bench/profile_step3.py --batch-size 32 --batches 3 --k-q 0-25

The tag counts are float32 matrix products (numpy's BLAS, multi-threaded by
default). On a machine whose cores are busy (another process, or TensorFlow
computing the next batch) a threaded BLAS can be many times slower; compare
with ``OPENBLAS_NUM_THREADS=1 python bench/profile_step3.py ...``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import benchlib
import numpy as np
from make_synthetic_step1 import VGG16_FILTERS
from tabulate import tabulate

from filtag import cli, evaluation

#: filtag's functions summarised first: (module file, function name); they nest
#: (add_results > the rest; active_filters > selected > above_mean), so shares
#: do not add up. Functions the package does not have (any more) are left out.
FUNCTIONS = [
    ("evaluation.py", "add_results"),
    ("evaluation.py", "add_results"),
    ("evaluation.py", "_add_rankings"),
    ("evaluation.py", "rankings"),
    ("evaluation.py", "count_tags"),
    ("evaluation.py", "active_filters"),
    ("tagging.py", "selected"),
    ("tagging.py", "above_mean"),
    ("tagging.py", "descending_ranks"),
    ("evaluation.py", "top_predictions"),
]


class SyntheticProbe:
    """Stands in for ``activations.FilterProbe``: returns prepared arrays in turn.

    Args:
        filters: filters per layer.
        batches: per call, (activations (batch, F), outputs (batch, classes)).
    """

    def __init__(self, filters: list[int], batches: list[tuple]) -> None:
        self.filters_per_layer = list(filters)
        self._batches = batches
        self._next = 0

    def __call__(self, images: object) -> tuple[np.ndarray, np.ndarray]:
        batch = self._batches[self._next % len(self._batches)]
        self._next += 1
        return batch

    def split_layers(self, activations: np.ndarray) -> list[np.ndarray]:
        """Split (..., F) activations into one array per layer."""
        return np.split(activations, np.cumsum(self.filters_per_layer)[:-1], axis=-1)


def synthetic_batches(
    filters: list[int], n_classes: int, batch: int, n: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return ``n`` batches of float32 activations and softmax outputs (seed 1)."""
    rng = np.random.default_rng(1)
    batches = []
    for _ in range(n):
        acts = rng.random((batch, sum(filters)), dtype=np.float32)
        logits = rng.normal(size=(batch, n_classes)).astype(np.float32)
        outputs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        batches.append((acts, outputs))
    return batches


def run_batches(probe: SyntheticProbe, setup: dict, n: int) -> list:
    """Run ``add_results`` on ``n`` batches; return the results (kept alive)."""
    kept = []
    for _ in range(n):
        results = [evaluation.ClassResults("class0", setup["k_q"])]
        acts, outputs = probe(None)
        evaluation.add_results(
            probe.split_layers(acts),
            outputs,
            [0] * setup["batch"],
            setup["names"],
            setup["output_names"],
            setup["tags"],
            results,
            False,
        )
        kept.append(results)
    return kept


def summary_rows(stats: pstats.Stats, n_batches: int) -> list[list[str]]:
    """Return a row per function of :data:`FUNCTIONS`: calls and seconds per batch."""
    total = None
    rows = []
    for module, name in FUNCTIONS:
        found = [
            (nc, ct)
            for (file, _, func), (_, nc, _, ct, _) in stats.stats.items()
            if func == name and Path(file).name == module
        ]
        calls = sum(nc for nc, _ in found)
        if not calls:
            continue
        seconds = sum(ct for _, ct in found) / n_batches
        total = seconds if total is None else total
        share = f"{100 * seconds / total:.0f} %" if total else ""
        rows.append(
            [f"{module[:-3]}.{name}", f"{calls / n_batches:g}", f"{seconds:.3f}", share]
        )
    return rows


def top_rows(stats: pstats.Stats, n_batches: int, top: int) -> list[list[str]]:
    """Return the ``top`` functions by own time: calls, own and cumulative s/batch."""
    items = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:top]
    rows = []
    for (file, line, func), (_, nc, tt, ct, _) in items:
        where = func if file == "~" else f"{Path(file).name}:{line}({func})"
        rows.append(
            [
                where,
                f"{nc / n_batches:g}",
                f"{tt / n_batches:.3f}",
                f"{ct / n_batches:.3f}",
            ]
        )
    return rows


def parse_args() -> argparse.Namespace:
    """Return the command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=3, help="batches per run")
    parser.add_argument("--k-q", default="0-25", help="the k and q values")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--top", type=int, default=20, help="functions listed")
    return parser.parse_args()


def main() -> None:
    """Time and profile step 3's host work; print the tables."""
    args = parse_args()
    k_q = cli.whole_numbers(args.k_q)
    names, tags = benchlib.random_tags(VGG16_FILTERS, args.classes, k_q)
    setup = {
        "k_q": k_q,
        "batch": args.batch_size,
        "names": names,
        "output_names": names,
        "tags": tags,
    }
    batches = synthetic_batches(
        VGG16_FILTERS, args.classes, args.batch_size, args.batches
    )
    probe = SyntheticProbe(VGG16_FILTERS, batches)
    run_batches(probe, setup, 1)  # warm-up
    start = time.perf_counter()
    kept = run_batches(probe, setup, args.batches)
    wall = (time.perf_counter() - start) / args.batches
    del kept
    profiler = cProfile.Profile()
    profiler.enable()
    kept = run_batches(probe, setup, args.batches)
    profiler.disable()
    del kept
    stats = pstats.Stats(profiler)

    print(benchlib.machine_line(), end="\n\n")
    print(
        f"Step 3's host work per batch of {args.batch_size} images: "
        f"{args.classes} classes, VGG16's {len(VGG16_FILTERS)} layers "
        f"({sum(VGG16_FILTERS)} filters), k_q = {args.k_q} ({2 * len(k_q)} rules); "
        f"mean of {args.batches} batches.\n"
    )
    print(f"wall time per batch, without the profiler: **{wall:.3f} s**\n")
    headers = ["function (cProfile)", "calls per batch", "cumulative s per batch"]
    rows = summary_rows(stats, args.batches)
    table = tabulate(rows, [*headers, "share"], "github", disable_numparse=True)
    print(table, end="\n\n")
    headers = ["function", "calls per batch", "own s per batch", "cumulative s"]
    rows = top_rows(stats, args.batches, args.top)
    print(f"Top {args.top} functions by own time (cProfile), per batch:\n")
    print(tabulate(rows, headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
