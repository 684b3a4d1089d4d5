"""Step 1's computation: scaled filter activations, reduced inside the model graph.

For one image and one selected layer with output ``A`` of shape (h, w, c), the
layer is scaled into [0, 1] by min-max over the whole output (all positions and
filters), ``S = (A - min A) / (max A - min A)`` (0 where max == min), and each
feature map is averaged: ``a[b] = mean(S[:, :, b])``. Because the scaling is
linear, ``a[b] = (mean(A[:, :, b]) - min A) / (max A - min A)``: the graph needs
only the per-image min and max and the per-filter means, so a batch of images
leaves the model as a (batch, filters) matrix, never as full feature maps.

A class's filter activation is the mean of ``a`` over its train images,
accumulated as float64 sums and counts. A filter's exemplars are the N train
images with the largest ``a``, kept as a running top-N (:class:`Exemplars`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


#: The values of ``--xla``: who compiles the forward pass (see :class:`FilterProbe`).
XLA_MODES = ("auto", "on", "off")


class _ScaledMeans(keras.layers.Layer):
    """Reduce a layer output to its scaled filter means, then pass it on unchanged.

    The layers that read the output wait for the means (a control dependency).
    TensorFlow lets an elementwise op (the next batch normalization's multiply,
    an activation) write its result into its input's buffer only when nothing
    else still holds that buffer: read first, the output is reused in place;
    read beside the next layer, every selected output is copied once more per
    batch (on MobileNetV2 at batch 32, about 30 % of the forward pass).

    Args:
        reduce: maps a layer output (batch, h, w, filters) to float32 (batch,
            filters), e.g. :func:`scaled_filter_means`.
    """

    def __init__(self, reduce: Callable[[tf.Tensor], tf.Tensor], **kwargs) -> None:
        super().__init__(autocast=False, trainable=False, **kwargs)
        self._reduce = reduce

    def call(self, maps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        means = self._reduce(maps)
        with tf.control_dependencies([means]):
            return tf.identity(maps), means

    def compute_output_spec(self, maps):
        means = keras.KerasTensor((maps.shape[0], maps.shape[-1]), "float32")
        return keras.KerasTensor(maps.shape, maps.dtype), means


def probe_model(
    model: keras.Model,
    layers: list[keras.layers.Layer],
    reduce: Callable[[tf.Tensor], tf.Tensor] = scaled_filter_means,
) -> keras.Model:
    """Return ``model`` with each selected layer's output reduced as it is made.

    The network is rebuilt from its own layers (shared, not copied) with a
    :class:`_ScaledMeans` after the first call of each layer of ``layers``.

    Args:
        model: a functional or sequential network.
        layers: its selected layers (4-D outputs).
        reduce: the reduction of one layer output, (batch, h, w, filters) to
            float32 (batch, filters).

    Returns:
        A model with the same input and the outputs ``[means of layers[0], ...,
        means of layers[-1], model output]``.
    """
    chosen = {id(layer) for layer in layers}
    means: dict[int, keras.KerasTensor] = {}

    def call(layer: keras.layers.Layer, *args, **kwargs):
        output = layer(*args, **kwargs)
        if id(layer) in chosen and id(layer) not in means:
            reducer = _ScaledMeans(reduce, name=f"filtag_means_{len(means)}")
            output, means[id(layer)] = reducer(output)
        return output

    network = keras.Model(model.inputs, model.outputs[0])
    rebuilt = keras.models.clone_model(
        network, clone_function=lambda layer: layer, call_function=call
    )
    return keras.Model(
        rebuilt.inputs, [means[id(layer)] for layer in layers] + rebuilt.outputs
    )


def grouped_convolutions(model: keras.Model) -> list[str]:
    """Return the names of ``model``'s depthwise, separable and grouped convolutions.

    Nested models are searched too.
    """
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            names += grouped_convolutions(layer)
        elif (
            isinstance(
                layer, keras.layers.DepthwiseConv2D | keras.layers.SeparableConv2D
            )
            or getattr(layer, "groups", 1) > 1
        ):
            names.append(layer.name)
    return names


def choose_xla(model: keras.Model, on_gpu: bool) -> tuple[bool, str]:
    """Decide ``--xla auto``: whether XLA compiles the whole forward pass.

    A fixed rule, so that a run (and its resumption) always computes the same
    way, costs nothing at start-up and does not depend on timing noise:

    - on a CPU, never (``off``: the network runs as a TensorFlow graph, XLA
      compiles each layer's reductions). Measured on a 2-core x86 CPU for
      VGG16, ResNet50, InceptionV3, MobileNetV2, EfficientNetB0, DenseNet121
      and ConvNeXtTiny (BENCHMARKS.md, "Every network family"): XLA's CPU
      convolutions are up to 10x slower on depthwise and grouped convolutions
      and no faster than TensorFlow's oneDNN kernels on the others, and
      compiling a whole network takes 10-40 s of start-up;
    - on a GPU, unless the network has depthwise, separable or grouped
      convolutions, which XLA lowers to grouped convolutions that run slower
      than TensorFlow's own depthwise kernels (not measured here: no GPU).

    Args:
        model: the network.
        on_gpu: whether the network runs on a GPU.

    Returns:
        (whole, reason): True for ``on``; the reason, for the log.
    """
    if not on_gpu:
        return False, "on a CPU, XLA's convolutions are slower than TensorFlow's"
    grouped = grouped_convolutions(model)
    if grouped:
        return False, (
            f"{len(grouped)} depthwise/grouped convolutions ({grouped[0]}, ...), "
            "which XLA runs slowly"
        )
    return True, "on a GPU, without depthwise or grouped convolutions"


class FilterProbe:
    """One forward pass of a network that returns filter activations and outputs.

    Args:
        model: the network.
        layers: the selected layers of ``model`` (4-D outputs).
        preprocess: maps float32 pixels 0..255, shape (batch, h, w, c), to the
            model's input.
        xla: ``"on"``: XLA compiles the whole forward pass (preprocessing,
            network, reductions); ``"off"``: the network runs as a TensorFlow
            graph and only each layer's reductions are XLA-compiled; ``"auto"``:
            one of the two, chosen by :func:`choose_xla`. Both give the same
            values up to float32 rounding. XLA that cannot compile the model
            falls back to plain TensorFlow.
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

    Attributes:
        xla: the mode asked for.
        xla_whole: True when XLA compiles the whole forward pass.
    """

    def __init__(
        self,
        model: keras.Model,
        layers: list[keras.layers.Layer],
        preprocess: Callable,
        xla: str = "auto",
        batch_size: int | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        if xla not in XLA_MODES:
            raise ValueError(f"xla must be one of {XLA_MODES}; Received: {xla!r}")
        self.filters_per_layer = [int(layer.output.shape[-1]) for layer in layers]
        self.xla = xla
        self._preprocess = preprocess
        self._signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8)
        self._batch_size = batch_size or 0
        self._strategy = strategy or tf.distribute.get_strategy()
        self._model = probe_model(model, layers, self._reduce)
        self._compiled_means = tf.function(scaled_filter_means, jit_compile=True)
        self._xla_usable = True
        self._compile(self._whole_graph(model))

    def _whole_graph(self, model: keras.Model) -> bool:
        """Resolve ``self.xla`` to: does XLA compile the whole forward pass?"""
        if self.xla != "auto":
            whole, reason = self.xla == "on", "asked for"
        else:
            on_gpu = bool(tf.config.list_logical_devices("GPU"))
            whole, reason = choose_xla(model, on_gpu)
        what = "the whole forward pass" if whole else "only each layer's reductions"
        logger.debug("--xla %s: XLA compiles %s (%s)", self.xla, what, reason)
        return whole

    @property
    def xla_used(self) -> str:
        """What XLA compiles: "on" (the whole forward pass), "off" (only the
        reductions) or "none" (nothing: XLA could not compile the model)."""
        if not self._xla_usable:
            return "none"
        return "on" if self.xla_whole else "off"

    def _compile(self, whole: bool) -> None:
        """Build the graph; ``whole``: XLA compiles all of it."""
        self.xla_whole = whole
        if self._strategy.num_replicas_in_sync == 1:
            self._graph = tf.function(
                self._forward, input_signature=[self._signature], jit_compile=whole
            )
        else:  # one graph runs the forward pass on every replica
            forward = tf.function(self._forward, jit_compile=whole)
            self._graph = tf.function(
                lambda images: self._strategy.run(forward, args=(images,))
            )

    def _reduce(self, maps: tf.Tensor) -> tf.Tensor:
        """One layer's :func:`scaled_filter_means`, XLA-compiled while XLA works.

        One compiled function serves all layers: XLA compiles it once per
        distinct output shape.
        """
        if not self._xla_usable:
            return scaled_filter_means(maps)
        return self._compiled_means(maps)

    def _forward(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The graph: preprocessing, the network, the in-graph reductions."""
        inputs = self._preprocess(tf.cast(images, tf.float32))
        *means, outputs = self._model(inputs, training=False)
        return tf.concat(means, axis=1), tf.cast(outputs, tf.float32)

    def __call__(self, images: tf.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = tf.convert_to_tensor(images, tf.uint8)
        n = int(images.shape[0])
        replicas = self._strategy.num_replicas_in_sync
        self._batch_size = self._batch_size or n
        padded = -(-max(n, self._batch_size) // replicas) * replicas
        if n < padded:
            images = tf.pad(images, [[0, padded - n], [0, 0], [0, 0], [0, 0]])
        while True:
            try:
                activations, outputs = self._run(images)
                break
            except (
                tf.errors.InvalidArgumentError,
                tf.errors.UnimplementedError,
            ) as exc:
                if self.xla_used == "none":
                    raise
                self._fall_back(exc)
        return activations.numpy()[:n], outputs.numpy()[:n]

    def _fall_back(self, exc: Exception) -> None:
        """After XLA failed: compile only the reductions, then nothing."""
        if self.xla_whole:
            what = "the model (%s); it compiles only the reductions now"
        else:
            what = "the reductions (%s); running without XLA"
            self._xla_usable = False
        logger.info("XLA cannot compile " + what, exc)
        self._compile(False)

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


class ClassSums:
    """Per-class float64 sums of the images' filter activations, as a run adds them.

    The train images are numbered by their position in step 1's train list,
    sorted by class. A run adds batches in position order and learns which
    classes are finished: every image of theirs was added (or skipped as
    unreadable), so they can be journaled (:mod:`filtag.resume`).

    Args:
        labels: int, shape (n_images,): the class of each position, sorted.
        n_classes: number of classes.
        n_filters: filters of all selected layers together (F).
        finished: classes whose sums a resumed run restores: {class:
            (float64 sums of shape (F,), image count)}; their images are
            not read again.

    Attributes:
        sums: float64, shape (n_classes, F).
        counts: int64, shape (n_classes,).
        positions: int64, the positions still to read, ascending.
    """

    def __init__(
        self,
        labels: np.ndarray,
        n_classes: int,
        n_filters: int,
        finished: dict[int, tuple[np.ndarray, int]] | None = None,
    ) -> None:
        self.labels = np.asarray(labels, np.int64)
        self.sums = np.zeros((n_classes, n_filters), np.float64)
        self.counts = np.zeros(n_classes, np.int64)
        for c, (sums, count) in (finished or {}).items():
            self.sums[c], self.counts[c] = sums, count
        todo = np.ones(n_classes, bool)
        todo[list(finished or {})] = False
        self.positions = np.flatnonzero(todo[self.labels])
        self._open = [c for c in range(n_classes) if todo[c]]
        # the last position of each open class; -1 for a class without images
        last = np.full(n_classes, -1, np.int64)
        last[self.labels[self.positions]] = self.positions
        self._last = last

    def add(self, activations: np.ndarray, index: np.ndarray) -> list[int]:
        """Add a batch; return the classes it finished, in class order.

        Args:
            activations: float32, shape (batch, F): the images' activations.
            index: int, shape (batch,): their positions, ascending, each after
                the positions of earlier batches.
        """
        self.accumulate(activations, index)
        return self._close(lambda c: self._last[c] <= index[-1])

    def accumulate(self, activations: np.ndarray, index: np.ndarray) -> None:
        """Add images in any order, without finishing classes (the caller does).

        Args:
            activations: float32, shape (n, F): the images' activations.
            index: int, shape (n,): their positions, each added once.
        """
        batch_labels = self.labels[index]
        np.add.at(self.sums, batch_labels, activations.astype(np.float64))
        self.counts += np.bincount(batch_labels, minlength=len(self.counts))

    def finish(self) -> list[int]:
        """End of the data: return the classes not finished yet (all are now)."""
        return self._close(lambda c: True)

    def _close(self, done: Callable[[int], bool]) -> list[int]:
        closed = [c for c in self._open if done(c)]
        self._open = [c for c in self._open if c not in closed]
        return closed

    def means(self) -> np.ndarray:
        """Return the class means: float64 (n_classes, F); NaN for an empty class."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts[:, None]


#: An exemplar's rank key packs (value descending, train position ascending)
#: into one int64: the high 32 bits order the float32 value, the low 32 bits
#: hold the position (so positions must be < 2**32).
_POSITION_BITS = 32
_POSITION_MASK = (1 << _POSITION_BITS) - 1
_MAGNITUDE = np.int32(0x7FFFFFFF)
_NAN = np.copysign(np.float32(np.nan), np.float32(-1))  # ranks after -inf
_EMPTY = np.iinfo(np.int64).max  # an empty slot: after every key of a value


def rank_keys(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Return int64 keys that sort ascending as (value descending, position ascending).

    The float32 bits are mapped to int32 in the order of the values (IEEE 754:
    flip the magnitude bits of negative numbers), inverted for descending
    order, and placed above the position. -0.0 counts as 0.0 and every NaN as
    one NaN, ranked after -inf.

    Args:
        values: float32, any shape.
        positions: int64, broadcastable to the shape of ``values``,
            0 <= position < 2**32.

    Returns:
        int64, the broadcast shape; :func:`key_values` and
        :func:`key_positions` read the values and positions back.
    """
    values = np.asarray(values, np.float32) + np.float32(0)  # -0.0 becomes 0.0
    nan = np.isnan(values)
    if nan.any():
        values[nan] = _NAN
    bits = values.view(np.int32)
    bits ^= (bits >> 31) & _MAGNITUDE  # now ordered as the values
    np.invert(bits, out=bits)  # descending
    keys = bits.astype(np.int64)
    keys <<= _POSITION_BITS  # in place: large temporaries cost more than the work
    keys |= positions
    return keys


def key_values(keys: np.ndarray) -> np.ndarray:
    """Return the float32 values of :func:`rank_keys` keys."""
    ordered = ~(keys >> _POSITION_BITS).astype(np.int32)
    return (ordered ^ ((ordered >> 31) & _MAGNITUDE)).view(np.float32)


def key_positions(keys: np.ndarray) -> np.ndarray:
    """Return the int64 positions of :func:`rank_keys` keys."""
    return keys & _POSITION_MASK


def smallest(keys: np.ndarray, n: int) -> np.ndarray:
    """Return the ``n`` smallest keys of each row, ascending.

    Args:
        keys: int64, shape (rows, m >= n).
        n: how many to keep (>= 1).

    Returns:
        int64, shape (rows, n).
    """
    if keys.shape[1] > n:
        keys = np.partition(keys, n - 1, axis=1)[:, :n]
    return np.sort(keys, axis=1)


@dataclass(frozen=True)
class ExemplarDelta:
    """One class's entries of an :class:`Exemplars` top N, for its journal record.

    Attributes:
        filters: unsigned int, shape (entries,): the filter of each entry.
        values: float32, shape (entries,): its value.
        positions: unsigned int, shape (entries,): its image's train position.
    """

    filters: np.ndarray
    values: np.ndarray
    positions: np.ndarray


class Exemplars:
    """Per filter, the N train images with the largest activation, as a run adds them.

    An image's value for a filter is its activation ``a`` (float32, as the
    probe returns it); images rank by value descending, equal values by train
    position ascending (the earlier image of the train list first). The state
    is one :func:`rank_keys` key per kept image, shape (F, N), each row
    ascending, empty slots last: memory O(filters x N).

    Resume: when a class is finished, :meth:`delta` returns the state's entries
    of that class, for its journal record; a resumed run restores the union
    of the finished classes' deltas and reads the other classes again. The
    result is the same as an uninterrupted run's: the state is always the top
    N of a subset of all images, so an image in the top N of all images stays
    in the state from the moment it is added, and is in its class's delta.

    Args:
        labels: int, shape (n_images,): the class of each train position
            (fewer than 2**32 positions).
        n_filters: filters of all selected layers together (F).
        n: images kept per filter (N >= 0).
        finished: the deltas of the classes a resumed run restores.
    """

    def __init__(
        self,
        labels: np.ndarray,
        n_filters: int,
        n: int,
        finished: Iterable[ExemplarDelta] = (),
    ) -> None:
        self.labels = np.asarray(labels, np.int64)
        self._filter_dtype = np.min_scalar_type(max(n_filters - 1, 0))
        self._position_dtype = np.min_scalar_type(max(len(self.labels) - 1, 0))
        self._keys = np.full((n_filters, n), _EMPTY, np.int64)
        self._restore(list(finished))

    def _restore(self, deltas: list[ExemplarDelta]) -> None:
        """Put the top N of the union of ``deltas`` into the (empty) state."""
        if not deltas or not self._keys.size:
            return
        filters = np.concatenate([d.filters for d in deltas]).astype(np.int64)
        keys = rank_keys(
            np.concatenate([d.values for d in deltas]),
            np.concatenate([d.positions for d in deltas]).astype(np.int64),
        )
        order = np.lexsort((keys, filters))
        filters, keys = filters[order], keys[order]
        counts = np.bincount(filters, minlength=len(self._keys))
        rank = np.arange(len(keys)) - np.repeat(np.cumsum(counts) - counts, counts)
        kept = rank < self._keys.shape[1]
        self._keys[filters[kept], rank[kept]] = keys[kept]

    def add(self, activations: np.ndarray, index: np.ndarray) -> None:
        """Merge a batch into the top N.

        Args:
            activations: float32, shape (batch, F): the images' activations.
            index: int, shape (batch,): their positions, each new.
        """
        if not self._keys.size:
            return
        # Only the filters for which an image's value is at least the last
        # kept one can change (any value beats a NaN or an empty slot).
        last = key_values(self._keys[:, -1])
        changed = np.flatnonzero((activations >= last).any(axis=0) | np.isnan(last))
        if not changed.size:
            return
        # most filters: whole arrays (views) instead of gathered copies
        rows = slice(None) if changed.size > len(last) // 2 else changed
        batch = rank_keys(activations[:, rows].T, np.asarray(index, np.int64))
        merged = np.concatenate([self._keys[rows], batch], axis=1)
        self._keys[rows] = smallest(merged, self._keys.shape[1])

    def delta(self, c: int) -> ExemplarDelta:
        """Return the entries of class ``c`` in the top N (once ``c`` is finished)."""
        positions = key_positions(self._keys)
        filters, slots = np.nonzero(self._keys != _EMPTY)
        in_class = self.labels[positions[filters, slots]] == c
        filters, slots = filters[in_class], slots[in_class]
        return ExemplarDelta(
            filters.astype(self._filter_dtype),
            key_values(self._keys[filters, slots]),
            positions[filters, slots].astype(self._position_dtype),
        )

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the exemplars of every filter, best first.

        Returns:
            (values, positions): float32 and int64, shape (F, k), k = min(N,
            images added).
        """
        k = int((self._keys[:1] != _EMPTY).sum())
        keys = self._keys[:, :k]
        return key_values(keys), key_positions(keys)


def class_sums(
    probe: FilterProbe,
    batches: Iterable[tuple[tf.Tensor, tf.Tensor]],
    sums: ClassSums,
    progress: tqdm | None = None,
    on_class_done: Callable[[int], None] | None = None,
    exemplars: Exemplars | None = None,
) -> ClassSums:
    """Run the probe over ``batches`` and add their activations to ``sums``.

    Args:
        probe: the network's :class:`FilterProbe`.
        batches: (images, index) batches, as :func:`filtag.data.image_dataset`
            yields them for the positions ``sums.positions``.
        sums: the accumulator; updated in place.
        progress: a progress bar to advance by the images of each batch.
        on_class_done: called with each class index once the class is
            finished (a journal record), in class order.
        exemplars: a running top N to add the activations to as well.

    Returns:
        ``sums``.
    """
    report = on_class_done or (lambda c: None)
    for images, index in batches:
        activations, _ = probe(images)
        index = index.numpy()
        finished = sums.add(activations, index)
        if exemplars is not None:
            exemplars.add(activations, index)
        if progress is not None:
            done = int(np.searchsorted(sums.positions, index[-1])) + 1
            progress.update(done - progress.n)
        for c in finished:
            report(c)
    for c in sums.finish():
        report(c)
    return sums
