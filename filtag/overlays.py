"""Feature maps laid over images: the pictures of the filter cards and explanations.

A filter's feature map is first scaled as step 1 scales it (:func:`scale_layer`:
the layer's output for one image, min-max over all its positions and filters,
into [0, 1]), so the mean of the map is the number step 1 records for the
image. For a picture the map is divided by a peak (:func:`normalised`: the
largest value among the pictures shown together, so the strongest spot is the
full colour), upsampled bilinearly to the picture (:func:`upsampled`), coloured
with a fixed ramp (:data:`RAMP`, blue where the filter fires weakly, red where
it fires most) and blended over the image with an opacity that grows with the
value: where the filter does not fire, the image shows as it is
(:func:`overlay`).

Small images (Fashion-MNIST's 28 x 28) are enlarged by a whole factor with
nearest-neighbour so their pixels stay visible; large ones are reduced
(:func:`picture_size`). Pictures are JPEG files (:func:`jpeg`); a filter card
shows its exemplars side by side in one file (:func:`strip`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image
from plotly.colors import hex_to_rgb, sequential

#: The colour ramp, weak to strong: plotly's Turbo without its dark ends
#: (visible on black and on white), float32 RGB 0..255, shape (11, 3).
RAMP = np.array([hex_to_rgb(c) for c in sequential.Turbo[2:13]], np.float32)

#: The opacity of the colour where the map is 1 (it is ``MAX_OPACITY * value``).
MAX_OPACITY = 0.7

#: The width, in pixels, a picture of a filter card or an explanation aims at.
TILE = 96


def scale_layer(maps: np.ndarray) -> np.ndarray:
    """Scale each image's layer output into [0, 1] as step 1 does.

    Args:
        maps: float, shape (batch, h, w, filters): a layer's output.

    Returns:
        float32, same shape: ``(maps - min) / (max - min)`` with min and max
        over each image's whole output (all positions and filters); 0 where
        max == min. The mean of ``[i, :, :, b]`` is step 1's value of filter
        b for image i.
    """
    maps = np.asarray(maps, np.float32)
    low = maps.min(axis=(1, 2, 3), keepdims=True)
    span = maps.max(axis=(1, 2, 3), keepdims=True) - low
    safe = np.where(span > 0, span, 1)
    return np.where(span > 0, (maps - low) / safe, 0).astype(np.float32)


def normalised(maps: np.ndarray, peak: float | None = None) -> np.ndarray:
    """Return ``maps / peak`` clipped into [0, 1]; zeros when the peak is not above 0.

    Args:
        maps: float, any shape (maps in [0, 1] from :func:`scale_layer`).
        peak: the value shown at full colour; None: the largest of ``maps``.
    """
    maps = np.asarray(maps, np.float32)
    top = float(maps.max(initial=0.0)) if peak is None else float(peak)
    if not top > 0:
        return np.zeros_like(maps)
    return np.clip(maps / top, 0.0, 1.0)


def picture_size(height: int, width: int, target: int = TILE) -> tuple[int, int]:
    """Return the (height, width) of a picture of an image of ``height x width``.

    An image at most ``target`` wide is enlarged by the largest whole factor
    that keeps it at most ``target`` wide (at least 1); a wider one is reduced
    to ``target`` wide, its aspect kept.
    """
    if width <= target:
        factor = max(1, target // width)
        return height * factor, width * factor
    return max(1, round(height * target / width)), target


def upsampled(fmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a map (h, w) to ``size`` = (height, width) bilinearly; float32."""
    fmap = np.asarray(fmap, np.float32)
    if fmap.shape == size:
        return fmap
    image = Image.fromarray(fmap).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32)


def colours(values: np.ndarray) -> np.ndarray:
    """Return the ramp's colour of values in [0, 1], interpolated: float32 (..., 3)."""
    position = np.clip(values, 0.0, 1.0) * (len(RAMP) - 1)
    low = np.minimum(position.astype(np.int64), len(RAMP) - 2)
    fraction = (position - low)[..., None]
    return RAMP[low] * (1 - fraction) + RAMP[low + 1] * fraction


def picture(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Return an image as RGB at ``size`` = (height, width).

    Args:
        image: uint8 (h, w, channels), 1 (grey), 3 (RGB) or 4 (RGBA, the
            alpha channel is dropped) channels.
        size: the picture's (height, width); larger than the image:
            nearest-neighbour (pixels stay square), else Lanczos.

    Returns:
        uint8, shape (height, width, 3).
    """
    image = np.asarray(image, np.uint8)
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]
    if rgb.shape[:2] == size:
        return rgb
    enlarge = size[0] >= rgb.shape[0] and size[1] >= rgb.shape[1]
    method = Image.Resampling.NEAREST if enlarge else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), method))


#: The blend of :func:`overlay` for values ``i / 255``: the image's weight
#: ``1 - a`` and the colour's part ``a * colour``, a = MAX_OPACITY * value.
_LEVELS = np.linspace(0.0, 1.0, 256, dtype=np.float32)
_KEEP = (1 - MAX_OPACITY * _LEVELS)[:, None]
_ADD = (MAX_OPACITY * _LEVELS)[:, None] * colours(_LEVELS)


def overlay(image: np.ndarray, fmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Lay a map over an image: the ramp's colour, as opaque as the map is strong.

    Args:
        image: uint8 (h, w, channels): the image as the network sees it.
        fmap: float (h', w'), values in [0, 1] (:func:`normalised`); any
            resolution, upsampled to ``size``.
        size: the picture's (height, width), e.g. :func:`picture_size`.

    Returns:
        uint8 (height, width, 3): ``(1 - a) * image + a * colour``, with
        ``a = MAX_OPACITY * value`` and ``colour`` = :func:`colours` of the
        upsampled map at each pixel, the value rounded to a step of 1/255.
    """
    levels = np.rint(np.clip(upsampled(fmap, size), 0.0, 1.0) * 255).astype(np.uint8)
    blended = picture(image, size) * _KEEP[levels] + _ADD[levels]
    return np.rint(blended).astype(np.uint8)


def strip(pictures: Sequence[np.ndarray]) -> np.ndarray:
    """Return pictures of one size side by side: uint8 (height, n * width, 3)."""
    return np.concatenate(list(pictures), axis=1)


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """Return an RGB picture, uint8 (height, width, 3), as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def legend_html() -> str:
    """Return a small legend of the ramp: a gradient bar from weak to strong."""
    stops = ", ".join(
        f"rgba({r:.0f},{g:.0f},{b:.0f},{MAX_OPACITY * i / (len(RAMP) - 1):.2f})"
        for i, (r, g, b) in enumerate(RAMP)
    )
    return (
        '<p class="legend">Colour over an image: where the filter fires '
        "(its feature map, upsampled): "
        f'<span class="ramp" style="background:linear-gradient(to right, {stops})">'
        "</span> weak &rarr; strong; where it does not fire, the image shows "
        "as it is.</p>"
    )
