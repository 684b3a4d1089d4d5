"""Channel ablation in a Keras network: zero chosen filters, one forward pass.

:class:`ChannelAblator` runs a network with the output of each chosen layer
multiplied, channel by channel, by a mask given per image: 1 keeps a filter, 0
switches it off. The masks are an input of ONE compiled graph, so every
ablation set (every class's tagged filters, every random draw) and the
unablated network (all ones) share it, and a batch may mix ablation sets, one
mask row per image.

What is ablated is the layer's output, the tensor step 1 reads
(``layer.output``). For a ``Conv2D`` with a fused activation (e.g.
``activation="relu"``) that output is after the activation, and multiplying it
by 0 zeroes the filter's feature map as the next layer sees it; when the
activation maps 0 to 0 (ReLU, ReLU6, linear), that is the same as setting the
filter's kernel and bias to 0. For a convolution without activation that a
BatchNormalization follows (EfficientNet, ResNet), the convolution's output is
zeroed and the normalisation then maps it to its constant offset: the filter
carries no information about the image any more, as with any ablation at that
tensor (Bau et al., PNAS 2020, zero a unit's output the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf


class _MaskFeed:
    """The masks of the forward pass being traced (None outside a trace)."""

    masks: tf.Tensor | None = None


class _Masked(keras.layers.Layer):
    """A chosen layer whose output is multiplied by its columns of the masks.

    Wraps the network's own layer (its weights are shared, not copied).

    Args:
        layer: the chosen layer (4-D output: batch, h, w, filters).
        feed: where the traced forward pass puts the masks (batch, F).
        start, stop: the layer's columns of the masks.
    """

    def __init__(
        self, layer: keras.layers.Layer, feed: _MaskFeed, start: int, stop: int
    ) -> None:
        super().__init__(name=f"{layer.name}_filtag_ablated")
        self.layer = layer
        self.feed = feed
        self.start = start
        self.stop = stop

    def call(self, inputs, training=None):
        outputs = self.layer(inputs, training=training)
        mask = self.feed.masks[:, self.start : self.stop]
        return outputs * tf.cast(mask[:, None, None, :], outputs.dtype)

    def compute_output_spec(self, *args, **kwargs):
        return self.layer.compute_output_spec(*args, **kwargs)


class ChannelAblator:
    """A network whose chosen layers' filters are switched off by per-image masks.

    Args:
        model: the network (Sequential or Functional; the chosen layers are
            its own layers, not those of a nested model).
        layer_names: the chosen layers, each with a 4-D output (batch, h, w,
            filters); their filters are the mask columns, layer after layer
            in this order (F = their filters together).
        preprocess: maps float32 pixels 0..255, shape (batch, h, w, c), to the
            model's input.

    Calling it on uint8 images (b, h, w, c) and float32 masks (b, F) returns
    the network's outputs, float32 numpy (b, n_outputs), with each chosen
    layer's output multiplied by the image's mask row (channel j of the layer
    by the mask column of filter j). Batches smaller than the largest seen so
    far are padded to it, so the graph is traced once for a run. The graph is
    not XLA-compiled: on CPUs, XLA made EfficientNet-Lite0 (depthwise
    convolutions) 14x slower and the default CNN no faster.

    Raises:
        ValueError: a name is not a layer of ``model`` with a 4-D output.
    """

    def __init__(
        self,
        model: keras.Model,
        layer_names: Sequence[str],
        preprocess: Callable,
    ) -> None:
        layers = [model.get_layer(name) for name in layer_names]
        for layer in layers:
            if len(layer.output.shape) != 4:
                raise ValueError(
                    f"layer {layer.name!r}: expected a 4-D output (batch, h, w, "
                    f"filters); received shape {layer.output.shape}"
                )
        self.filters_per_layer = [int(layer.output.shape[-1]) for layer in layers]
        stops = np.cumsum(self.filters_per_layer).tolist()
        columns = {
            layer.name: (stop - n, stop)
            for layer, n, stop in zip(
                layers, self.filters_per_layer, stops, strict=True
            )
        }
        self._feed = _MaskFeed()

        def masked(layer: keras.layers.Layer) -> keras.layers.Layer:
            if layer.name not in columns:
                return layer  # shared with ``model``: no copy of the weights
            return _Masked(layer, self._feed, *columns[layer.name])

        self._model = keras.models.clone_model(model, clone_function=masked)
        self._preprocess = preprocess
        self._batch = 0
        self._graph = tf.function(self._forward)

    @property
    def n_filters(self) -> int:
        """The mask width F: the filters of the chosen layers together."""
        return sum(self.filters_per_layer)

    def _forward(self, images: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
        """The graph: preprocessing, then the network with the masks applied."""
        self._feed.masks = masks  # read by the _Masked layers while tracing
        try:
            outputs = self._model(
                self._preprocess(tf.cast(images, tf.float32)), training=False
            )
        finally:
            self._feed.masks = None
        return tf.cast(outputs, tf.float32)

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.uint8)
        masks = np.asarray(masks, np.float32)
        n = images.shape[0]
        if masks.shape != (n, self.n_filters):
            raise ValueError(
                f"masks: expected shape ({n}, {self.n_filters}); received {masks.shape}"
            )
        self._batch = max(self._batch, n)
        if n < self._batch:
            images = np.concatenate(
                [images, np.zeros((self._batch - n, *images.shape[1:]), np.uint8)]
            )
            masks = np.concatenate(
                [masks, np.ones((self._batch - n, self.n_filters), np.float32)]
            )
        return self._graph(images, masks).numpy()[:n]
