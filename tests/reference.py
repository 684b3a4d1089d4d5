"""Slow, obviously-correct references of the method, to test the fast code against.

They follow the method's text literally: one image at a time, full feature maps
copied out of the model, float64 arithmetic on the host, images read with
Pillow directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import keras
import numpy as np
from PIL import Image

PIL_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def read_image(path: Path, size: tuple[int, int], color_mode: str) -> np.ndarray:
    """Read ``path`` with Pillow: convert the mode, resize (nearest) to (height, width).

    Returns:
        uint8, shape (height, width, channels).
    """
    with Image.open(path) as img:
        img = img.convert(PIL_MODES[color_mode])
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.NEAREST)
        array = np.asarray(img, np.uint8)
    return array[..., None] if array.ndim == 2 else array


def image_filter_activations(maps: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One image: scale each layer output into [0, 1], average each feature map.

    Args:
        maps: per layer, the full output for one image, shape (h, w, filters).

    Returns:
        per layer, float64 shape (filters,).
    """
    result = []
    for layer_output in maps:
        a = np.asarray(layer_output, np.float64)
        low, high = a.min(), a.max()
        scaled = (a - low) / (high - low) if high > low else np.zeros_like(a)
        result.append(scaled.mean(axis=(0, 1)))
    return result


def image_values(
    model: keras.Model,
    layer_names: Sequence[str],
    preprocess: Callable[[np.ndarray], np.ndarray],
    images: Sequence[np.ndarray],
) -> list[list[np.ndarray]]:
    """Every image's filter activations: one ``predict`` per image, float64.

    Returns:
        per image, per layer, float64 shape (filters,).
    """
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    values = []
    for image in images:
        x = preprocess(image[None].astype(np.float32))
        outputs = probe.predict(x, verbose=0)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        values.append(image_filter_activations([o[0] for o in outputs]))
    return values


def class_filter_activations(
    model: keras.Model,
    layer_names: Sequence[str],
    preprocess: Callable[[np.ndarray], np.ndarray],
    images: Sequence[np.ndarray],
    labels: Sequence[int],
    n_classes: int,
) -> list[list[np.ndarray]]:
    """Step 1 by the book: one ``predict`` per image, class means in float64.

    Returns:
        per class, per layer, float64 shape (filters,) (NaN for a class
        without images).
    """
    per_image = image_values(model, layer_names, preprocess, images)
    return class_means(per_image, labels, n_classes)


def class_means(
    per_image: Sequence[Sequence[np.ndarray]], labels: Sequence[int], n_classes: int
) -> list[list[np.ndarray]]:
    """Average the images' filter activations per class, in float64.

    Args:
        per_image: per image, per layer, shape (filters,).
        labels: the class of each image.
        n_classes: number of classes.

    Returns:
        per class, per layer, float64 shape (filters,) (NaN for a class
        without images).
    """
    sums: list[list[np.ndarray] | None] = [None] * n_classes
    counts = np.zeros(n_classes)
    for per_layer, label in zip(per_image, labels, strict=True):
        sums[label] = (
            per_layer
            if sums[label] is None
            else [s + v for s, v in zip(sums[label], per_layer, strict=True)]
        )
        counts[label] += 1
    widths = [len(v) for v in per_image[0]]
    return [
        [np.full(w, np.nan) for w in widths]
        if sums[c] is None
        else [s / counts[c] for s in sums[c]]
        for c in range(n_classes)
    ]


def exemplars(values: Sequence[Sequence[float]], n: int) -> list[list[int]]:
    """Per filter, the n images of largest value, by a plain sort.

    Args:
        values: per image, per filter (all layers side by side), its value.
        n: images per filter.

    Returns:
        per filter, the image indices, by value descending, ties by index.
    """
    n_filters = len(values[0]) if len(values) else 0
    return [
        sorted(range(len(values)), key=lambda i: (-values[i][f], i))[:n]
        for f in range(n_filters)
    ]


# ------------------------------------------------------- steps 2 and 3: the rule
# Exact arithmetic (Fraction) and plain loops, straight from the rule text.


def reference_count(kind, value, n_filters):
    """Filters per row by the rule text; None for the mean rule."""
    if kind == "k":
        return value if 1 <= value <= n_filters else None
    if 1 <= value <= 100:
        return max(1, math.floor(Fraction(value, 100) * n_filters + Fraction(1, 2)))
    return None


def reference_row(row, kind, value):
    """The filter indices one row selects, by plain loops over the rule text."""
    if any(math.isnan(v) for v in row):
        return []
    count = reference_count(kind, value, len(row))
    if count is None:
        mean = sum(Fraction(v) for v in row) / len(row)
        return [j for j, v in enumerate(row) if Fraction(v) > mean]
    order = sorted(range(len(row)), key=lambda j: (-row[j], j))
    return sorted(order[:count])


def reference_tags(class_acts, class_names, kind, value):
    """filTags[value] by loops: per layer, per filter, the names of the classes."""
    tags = []
    for layer in class_acts:
        rows = [reference_row(list(row), kind, value) for row in layer.tolist()]
        tags.append(
            [
                [name for name, row in zip(class_names, rows, strict=True) if f in row]
                for f in range(layer.shape[1])
            ]
        )
    return tags


def reference_mask(values, kind, value):
    mask = np.zeros(values.shape, dtype=bool)
    for i, row in enumerate(values.tolist()):
        mask[i, reference_row(row, kind, value)] = True
    return mask


# ------------------------------------------------- step 3: tag counts, rankings


def reference_counts(tags, image_acts, class_names, kind, value):
    """Per image, {class name: count} over all layers and over the last layer."""
    all_counts, last_counts = [], []
    for i in range(image_acts[0].shape[0]):
        total = dict.fromkeys(class_names, 0)
        for layer_tags, acts in zip(tags, image_acts, strict=True):
            last = dict.fromkeys(class_names, 0)
            for f in reference_row(acts[i].tolist(), kind, value):
                for name in layer_tags[f]:
                    total[name] += 1
                    last[name] += 1
        all_counts.append(total)
        last_counts.append(last)
    return all_counts, last_counts


def reference_ranking(counts, class_names):
    """The classes with a count > 0, by count descending then class index."""
    ranked = sorted(
        (i for i, name in enumerate(class_names) if counts[name] > 0),
        key=lambda i: (-counts[class_names[i]], i),
    )
    return [(class_names[i], counts[class_names[i]]) for i in ranked]


# ------------------------------------------------------------ step 4: hit rates


def reference_hit(top1, ranking, m):
    """The top-1 class is among the first m class names of the ranking."""
    return top1 in [name for name, _ in ranking[:m]]


def reference_rates(top1_by_class, rankings_by_class, m_values):
    """(per_class, total, mean) by counting with loops."""
    per_class, hits, images = {}, {}, 0
    for name, top1 in top1_by_class.items():
        if not top1:
            continue
        images += len(top1)
        per_class[name] = {}
        for k, ranked in rankings_by_class[name].items():
            per_class[name][k] = {}
            for m in m_values:
                n = sum(
                    reference_hit(t, r, m) for t, r in zip(top1, ranked, strict=True)
                )
                per_class[name][k][m] = n / len(top1)
                hits[k, m] = hits.get((k, m), 0) + n
    k_values = list(next(iter(per_class.values())))
    total = {k: {m: hits[k, m] / images for m in m_values} for k in k_values}
    mean = {
        k: {
            m: sum(c[k][m] for c in per_class.values()) / len(per_class)
            for m in m_values
        }
        for k in k_values
    }
    return per_class, total, mean


# ------------------------------------------------------------ the tag check


def zeroed_copy(model: keras.Model, zeroed: dict[str, Sequence[int]]) -> keras.Model:
    """A copy of ``model`` whose listed filters' kernel (and bias) are 0.

    The filter's output channel is then 0 before the layer's activation, and so
    after it when the activation maps 0 to 0 (ReLU, ReLU6, none): the layer's
    output has the channel zeroed, as the ablation asks.

    Args:
        model: the network.
        zeroed: {layer name: filter indices}; Conv2D or DepthwiseConv2D layers
            (depthwise output channel = input channel * multiplier + m).
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for name, filters in zeroed.items():
        layer = copy.get_layer(name)
        assert np.asarray(layer.activation(np.zeros(1, np.float32)))[0] == 0
        weights = layer.get_weights()
        kernel = weights[0]
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = kernel.reshape(*kernel.shape[:2], -1)  # (kh, kw, in * mult)
        kernel[..., list(filters)] = 0  # the output channels' kernels
        weights[0] = kernel.reshape(weights[0].shape)
        if layer.use_bias:
            weights[1][list(filters)] = 0
        layer.set_weights(weights)
    return copy


def probabilities(outputs: np.ndarray) -> np.ndarray:
    """One image's outputs as probabilities: kept when they are, else softmax."""
    outputs = np.asarray(outputs, np.float64)
    if (outputs >= 0).all() and abs(outputs.sum() - 1) <= 1e-3:
        return outputs
    e = np.exp(outputs - outputs.max())
    return e / e.sum()


def own_class_scores(model, image: np.ndarray, target: int) -> tuple[float, ...]:
    """(p, log p, top-1 correct) of one image for its class, by one eager call."""
    outputs = model(image[None].astype(np.float32), training=False)
    p = probabilities(np.asarray(outputs)[0])
    return p[target], math.log(max(p[target], 1e-12)), float(p.argmax() == target)


def reference_drops(
    model: keras.Model,
    copies: Sequence[keras.Model],
    images: Sequence[np.ndarray],
    targets: Sequence[int],
) -> np.ndarray:
    """Mean over images of the drops of (p, log p, correct), per ablated copy.

    Returns:
        float64 (len(copies), 3).
    """
    drops = np.zeros((len(copies), 3))
    for image, target in zip(images, targets, strict=True):
        base = np.array(own_class_scores(model, image, target))
        for i, copy in enumerate(copies):
            drops[i] += base - np.array(own_class_scores(copy, image, target))
    return drops / len(images)


def torch_image_values(
    model,
    layer_names: Sequence[str],
    preprocess: Callable[[np.ndarray], np.ndarray],
    images: Sequence[np.ndarray],
) -> list[list[np.ndarray]]:
    """Every image's filter activations of a PyTorch model, one image at a time.

    The model runs in float64 on a copy whose in-place operations are turned
    off (``inplace=False``), so each selected module's full output (its first
    call) can be kept as it is and scaled on the host.

    Args:
        model: an ``nn.Module`` (not changed).
        layer_names: module paths.
        preprocess: maps float64 pixels 0..255 (h, w, c) to the model's input.
        images: uint8 (h, w, c) each.

    Returns:
        per image, per layer, float64 shape (filters,).
    """
    import copy

    import torch

    twin = copy.deepcopy(model).double().eval()
    for module in twin.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    maps: dict[str, np.ndarray] = {}

    def keep(name):
        def hook(module, args, output):
            maps.setdefault(name, output[0].permute(1, 2, 0).numpy())

        return hook

    for name in layer_names:
        twin.get_submodule(name).register_forward_hook(keep(name))
    values = []
    for image in images:
        maps.clear()
        x = preprocess(image.astype(np.float64)).transpose(2, 0, 1)[None]
        with torch.no_grad():
            twin(torch.from_numpy(np.ascontiguousarray(x)))
        values.append(image_filter_activations([maps[n] for n in layer_names]))
    return values
