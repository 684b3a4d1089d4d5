"""A Keras network behind the seam of :mod:`filtag.networks`.

Loading, layer selection and preprocessing are in :mod:`filtag.models`; the
probe is :class:`filtag.activations.FilterProbe`, the ablation
:class:`filtag.keras_ablation.ChannelAblator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filtag.data import ImageSpec
from filtag.networks import NetworkRequest


@dataclass
class KerasNetwork:
    """A Keras model, its selected layers and how its images are read.

    Build it with :meth:`load`. See :class:`filtag.networks.Network`.

    Attributes:
        model: the ``keras.Model``.
        layers: the selected Keras layers.
        strategy: the ``tf.distribute`` strategy the model was built in.
    """

    name: str
    model_file: Path | None
    model: Any
    layers: list
    spec: ImageSpec
    preprocess: str
    strategy: Any
    framework: str = "keras"
    _maps: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, request: NetworkRequest) -> KerasNetwork:
        """Load a ``keras.applications`` network or a ``.keras``/``.h5`` file.

        Args:
            request: what to load (free input dimensions: 224 without an
                image size).

        Raises:
            FiltagError: the network, its weights or its layers cannot be used.
        """
        from filtag import models, networks

        network = request.network
        strategy = models.distribution()
        preprocess = models.resolve_preprocess(request.preprocess, network)
        with strategy.scope():
            model = models.load_network(network, request.weights)
            if request.mixed_precision:
                model = models.mixed_precision(model)
        spec = models.image_spec(model, request.interpolation, request.image_size)
        for what, values in zip(
            ("mean", "std"), networks.mean_std(preprocess) or (), strict=False
        ):
            networks.check_channels(values, spec.channels, what)
        return cls(
            models.network_name(network),
            Path(network) if models.is_model_file(network) else None,
            model,
            models.select_layers(model, request.layers),
            spec,
            preprocess,
            strategy,
        )

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def filters_per_layer(self) -> list[int]:
        return [int(layer.output.shape[-1]) for layer in self.layers]

    @property
    def n_outputs(self) -> int:
        return int(self.model.output_shape[-1])

    def _preprocess_function(self) -> Any:
        from filtag import models

        return models.preprocess_function(self.preprocess)

    def probe(self, batch_size: int, xla: str = "auto") -> Any:
        """Return the network's :class:`filtag.activations.FilterProbe`."""
        from filtag import activations

        return activations.FilterProbe(
            self.model,
            self.layers,
            self._preprocess_function(),
            xla=xla,
            batch_size=batch_size,
            strategy=self.strategy,
        )

    def ablator(self, layer_names: Sequence[str]) -> Any:
        """Return a :class:`filtag.keras_ablation.ChannelAblator` of ``layer_names``."""
        from filtag import keras_ablation

        return keras_ablation.ChannelAblator(
            self.model, list(layer_names), self._preprocess_function()
        )

    def feature_maps(self, images: Any, layer: str) -> np.ndarray:
        """Return the output of the selected layer ``layer``: float32 (b, h, w, f)."""
        import keras
        import tensorflow as tf

        if layer not in self._maps:
            output = self.model.get_layer(layer).output
            self._maps[layer] = keras.Model(self.model.inputs, output)
        inputs = self._preprocess_function()(tf.cast(images, tf.float32))
        return np.asarray(self._maps[layer](inputs, training=False), np.float32)

    def describe(self) -> dict[str, Any]:
        """Return the framework, for ``meta``."""
        return {"framework": self.framework}
