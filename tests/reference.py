"""Slow, obviously-correct references of the method, to test the fast code against.

They follow the method's text literally: one image at a time, full feature maps
copied out of the model, float64 arithmetic on the host, images read with
Pillow directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    sums: list[list[np.ndarray] | None] = [None] * n_classes
    counts = np.zeros(n_classes)
    for image, label in zip(images, labels, strict=True):
        x = preprocess(image[None].astype(np.float32))
        outputs = probe.predict(x, verbose=0)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        per_layer = image_filter_activations([o[0] for o in outputs])
        sums[label] = (
            per_layer
            if sums[label] is None
            else [s + v for s, v in zip(sums[label], per_layer, strict=True)]
        )
        counts[label] += 1
    widths = [int(model.get_layer(n).output.shape[-1]) for n in layer_names]
    return [
        [np.full(w, np.nan) for w in widths]
        if sums[c] is None
        else [s / counts[c] for s in sums[c]]
        for c in range(n_classes)
    ]
