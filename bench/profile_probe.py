"""What bounds step 1's forward pass: the probe timed by sub-graph, per network.

Run by hand (not in CI). For each network (random weights), on one batch of
random images kept in memory (no decoding), the best of ``--repeats``
interleaved runs of:

- network: the plain forward pass (``tf.function`` of the model, no XLA), what
  ``model.predict`` runs;
- probe graph, trivial reductions: ``FilterProbe``'s graph (``--xla off``) with
  each layer's reduction replaced by a constant, i.e. the network as the probe
  runs it (the selected outputs read before their consumers);
- probe: the ``FilterProbe`` as steps 1 and 3 run it (``--xla off``);
- reductions alone: the XLA-compiled reductions of all selected outputs of the
  batch, taken from memory (three reads of each output: min, max, per-filter
  sums), and one ``reduce_max`` of each (a single read: the least any exact
  reduction needs).

Times are per batch, by this process's CPU time (the machine this ran on was
shared; wall time shown too). The table, markdown, goes to stdout.

    python bench/profile_probe.py --networks MobileNetV2,EfficientNetB0,VGG16
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

import benchlib
import keras
import numpy as np
import tensorflow as tf
from tabulate import tabulate

from filtag import activations, models

logger = logging.getLogger("bench")


class TrivialReductions(activations.FilterProbe):
    """The probe's graph with each layer's reduction replaced by zeros."""

    def _reduce(self, maps: tf.Tensor) -> tf.Tensor:
        return tf.zeros((tf.shape(maps)[0], maps.shape[-1]), tf.float32)


def best_times(
    runs: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Return each run's best (CPU seconds, wall seconds), interleaved."""
    for run in runs.values():
        run()
    best = {name: (np.inf, np.inf) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start, cpu = time.perf_counter(), time.process_time()
            run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - start
            best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    return best


def network_rows(network: str, batch: int, repeats: int) -> list[list[str]]:
    """Time the sub-graphs of one network; return its table rows."""
    model = models.load_network(network, "none")
    layers = models.select_layers(model)
    preprocess = models.preprocess_function(models.resolve_preprocess("auto", network))
    spec = models.image_spec(model)
    shape = (batch, spec.height, spec.width, spec.channels)
    images = tf.constant(np.random.default_rng(0).integers(0, 256, shape, np.uint8))
    plain = tf.function(lambda x: model(preprocess(tf.cast(x, tf.float32))))
    probe = activations.FilterProbe(model, layers, preprocess, "off", batch)
    trivial = TrivialReductions(model, layers, preprocess, "off", batch)
    maps = keras.Model(model.inputs, [layer.output for layer in layers])(
        preprocess(tf.cast(images, tf.float32))
    )
    compiled = tf.function(activations.scaled_filter_means, jit_compile=True)
    one_read = tf.function(lambda m: tf.reduce_max(m, axis=[1, 2]), jit_compile=True)
    runs = {
        "network (what predict runs)": lambda: plain(images).numpy(),
        "probe graph, trivial reductions": lambda: trivial(images),
        "probe (--xla off)": lambda: probe(images),
        "reductions alone (3 reads)": lambda: [compiled(m).numpy() for m in maps],
        "one read of each output": lambda: [one_read(m).numpy() for m in maps],
    }
    logger.info("%s: timing %d sub-graphs", network, len(runs))
    best = best_times(runs, repeats)
    mib = sum(int(np.prod(m.shape)) for m in maps) * 4 / 2**20
    base = best["network (what predict runs)"][0]
    rows = []
    for name, (cpu, wall) in best.items():
        rows.append(
            [
                network,
                name,
                f"{cpu * 1000:.0f}",
                f"{cpu / base:.2f}",
                f"{wall * 1000:.0f}",
            ]
        )
    rows[0][1] += f"; selected outputs {mib:.0f} MiB a batch"
    keras.backend.clear_session()
    return rows


def main() -> None:
    """Print the table of every network asked for, and the machine line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--networks", default="MobileNetV2,EfficientNetB0,VGG16")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for network in args.networks.split(","):
        rows += network_rows(network.strip(), args.batch_size, args.repeats)
    headers = ["network", "sub-graph", "CPU ms / batch", "/ network", "wall ms"]
    print(benchlib.machine_line(), end="\n\n")
    print(tabulate(rows, headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
