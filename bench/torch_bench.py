"""Benchmark step 1's PyTorch probe beside a plain batched ``model(x)``.

For each torchvision network (random weights), one batch of 224x224 RGB
images (uint8 noise, as the data pipeline delivers them), in this one
process, interleaved, best of ``--repeats`` after a warm-up:

- **model(x)**: the module as torchvision builds it, on the preprocessed float
  batch (NCHW), under ``torch.inference_mode()``: what a user runs;
- **model(x) channels-last**: the same module and batch in channels-last
  memory format;
- **probe**: filtag's probe (:class:`filtag.torch_network.TorchProbe`) on the
  uint8 batch: preprocessing, the forward pass in channels-last, the forward
  hooks that reduce each conv output to (batch, filters), and the copy of
  the (batch, F) activations and outputs to numpy;
- **probe NCHW**: the same probe with the model and input left in NCHW.

With ``--compile``, also ``torch.compile`` of the plain module and of the
probe's forward pass (hooks registered once, reductions inside the compiled
graph); its first call (compilation) is reported apart.

    python bench/torch_bench.py
    python bench/torch_bench.py --networks resnet18 --repeats 3 --compile
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import benchlib  # first: puts the repository on sys.path
import numpy as np
import torch
from tabulate import tabulate

from filtag import networks, torch_network

try:  # PyPI's CUDA torchvision beside torch's CPU build (this project's machines)
    import tests.support.torch_shim  # noqa: F401
except ImportError:
    pass


def best_times(work: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Run each function once (warm-up), then ``repeats`` rounds, interleaved.

    Returns:
        {name: the best seconds of one call}.
    """
    for run in work.values():
        run()
    best = dict.fromkeys(work, float("inf"))
    for _ in range(repeats):
        for name, run in work.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def nchw_probe(net: torch_network.TorchNetwork, batch: int) -> torch_network.TorchProbe:
    """A probe of a copy of ``net`` whose model and input stay NCHW."""
    import copy

    twin = copy.copy(net)
    twin.model = copy.deepcopy(net.model).to(memory_format=torch.contiguous_format)
    inputs = net.inputs
    twin.inputs = lambda images: inputs(images).contiguous()
    return twin.probe(batch)


def compiled_probe(net: torch_network.TorchNetwork) -> Callable[[np.ndarray], object]:
    """The probe's forward pass as one ``torch.compile`` graph (hooks kept)."""
    reduced: dict[str, torch.Tensor] = {}
    for name in net.layer_names:

        def hook(module, args, output, name=name):
            reduced.setdefault(name, torch_network.scaled_filter_means(output))

        net.model.get_submodule(name).register_forward_hook(hook)

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reduced.clear()
        outputs = net.model(x)
        return torch.cat([reduced[n] for n in net.layer_names], 1), outputs

    graph = torch.compile(forward)

    def run(images: np.ndarray) -> object:
        with torch.inference_mode():
            return graph(net.inputs(images))

    return run


def measure(name: str, batch: int, repeats: int, compile_: bool) -> list[object]:
    """Return the table row of one network."""
    net = networks.load_network(f"torchvision:{name}", "none", "conv", "auto", "auto")
    images = np.random.default_rng(0).integers(
        0, 256, (batch, net.spec.height, net.spec.width, 3), dtype=np.uint8
    )
    x = net.inputs(images).contiguous()  # the preprocessed batch, NCHW
    import torchvision

    plain = torchvision.models.get_model(name, weights=None).eval()
    plain_cl = torchvision.models.get_model(name, weights=None).eval()
    plain_cl = plain_cl.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def call(model: torch.nn.Module, inputs: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return model(inputs)

        return run

    probe, probe_nchw = net.probe(batch), nchw_probe(net, batch)
    work = {
        "model(x)": call(plain, x),
        "model(x) channels-last": call(plain_cl, x_cl),
        "probe": lambda: probe(images),
        "probe NCHW": lambda: probe_nchw(images),
    }
    compile_seconds = None
    if compile_:
        compiled = torch.compile(plain_cl)
        started = time.perf_counter()
        call(compiled, x_cl)()
        run = compiled_probe(net)
        run(images)
        compile_seconds = time.perf_counter() - started
        work["compiled model(x)"] = call(compiled, x_cl)
        work["compiled probe"] = lambda: run(images)
    seconds = best_times(work, repeats)
    rates = {key: batch / value for key, value in seconds.items()}
    row = [
        f"{name} ({len(net.layer_names)} conv layers, {sum(net.filters_per_layer)} "
        "filters)",
        batch,
        *(f"{rates[key]:.1f}" for key in work),
        f"**{rates['probe'] / rates['model(x)']:.2f}**",
        f"{rates['probe'] / rates['model(x) channels-last']:.2f}",
    ]
    if compile_:
        row.append(f"{compile_seconds:.0f}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", default="resnet18,mobilenet_v3_small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    print(
        f"Machine: {platform.platform()}, {benchlib.cpu_model()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{'GPU' if torch.cuda.is_available() else 'no GPU'}"
    )
    rows = [
        measure(name, args.batch_size, args.repeats, args.compile)
        for name in args.networks.split(",")
    ]
    columns = ["model(x)", "model(x) channels-last", "probe", "probe NCHW"]
    if args.compile:
        columns += ["compiled model(x)", "compiled probe"]
    headers = ["network", "batch", *(f"{c} img/s" for c in columns),
               "probe / model(x)", "probe / channels-last"]  # fmt: skip
    if args.compile:
        headers.append("compile s")
    print(tabulate(rows, headers, tablefmt="github"))


if __name__ == "__main__":
    main()
