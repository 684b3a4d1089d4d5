"""Networks behind one seam: what the steps need from a network, whatever its framework.

The steps never touch a framework. They load a :class:`Network` with
:func:`load_network` and use its :class:`Probe` (one forward pass: per-filter
scaled means and outputs), its :class:`Ablator` (a forward pass with filters
switched off, for ``filtag check``) and its feature maps (for the overlays of
the pages). A Keras network is a :class:`filtag.keras_network.KerasNetwork`; a
PyTorch one lives in its own module; a third framework (ONNX, JAX) is one new
module and one line in :func:`load_network`.

Images enter every framework the same way: uint8 arrays (batch, height,
width, channels) from :func:`filtag.data.image_dataset`, pixels 0..255; each
network applies its own preprocessing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from filtag.data import ImageSpec
from filtag.errors import FiltagError

#: The preprocessing that divides pixels by 255, subtracts a mean, divides by a
#: standard deviation; recorded as ``"mean-std M/S"`` (M, S: comma lists).
MEAN_STD = "mean-std"

#: What to install for a PyTorch model.
TORCH_EXTRA = "pip install 'filtag[torch]'"


class Probe(Protocol):
    """One forward pass that returns filter activations and outputs.

    Attributes:
        filters_per_layer: the filters of each selected layer, in order.
        xla_used: what XLA compiles, recorded in the step files' meta: "on"
            (the whole forward pass), "off" (only the reductions) or "none".
    """

    filters_per_layer: list[int]
    xla_used: str

    def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """Run a batch.

        Args:
            images: uint8, shape (batch, height, width, channels).

        Returns:
            ``(activations, outputs)``: float32 (batch, F), each selected
            layer's per-filter mean of its per-image min-max scaled output,
            layers side by side (F = all their filters); float32 (batch,
            n_outputs), the network's own output.
        """
        ...

    def split_layers(self, activations: np.ndarray) -> list[np.ndarray]:
        """Split (..., F) activations into one array per layer, (..., filters)."""
        ...


class Ablator(Protocol):
    """A forward pass with chosen filters switched off per image.

    Attributes:
        filters_per_layer: the filters of each chosen layer, in order.
        n_filters: the mask width F, their sum.
    """

    filters_per_layer: list[int]
    n_filters: int

    def __call__(self, images: Any, masks: np.ndarray) -> np.ndarray:
        """Run a batch with each chosen layer's output multiplied by a mask.

        Args:
            images: uint8, shape (batch, height, width, channels).
            masks: float32, shape (batch, F): per image, 1 keeps a filter of
                the chosen layers (side by side), 0 switches it off.

        Returns:
            float32 (batch, n_outputs): the network's outputs.
        """
        ...


class Network(Protocol):
    """A loaded network and the layers whose filters filtag tags.

    Attributes:
        name: the name in file names (an application or model name, a file stem).
        framework: ``"keras"`` or ``"torch"``.
        model_file: the file the network came from (its SHA-256 is recorded),
            or None.
        spec: how its images are read (size, colour mode, interpolation).
        preprocess: the preprocessing, as recorded in ``meta``.
        layer_names: the selected layers.
        filters_per_layer: their filters.
        n_outputs: the network's outputs (classes).
    """

    name: str
    framework: str
    model_file: Path | None
    spec: ImageSpec
    preprocess: str
    layer_names: list[str]
    filters_per_layer: list[int]
    n_outputs: int

    def probe(self, batch_size: int, xla: str = "auto") -> Probe:
        """Return the network's probe; batches are padded to ``batch_size``.

        ``xla``: ``--xla`` (auto, on, off); a framework without XLA ignores it.
        """
        ...

    def ablator(self, layer_names: Sequence[str]) -> Ablator:
        """Return a forward pass whose ``layer_names`` filters can be switched off."""
        ...

    def feature_maps(self, images: Any, layer: str) -> np.ndarray:
        """Return one selected layer's output for a batch (for overlays).

        Args:
            images: uint8, shape (batch, height, width, channels).
            layer: a name of :attr:`layer_names`.

        Returns:
            float32, shape (batch, h, w, filters): the tensor step 1 reduces.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """Return what ``meta`` records of the network besides the common keys."""
        ...


def is_torch_network(network: str) -> bool:
    """Tell whether ``network`` names a PyTorch model.

    ``torchvision:NAME``, ``timm:NAME``, ``FILE.py:FACTORY`` and
    ``package.module:FACTORY`` are PyTorch; anything else (a
    ``keras.applications`` name, a ``.keras``/``.h5`` file) is Keras.
    """
    head, colon, tail = network.partition(":")
    if not colon or not tail or "/" in tail:
        return False
    return (
        head in ("torchvision", "timm")
        or head.endswith(".py")
        or (
            tail.isidentifier() and all(part.isidentifier() for part in head.split("."))
        )
    )


@dataclass(frozen=True)
class NetworkRequest:
    """What to load: the inputs every framework's ``load`` takes.

    Attributes:
        network: a Keras application name or model file, or a PyTorch model
            (see :func:`is_torch_network`).
        weights, layers, interpolation, mixed_precision: see
            :data:`filtag.params.PARAMS`.
        preprocess: ``--preprocess``, with ``--mean``/``--std`` folded in as a
            ``"mean-std M/S"`` (:func:`with_mean_std`).
        image_size: (height, width) for free input dimensions; None: the
            model's own (else 224).
    """

    network: str
    weights: str | None
    layers: str
    preprocess: str
    interpolation: str
    mixed_precision: bool = False
    image_size: tuple[int, int] | None = None


def load_network(
    network: str,
    weights: str | None,
    layers: str,
    preprocess: str,
    interpolation: str,
    mixed_precision: bool = False,
    image_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Network:
    """Load a network of any framework with its selected layers.

    Args:
        network: a Keras application name or model file, or a PyTorch model
            (see :func:`is_torch_network`).
        weights, layers, preprocess, interpolation, mixed_precision,
        image_size, mean, std: see :data:`filtag.params.PARAMS`;
            ``preprocess`` may also be a recorded ``"mean-std M/S"``.

    Raises:
        FiltagError: the network, its weights or its layers cannot be used,
            or it is a PyTorch model and torch is not installed.
    """
    size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
    request = NetworkRequest(
        network, weights, layers, with_mean_std(preprocess, mean, std),
        interpolation, mixed_precision, size,
    )  # fmt: skip
    if is_torch_network(network):
        try:
            from filtag.torch_network import TorchNetwork
        except ImportError as exc:
            if exc.name != "torch":
                raise
            raise FiltagError(
                f"--network {network}: PyTorch models need torch: {TORCH_EXTRA}"
            ) from None
        return TorchNetwork.load(request)
    from filtag.keras_network import KerasNetwork

    return KerasNetwork.load(request)


# ----------------------------------------------------------------- preprocessing


def with_mean_std(
    preprocess: str, mean: Sequence[float] | None, std: Sequence[float] | None
) -> str:
    """Return ``preprocess`` with ``--mean`` and ``--std`` in, as ``meta`` records it.

    Args:
        preprocess: the ``--preprocess`` value; ``mean-std`` needs ``mean``
            and ``std``; ``auto`` with both becomes ``mean-std``.
        mean, std: one value, or one per channel (None: not given).

    Returns:
        ``"mean-std M/S"`` (M, S: comma lists, each number as Python prints
        it, so the text reads back to the same floats), or ``preprocess``.

    Raises:
        FiltagError: only one of ``mean`` and ``std``; them with another
            preprocessing; ``mean-std`` without them; a std that is not > 0.
    """
    if mean is None and std is None:
        if preprocess == MEAN_STD:
            raise FiltagError(
                "--preprocess mean-std needs --mean and --std (one value, or one "
                "per channel, e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)."
            )
        if preprocess.startswith(MEAN_STD):
            mean_std(preprocess)  # a recorded value: checked
        return preprocess
    if mean is None or std is None or preprocess not in ("auto", MEAN_STD):
        raise FiltagError(
            "--mean and --std go together, with --preprocess mean-std (or auto); "
            f"received --preprocess {preprocess}, --mean {mean}, --std {std}."
        )
    if not all(value > 0 for value in std):
        raise FiltagError(f"--std {std}: every value must be > 0.")
    return f"{MEAN_STD} {_numbers(mean)}/{_numbers(std)}"


def _numbers(values: Sequence[float]) -> str:
    return ",".join(repr(float(value)) for value in values)


def mean_std(preprocess: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Return the (mean, std) of a recorded ``"mean-std M/S"``; None for another value.

    Raises:
        FiltagError: a ``mean-std`` text that is not two comma lists of numbers
            (std > 0).
    """
    if not preprocess.startswith(MEAN_STD + " "):
        return None
    try:
        mean, std = (
            tuple(float(item) for item in part.split(","))
            for part in preprocess.removeprefix(MEAN_STD + " ").split("/")
        )
    except ValueError:
        mean, std = (), ()
    if not mean or not std or not all(value > 0 for value in std):
        raise FiltagError(
            f"--preprocess {preprocess!r}: expected 'mean-std M/S' with M and S "
            "comma lists of numbers, S > 0 (or --preprocess mean-std --mean M --std S)."
        )
    return mean, std


def check_channels(values: Sequence[float], channels: int, what: str) -> None:
    """Refuse a per-channel list that has neither 1 nor ``channels`` values.

    Raises:
        FiltagError: ``values`` does not fit images of ``channels`` channels.
    """
    if len(values) not in (1, channels):
        raise FiltagError(
            f"--{what} {_numbers(values)} has {len(values)} values but the model "
            f"reads {channels}-channel images; give one value or {channels}."
        )


# ------------------------------------------------------------------------ layers


def choose_layers(names: Sequence[str], conv: Sequence[bool], rule: str) -> list[int]:
    """Return the positions of the layers that ``--layers`` selects, in order.

    Args:
        names: every layer's name (Keras layer names, PyTorch module paths).
        conv: per layer, whether it is a 2-D convolution.
        rule: ``conv`` (every 2-D convolution); ``name`` (``'conv'`` in the
            name, the original rule); a comma list of names; or a regular
            expression searched in the names.

    Raises:
        FiltagError: ``rule`` is none of these (an invalid regular expression).
    """
    items = [item.strip() for item in rule.split(",")]
    if rule == "conv":
        return [i for i, is_conv in enumerate(conv) if is_conv]
    if rule == "name":
        return [i for i, name in enumerate(names) if "conv" in name]
    if all(item in names for item in items):
        return [i for i, name in enumerate(names) if name in items]
    try:
        pattern = re.compile(rule)
    except re.error as exc:
        raise FiltagError(
            f"--layers {rule!r} is neither conv, name, a list of layer names nor "
            f"a regular expression ({exc})."
        ) from None
    return [i for i, name in enumerate(names) if pattern.search(name)]
