"""Images: class folders, the deterministic train/test split, and the tf.data input.

The layout is the one of ``keras.utils.image_dataset_from_directory``::

    images_dir/
        class_a/ img1.jpg, sub/img2.png, ...
        class_b/ ...

Classes are the sub-folders in ``sorted()`` order; class index ``i`` is the
``i``-th. Files are found recursively (links to folders are not followed, so a
link loop cannot trap the walk), hidden files and folders (name starting with
``.``) are skipped, and a file counts as an image when Pillow recognises its
content, whatever its extension.
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from filtag.errors import FiltagError

logger = logging.getLogger(__name__)

#: Pillow interpolation names that ``keras.utils.load_img`` accepts.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")

#: Colour modes by number of input channels of the model.
COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


def check_interpolation(interpolation: str) -> str:
    """Return ``interpolation`` if it is one of :data:`INTERPOLATIONS`.

    Raises:
        FiltagError: another value.
    """
    if interpolation not in INTERPOLATIONS:
        raise FiltagError(
            f"--interpolation {interpolation!r} is unknown; use auto or one of "
            f"{', '.join(INTERPOLATIONS)}."
        )
    return interpolation


@dataclass(frozen=True)
class ImageSpec:
    """How images are read for a model: size, colour mode and interpolation.

    Attributes:
        height, width: the size of the images the model gets.
        color_mode: ``grayscale``, ``rgb`` or ``rgba``.
        interpolation: the resampling filter of resizes.
        resize: None: resize to (height, width) directly (as
            ``keras.utils.load_img``). A number N: resize the shorter side to N
            (the longer one in proportion, rounded down), then crop (height,
            width) from the centre, as torchvision's ``Resize(N)`` and
            ``CenterCrop`` do to a PIL image. (h, w): resize to h x w, then crop
            the centre likewise (timm's ``squash`` crop mode).
    """

    height: int
    width: int
    color_mode: str
    interpolation: str = "nearest"
    resize: int | tuple[int, int] | None = None

    @property
    def channels(self) -> int:
        """Channels of the decoded image: 1 (grayscale), 3 (rgb) or 4 (rgba)."""
        return {mode: n for n, mode in COLOR_MODES.items()}[self.color_mode]


@dataclass
class ImageSplit:
    """The images of a folder, split into train and test per class.

    Attributes:
        images_dir: the folder of class sub-folders.
        classes: class names (sub-folder names), index = class index.
        train: per class, the train images as paths relative to ``images_dir``
            with ``/`` separators, sorted.
        test: per class, the test images, same form.
        rejected: files that are not images (relative paths), with the reason.
        hidden: hidden files skipped (relative paths).
    """

    images_dir: Path
    classes: list[str]
    train: list[list[str]]
    test: list[list[str]]
    rejected: dict[str, str] = field(default_factory=dict)
    hidden: list[str] = field(default_factory=list)

    def files(self, part: str) -> tuple[list[str], np.ndarray]:
        """Return the files of ``part`` ("train" or "test") and their class indices.

        Returns:
            (paths, labels): paths by class then path; labels int64, shape (n,).
        """
        per_class = self.train if part == "train" else self.test
        paths = [p for files in per_class for p in files]
        labels = np.repeat(np.arange(len(per_class)), [len(f) for f in per_class])
        return paths, labels.astype(np.int64)


def list_classes(images_dir: Path) -> list[str]:
    """Return the class names: the non-hidden sub-folders of ``images_dir``, sorted.

    Raises:
        FiltagError: the folder does not exist or has no sub-folder.
    """
    if not images_dir.is_dir():
        raise FiltagError(
            f"--images-dir {images_dir} is not a folder; pass a folder with one "
            "sub-folder of images per class."
        )
    classes = sorted(
        entry.name
        for entry in os.scandir(images_dir)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if not classes:
        raise FiltagError(
            f"--images-dir {images_dir} has no class sub-folders; put the images of "
            "each class in a sub-folder named after the class."
        )
    return classes


def _identify(path: Path) -> str | None:
    """Return None when Pillow recognises ``path`` as an image, else the reason."""
    try:
        with Image.open(path) as img:
            img.format  # noqa: B018 - opening parses the header only
    except Image.DecompressionBombError:
        return None  # an image; decoding decides whether it fits the pixel limit
    except UnidentifiedImageError:
        return "not an image file"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return None


def find_images(
    class_dir: Path, images_dir: Path
) -> tuple[list[str], dict[str, str], list[str]]:
    """Find the image files below ``class_dir``, by content.

    Args:
        class_dir: one class folder.
        images_dir: the folder paths are made relative to.

    Returns:
        (images, rejected, hidden): images as sorted relative paths with ``/``
        separators; rejected maps the relative path of every other non-hidden
        file to the reason; hidden lists the hidden files skipped.
    """
    candidates, hidden = [], []
    for root, dirs, files in os.walk(class_dir):
        hidden += [Path(root, d) for d in dirs if d.startswith(".")]
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            (hidden if name.startswith(".") else candidates).append(Path(root, name))
    with ThreadPoolExecutor(max_workers=8) as pool:
        reasons = list(pool.map(_identify, candidates))
    images, rejected = [], {}
    for path, reason in zip(candidates, reasons, strict=True):
        rel = path.relative_to(images_dir).as_posix()
        if reason is None:
            images.append(rel)
        else:
            rejected[rel] = reason
    return (
        sorted(images),
        rejected,
        [p.relative_to(images_dir).as_posix() for p in hidden],
    )


def n_test_images(n: int, split: float) -> int:
    """Return how many of a class's ``n`` images are test images.

    ``floor(split * n + 0.5)``, and at least one test and one train image when
    ``n >= 2``.
    """
    n_test = math.floor(split * n + 0.5)
    return min(max(n_test, 1), n - 1) if n >= 2 else n_test


def split_class(
    files: Sequence[str], split: float, seed: int, class_name: str
) -> tuple[list[str], list[str]]:
    """Split one class's files into train and test, deterministically.

    The sorted files are permuted by a numpy generator seeded with
    ``(seed, crc32(class_name))``, and the first :func:`n_test_images` are test
    images. The result depends only on the set of files, the seed and the class
    name: not on listing order, nor on the other classes.

    Returns:
        (train, test), each sorted.
    """
    ordered = sorted(files)
    key = zlib.crc32(class_name.encode("utf-8", "surrogateescape"))
    order = np.random.default_rng([seed, key]).permutation(len(ordered))
    n_test = n_test_images(len(ordered), split)
    test = sorted(ordered[i] for i in order[:n_test])
    train = sorted(ordered[i] for i in order[n_test:])
    return train, test


def split_images(images_dir: Path, split: float, seed: int) -> ImageSplit:
    """List the classes and images of ``images_dir`` and split each class.

    Files that are not images are logged as warnings and left out. Empty classes
    stay in the class list (class indices do not shift) with a warning.

    Raises:
        FiltagError: ``images_dir`` is not a folder of class folders.
    """
    classes = list_classes(images_dir)
    result = ImageSplit(images_dir, classes, [], [])
    for name in classes:
        images, rejected, hidden = find_images(images_dir / name, images_dir)
        for rel, reason in rejected.items():
            logger.warning("skipped %s: %s", images_dir / rel, reason)
        for rel in hidden:
            logger.info("skipped hidden %s", images_dir / rel)
        result.hidden += hidden
        if not images:
            logger.warning("class %r has no image files in %s", name, images_dir / name)
        result.rejected.update(rejected)
        train, test = split_class(images, split, seed, name)
        result.train.append(train)
        result.test.append(test)
    return result


# ------------------------------------------------------------------------ decoding


#: Pillow modes of the colour modes, and resampling filters of the interpolations.
PIL_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
RESAMPLING = {name: getattr(Image.Resampling, name.upper()) for name in INTERPOLATIONS}


def _eight_bit(img: Image.Image) -> Image.Image:
    """Return a 16- or 32-bit grayscale image scaled to 8 bits (others unchanged).

    Pillow's own conversion clips such values at 255, and ``keras.utils.load_img``
    wraps them around; a 16-bit image keeps its look when divided by 256.
    """
    if img.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return img
    values = np.asarray(img, np.float64)
    top = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
    return Image.fromarray(
        np.clip(values * (255.0 / top), 0, 255).astype(np.uint8), "L"
    )


def _resize_crop(img: Image.Image, spec: ImageSpec) -> Image.Image:
    """Resize ``img`` as ``spec.resize`` says, then crop (height, width) at its centre.

    The sizes and the crop box follow torchvision (``Resize`` of a PIL image:
    the longer side ``int(N * long / short)``, no resize when the size is
    already right; ``CenterCrop``: offsets ``int(round((size - crop) / 2))``).
    """
    width, height = img.size
    if isinstance(spec.resize, int):
        short, long = sorted((width, height))
        new_short, new_long = spec.resize, int(spec.resize * long / short)
        size = (new_short, new_long) if width <= height else (new_long, new_short)
    else:
        size = (spec.resize[1], spec.resize[0])
    if size != img.size:
        img = img.resize(size, RESAMPLING[spec.interpolation])
    left = round((size[0] - spec.width) / 2.0)
    top = round((size[1] - spec.height) / 2.0)
    return img.crop((left, top, left + spec.width, top + spec.height))


def load_image(path: str, spec: ImageSpec) -> np.ndarray | None:
    """Read one image as ``keras.utils.load_img`` does (Pillow, convert, resize).

    With ``spec.resize``, the resize is the model's own (torchvision, timm):
    see :class:`ImageSpec`.

    16-bit images are scaled to 8 bits first. Pillow's pixel limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, about 179 million pixels for an error)
    guards against decompression bombs: a larger image is skipped.

    Args:
        path: the image file.
        spec: target size, colour mode and interpolation.

    Returns:
        uint8 array, shape (spec.height, spec.width, spec.channels), or None
        when the file cannot be decoded (the reason is logged as a warning).
    """
    try:
        with Image.open(path) as img:
            img = _eight_bit(img)
            if img.mode != PIL_MODES[spec.color_mode]:
                img = img.convert(PIL_MODES[spec.color_mode])
            if spec.resize is not None:
                img = _resize_crop(img, spec)
            elif img.size != (spec.width, spec.height):
                img = img.resize(
                    (spec.width, spec.height), RESAMPLING[spec.interpolation]
                )
            array = np.asarray(img, np.uint8)
    except Exception as exc:  # any broken image is skipped, not fatal
        logger.warning(
            "skipped %s: cannot decode (%s: %s)", path, type(exc).__name__, exc
        )
        return None
    return array[..., None] if array.ndim == 2 else array


def decode_threads() -> int:
    """Return how many threads decode images: one per CPU this process may use.

    Pillow releases the GIL while it decodes and resizes (about 80 % of an
    image's time; BENCHMARKS.md), so the threads decode in parallel; a GPU
    that computes a few thousand images a second needs several of them.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


#: Decoded batches tf.data keeps ready ahead of the network.
PREFETCH_BATCHES = 2


def image_dataset(
    paths: Sequence[Path],
    spec: ImageSpec,
    batch_size: int,
    indices: Sequence[int] | None = None,
    threads: int | None = None,
):
    """Return a tf.data pipeline that decodes ``paths`` in parallel, in order.

    Images that cannot be decoded are dropped (and logged by :func:`load_image`).
    The images are decoded by ``threads`` calls at a time in a thread pool of
    the pipeline's own (not TensorFlow's, which computes the network), and come
    out in the order of ``paths`` whatever the number of threads.

    Args:
        paths: the image files.
        spec: how to read them.
        batch_size: images per batch (the last batch may be smaller).
        indices: a number per path, passed along with its image (e.g. its
            position in a longer list a resumed run reads part of); None: the
            positions 0, 1, ... in ``paths``.
        threads: decoding threads; None: :func:`decode_threads`.

    Returns:
        ``tf.data.Dataset`` of (images, index): images uint8, shape
        (batch, spec.height, spec.width, spec.channels); index int64, shape
        (batch,), the ``indices`` of the images.
    """
    import tensorflow as tf

    threads = decode_threads() if threads is None else threads

    shape = (spec.height, spec.width, spec.channels)
    blank = np.zeros(shape, np.uint8)

    def decode(path: bytes) -> tuple[np.ndarray, bool]:
        image = load_image(os.fsdecode(path), spec)
        return (blank, False) if image is None else (image, True)

    def read(
        path: tf.Tensor, index: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        image, ok = tf.numpy_function(
            decode, [path], [tf.uint8, tf.bool], stateful=False
        )
        return tf.ensure_shape(image, shape), ok, index

    def decoded(image: tf.Tensor, ok: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return ok

    def drop_flag(image: tf.Tensor, ok: tf.Tensor, index: tf.Tensor) -> tuple:
        return image, index

    encoded = tf.constant(
        [os.fsencode(p) for p in paths], tf.string, shape=[len(paths)]
    )
    index = tf.constant(
        np.arange(len(paths)) if indices is None else np.asarray(indices),
        tf.int64,
        shape=[len(paths)],
    )
    ds = tf.data.Dataset.from_tensor_slices((encoded, index))
    ds = ds.map(read, num_parallel_calls=threads, deterministic=True)
    ds = ds.filter(decoded).map(drop_flag)
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    # A fixed pipeline: tf.data's autotuning stalled the network between
    # batches in steps of 0.64 s (MobileNetV2 at batch 32: 50 instead of 80
    # images/s, a plain predict 50-95 instead of 100; BENCHMARKS.md section 6).
    options.autotune.enabled = False
    return ds.batch(batch_size).prefetch(PREFETCH_BATCHES).with_options(options)
