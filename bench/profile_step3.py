"""Profile step 3's host work per batch: tag counts, rankings, lists, pickling.

Loads a step-2 file as ``step3evaluation.py`` does (the tags, and step 1's
network rebuilt), runs the network over ``--batches`` batches of the test
images once, then times, batch after batch and without the network, each part
of the host work that step 3 does for a batch in its second thread:

- ``TagCounter.stacked``: the counts of every rule (its histogram of
  triples, the cumulative sums, the dense products of the mean rules);
- ``rankings``: the four variants' rankings, ``--top`` classes each;
- ``add``: the whole of ``_ClassResults.add`` (the two above, the top-5,
  appending each ranking to its class's lists);
- ``add`` and pickling those lists the way a class file is written
  (``pickle.dumps`` with the same protocol): a batch's host work.

Each is timed on its own (best of ``--repeats``): on a busy machine the
differences between them are not the parts' costs.

Prints the set-up costs (loading the step-2 file, building the counter), the
(image, filter, tag) triples per image, the counter's memory, a table of the
parts (best of ``--repeats`` passes, CPU seconds of the thread, wall seconds),
and the top functions under cProfile; with ``--rates``, also the images/s of
a plain predict, of the probe alone and of step 3's loop (probe, and the host
work in a second thread) over the same decoded batches. Usage, from the
repository root:

    python bench/profile_step3.py RESULTS/...-TF-MobileNetV2-vars.pkl --batches 4
    python bench/profile_step3.py ... --rates   # the probe as step 3 builds it
"""

from __future__ import annotations

import argparse
import cProfile
import pickle
import pstats
import resource
import time
from pathlib import Path

import benchlib
import numpy as np
from tabulate import tabulate

from filtag import artifacts, cli, data, evaluation, steps
from filtag.variants import KINDS, RANKING_ORDER


def parse_args() -> argparse.Namespace:
    """Return the command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("filtags_file", type=Path, help="a step-2 -vars.pkl")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rates", action="store_true",
        help="also time predict, the probe alone and step 3's loop (img/s)",
    )  # fmt: skip
    return parser.parse_args()


def timed(work, repeats: int) -> tuple[float, float]:
    """Return the best (thread CPU s, wall s) of ``repeats`` calls of ``work``."""
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        work()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return min(cpu), min(wall)


def triples(counter: evaluation.TagCounter, acts: list[np.ndarray]) -> int:
    """Return the (image, filter, tag) triples a batch's histograms count."""
    a64 = [np.asarray(a, np.float64) for a in acts]
    ranks = [evaluation.descending_ranks(a) for a in a64]
    nan_rows = [np.isnan(a).any(axis=1) for a in a64]
    total = 0
    for kind in KINDS:
        plan = counter._plans[kind]
        n_values = len(counter.values[kind])
        levels = counter._image_levels(plan, ranks, nan_rows, n_values)
        for table in plan.tables:
            active = np.count_nonzero(levels[:, table.filters] < n_values)
            total += active * table.keys.shape[1]
    return total


def rates(source, counter, dataset, batch_size: int, top: int, repeats: int):
    """Return the best img/s of: predict, the probe alone, step 3's loop.

    Step 3's loop is the probe with each batch's host work in a second thread
    (as ``filtag.steps.step3`` runs it, without writing files); all three read
    the same (cached) decoded images. Interleaved, best of ``repeats``.
    """
    import tensorflow as tf

    from filtag import models

    probe = source.network.probe(batch_size)
    model = source.network.model
    preprocess = models.preprocess_function(source.network.preprocess)
    names = list(source.meta2["class_names"])
    batches = [images for images, _ in dataset]

    def predict() -> int:
        return sum(len(model.predict_on_batch(preprocess(tf.cast(b, tf.float32))))
                   for b in batches)  # fmt: skip

    def probe_only() -> int:
        return sum(len(probe(b)[1]) for b in batches)

    def step3_loop() -> int:
        return benchlib.step3_loop(
            probe, batches, counter, names, names, source.k_q, top
        )

    work = {"predict": predict, "probe": probe_only, "step 3 loop": step3_loop}
    best = dict.fromkeys(work, 0.0)
    for f in work.values():
        f()  # compile, warm up
    for _ in range(repeats):
        for name, f in work.items():
            start = time.perf_counter()
            n = f()
            best[name] = max(best[name], n / (time.perf_counter() - start))
    return best


def counter_bytes(counter: evaluation.TagCounter) -> int:
    """Return the bytes of the counter's tables and dense tag matrices."""
    tables = sum(
        t.keys.nbytes + t.levels.nbytes + t.filters.nbytes
        for plan in counter._plans.values()
        for t in plan.tables
    )
    return tables + sum(p[-1].nbytes for p in counter._products)


def main() -> None:
    """Load, run the network, then time and profile the host work; print tables."""
    args = parse_args()
    cli.quiet_tensorflow()
    start = time.perf_counter()
    source = steps.load_tags_run(args.filtags_file, None, args.batch_size)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    counter = evaluation.TagCounter(
        source.filtags(), source.meta2["class_names"], source.filters_per_layer
    )
    built = time.perf_counter() - start
    folder, split = steps._step1_split(source, None, None, None, args.filtags_file)
    paths, _ = split.files("test")
    paths = paths[: args.batch_size * args.batches]
    probe = source.network.probe(args.batch_size)
    dataset = data.image_dataset(
        [folder / p for p in paths], source.network.spec, args.batch_size
    )
    batches = [probe(images) for images, _ in dataset]
    names = list(source.meta2["class_names"])
    results = steps._ClassResults(names, source.k_q, args.top)
    layer_acts = [probe.split_layers(acts) for acts, _ in batches]

    def counts() -> None:
        for acts in layer_acts:
            counter.stacked(acts)

    stacked = [counter.stacked(acts) for acts in layer_acts]

    def rank() -> None:
        for by_kind in stacked:
            for variant in RANKING_ORDER:
                block = by_kind[variant.kind][1 if variant.last_layer else 0]
                evaluation.rankings(block.reshape(-1, len(names)), names, args.top)

    def add() -> None:
        for acts, (_, outputs) in zip(layer_acts, batches, strict=True):
            rows = [0] * len(outputs)
            results.add(rows, paths[: len(rows)], acts, outputs, counter, names,
                        np.arange(len(rows)))  # fmt: skip
            results.partial.clear()

    def dumps() -> None:
        for acts, (_, outputs) in zip(layer_acts, batches, strict=True):
            rows = [0] * len(outputs)
            results.add(rows, paths[: len(rows)], acts, outputs, counter, names,
                        np.arange(len(rows)))  # fmt: skip
            pickle.dumps(results.pop(0), artifacts.PICKLE_PROTOCOL)

    n = len(batches)
    parts = {name: timed(work, args.repeats) for name, work in
             (("counts", counts), ("rankings", rank), ("add", add),
              ("add + pickle", dumps))}  # fmt: skip
    cpu = {name: c / n for name, (c, _) in parts.items()}
    wall = {name: w / n for name, (_, w) in parts.items()}
    rows = [
        ["TagCounter.stacked (every rule's counts)", cpu["counts"], wall["counts"]],
        ["rankings (4 variants)", cpu["rankings"], wall["rankings"]],
        ["_ClassResults.add (the two above, top-5, lists)", cpu["add"], wall["add"]],
        ["add, then pickling the lists: the host work", cpu["add + pickle"],
         wall["add + pickle"]],
    ]  # fmt: skip
    print(benchlib.machine_line(), end="\n\n")
    print(
        f"{args.filtags_file.name}: {len(names)} classes, "
        f"{sum(source.filters_per_layer)} filters in {len(source.filters_per_layer)} "
        f"layers, k_q {source.k_q[0]}-{source.k_q[-1]} ({2 * len(source.k_q)} rules)"
        f"; batch {args.batch_size}, {n} batches, --top {args.top}\n"
    )
    print(f"- loading the step-2 file and rebuilding the network: {loaded:.1f} s")
    print(f"- building the TagCounter: {built:.1f} s")
    print(f"- counter memory: {counter_bytes(counter) / 2**20:.0f} MiB")
    per_image = np.mean([triples(counter, a) for a in layer_acts]) / args.batch_size
    print(f"- (image, filter, tag) triples per image: {per_image / 1e6:.2f} million")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"- peak RSS of this process so far: {peak:.0f} MiB\n")
    table = [[name, f"{c * 1000:.0f}", f"{w * 1000:.0f}",
              f"{c * 1000 / args.batch_size:.2f}"] for name, c, w in rows]  # fmt: skip
    headers = ["part (per batch)", "CPU ms", "wall ms", "CPU ms per image"]
    print(tabulate(table, headers, tablefmt="github", disable_numparse=True))
    if args.rates:
        best = rates(source, counter, dataset, args.batch_size, args.top,
                     args.repeats)  # fmt: skip
        print("\nImages/s over the same decoded batches, best of interleaved passes:\n")
        table = [[name, f"{rate:.1f}", f"{rate / best['predict']:.2f}"]
                 for name, rate in best.items()]  # fmt: skip
        print(tabulate(table, ["pass", "img/s", "/ predict"], tablefmt="github",
                       disable_numparse=True))  # fmt: skip
    profiler = cProfile.Profile()
    profiler.enable()
    dumps()
    profiler.disable()
    print("\nTop functions by own time (cProfile, one pass):\n")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
