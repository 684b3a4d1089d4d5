"""Step 1's computation: scaled filter activations, reduced inside the model graph.

For one image and one selected layer with output ``A`` of shape (h, w, c), the
layer is scaled into [0, 1] by min-max over the whole output (all positions and
filters), ``S = (A - min A) / (max A - min A)`` (0 where max == min), and each
feature map is averaged: ``a[b] = mean(S[:, :, b])``. Because the scaling is
linear, ``a[b] = (mean(A[:, :, b]) - min A) / (max A - min A)``: the graph needs
only the per-image min and max and the per-filter means, so a batch of images
leaves the model as a (batch, filters) matrix, never as full feature maps.

A class's filter activation is the mean of ``a`` over its train images,
accumulated as float64 sums and counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

logger = logging.getLogger(__name__)


def scaled_filter_means(maps: tf.Tensor) -> tf.Tensor:
    """Return each filter's mean of the per-image min-max scaled layer output.

    Args:
        maps: a layer output, shape (batch, h, w, filters).

    Returns:
        float32, shape (batch, filters), values in [0, 1]; 0 for an image whose
        layer output is constant.
    """
    maps = tf.cast(maps, tf.float32)
    low = tf.reduce_min(maps, axis=[1, 2, 3])[:, None]
    high = tf.reduce_max(maps, axis=[1, 2, 3])[:, None]
    means = tf.reduce_mean(maps, axis=[1, 2])
    return tf.math.divide_no_nan(means - low, high - low)


class FilterProbe:
    """One forward pass of a network that returns filter activations and outputs.

    Args:
        model: the network.
        layers: the selected layers of ``model`` (4-D outputs).
        preprocess: maps float32 pixels 0..255, shape (batch, h, w, c), to the
            model's input.
        jit_compile: compile the graph with XLA (falls back to plain TensorFlow
            when XLA cannot compile the model).
        batch_size: smaller batches are padded to this size, so the graph is
            compiled once and an image's values do not depend on the size of
            its batch; None: the size of the first batch.
        strategy: a ``tf.distribute`` strategy whose scope built ``model``;
            with several replicas (e.g. ``MirroredStrategy`` over the GPUs),
            each batch is split between them and the results gathered in
            order. None: the current (default) strategy.

    Calling the probe on uint8 images of shape (batch, h, w, c) returns
    ``(activations, outputs)``: float32 numpy arrays of shape (batch, F), the
    :func:`scaled_filter_means` of all selected layers side by side (F = total
    filters), and (batch, n_outputs), the model's own output.
    """

    def __init__(
        self,
        model: keras.Model,
        layers: list[keras.layers.Layer],
        preprocess: Callable,
        jit_compile: bool = True,
        batch_size: int | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        self.filters_per_layer = [int(layer.output.shape[-1]) for layer in layers]
        self._model = keras.Model(
            model.inputs, [layer.output for layer in layers] + [model.outputs[0]]
        )
        self._preprocess = preprocess
        self._signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8)
        self._batch_size = batch_size or 0
        self._strategy = strategy or tf.distribute.get_strategy()
        self._compile(jit_compile)

    def _compile(self, jit_compile: bool) -> None:
        self.jit_compile = jit_compile
        if self._strategy.num_replicas_in_sync == 1:
            self._graph = tf.function(
                self._forward,
                input_signature=[self._signature],
                jit_compile=jit_compile,
            )
        else:  # one graph runs the forward pass on every replica
            forward = tf.function(self._forward, jit_compile=jit_compile)
            self._graph = tf.function(
                lambda images: self._strategy.run(forward, args=(images,))
            )

    def _forward(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The graph: preprocessing, the network, the in-graph reductions."""
        inputs = self._preprocess(tf.cast(images, tf.float32))
        *maps, outputs = self._model(inputs, training=False)
        activations = tf.concat([scaled_filter_means(m) for m in maps], axis=1)
        return activations, tf.cast(outputs, tf.float32)

    def __call__(self, images: tf.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = tf.convert_to_tensor(images, tf.uint8)
        n = int(images.shape[0])
        replicas = self._strategy.num_replicas_in_sync
        self._batch_size = self._batch_size or n
        padded = -(-max(n, self._batch_size) // replicas) * replicas
        if n < padded:
            images = tf.pad(images, [[0, padded - n], [0, 0], [0, 0], [0, 0]])
        try:
            activations, outputs = self._run(images)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
            if not self.jit_compile:
                raise
            logger.info("XLA cannot compile the model (%s); running without XLA", exc)
            self._compile(False)
            activations, outputs = self._run(images)
        return activations.numpy()[:n], outputs.numpy()[:n]

    def _run(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Run the graph; with several replicas, each gets a slice of the batch."""
        replicas = self._strategy.num_replicas_in_sync
        if replicas == 1:
            return self._graph(images)
        size = int(images.shape[0]) // replicas
        slices = self._strategy.experimental_distribute_values_from_function(
            lambda context: images[
                context.replica_id_in_sync_group * size : (
                    context.replica_id_in_sync_group + 1
                )
                * size
            ]
        )
        per_replica = self._graph(slices)
        return tuple(self._strategy.gather(value, axis=0) for value in per_replica)

    def split_layers(self, activations: np.ndarray) -> list[np.ndarray]:
        """Split (..., F) activations into one array per layer, (..., filters)."""
        return np.split(activations, np.cumsum(self.filters_per_layer)[:-1], axis=-1)


def class_sums(
    probe: FilterProbe,
    batches: Iterable[tuple[tf.Tensor, tf.Tensor]],
    labels: np.ndarray,
    n_classes: int,
    progress: tqdm | None = None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    on_class_done: Callable[[np.ndarray, np.ndarray, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum the filter activations of the images of each class.

    Args:
        probe: the network's :class:`FilterProbe`.
        batches: (images, index) batches, as :func:`filtag.data.image_dataset`
            yields them; ``index`` points into ``labels``, which is sorted.
        labels: int, shape (n_images,): the class index of each image, sorted.
        n_classes: number of classes.
        progress: a progress bar to advance by the images of each batch.
        start: (sums, counts) to continue from (a resumed run), else zeros.
        on_class_done: called as ``on_class_done(sums, counts, consumed)`` after
            each batch that completes a class, ``consumed`` being the number of
            images of ``labels`` read so far (a checkpoint).

    Returns:
        (sums, counts): float64, shape (n_classes, F), and int64, shape
        (n_classes,); the class means are ``sums / counts[:, None]``.
    """
    if start is None:
        sums = np.zeros((n_classes, sum(probe.filters_per_layer)), np.float64)
        counts = np.zeros(n_classes, np.int64)
    else:
        sums, counts = (array.copy() for array in start)
    done = None  # classes below this index are complete
    for images, index in batches:
        activations, _ = probe(images)
        batch_labels = labels[index.numpy()]
        np.add.at(sums, batch_labels, activations.astype(np.float64))
        counts += np.bincount(batch_labels, minlength=n_classes)
        consumed = int(index[-1]) + 1
        if progress is not None:
            progress.update(consumed - progress.n)
        done_before = batch_labels[0] if done is None else done
        done = n_classes if consumed == len(labels) else labels[consumed]
        if on_class_done is not None and done > done_before:
            on_class_done(sums, counts, consumed)
    return sums, counts
