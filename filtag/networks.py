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

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from filtag.data import ImageSpec


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
    """A forward pass with chosen filters switched off per image."""

    filters_per_layer: list[int]

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


def load_network(
    network: str,
    weights: str | None,
    layers: str,
    preprocess: str,
    interpolation: str,
    mixed_precision: bool = False,
) -> Network:
    """Load a network of any framework with its selected layers.

    Args:
        network: a Keras application name or model file, or a PyTorch model
            (see :func:`is_torch_network`).
        weights, layers, preprocess, interpolation, mixed_precision: see
            :data:`filtag.params.PARAMS`.

    Raises:
        FiltagError: the network, its weights or its layers cannot be used.
    """
    from filtag.keras_network import KerasNetwork

    return KerasNetwork.load(
        network, weights, layers, preprocess, interpolation, mixed_precision
    )
