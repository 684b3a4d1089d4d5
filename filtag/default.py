"""The embedded default: a small CNN trained on Fashion-MNIST, and real test images.

Everything is made offline on first use and cached in one folder,
:func:`default_root` (``$FILTAG_HOME/default``, else
``$XDG_CACHE_HOME/filtag/default``, else ``~/.cache/filtag/default``):

- ``fashion_mnist_cnn.keras``: the CNN, trained deterministically on the 60,000
  training images (about a minute on 2 CPU cores); it takes raw 0..255
  grayscale pixels (28x28x1) and outputs softmax probabilities;
- ``class_names.txt``: the model's outputs in order (= the sorted class folders);
- ``images/<class>/<n>.png``: the first :data:`IMAGES_PER_CLASS` images of each
  class from the 10,000 Fashion-MNIST *test* images, which the CNN never saw;
- ``accuracy.json``: the CNN's accuracy on all 10,000 test images.

The data come from Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``) or, where that is missing, from
``keras.datasets.fashion_mnist`` (downloads once).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filtag.artifacts import atomic_write_text

logger = logging.getLogger(__name__)

#: Where Debian's dataset-fashion-mnist package puts the IDX files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def default_root() -> Path:
    """Return the folder of the embedded default (see the module text)."""
    if os.environ.get("FILTAG_HOME"):
        return Path(os.environ["FILTAG_HOME"]).expanduser() / "default"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "filtag" / "default"


#: Fashion-MNIST label names in label order; folder-safe ('/' replaced).
LABEL_NAMES = (
    "T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot",
)  # fmt: skip

#: Test images written per class.
IMAGES_PER_CLASS = 300

SEED = 0
EPOCHS = 3


@dataclass(frozen=True)
class DefaultFiles:
    """The paths of the embedded default."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "fashion_mnist_cnn.keras"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def class_names(self) -> Path:
        return self.root / "class_names.txt"

    @property
    def accuracy(self) -> Path:
        return self.root / "accuracy.json"


def _read_idx(path: Path, offset: int) -> np.ndarray:
    """Read a gzipped IDX file's payload as uint8 after an ``offset``-byte header."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_fashion_mnist() -> tuple[
    tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]:
    """Return Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data`` does.

    Returns:
        ((x_train, y_train), (x_test, y_test)): uint8 images, shape (n, 28, 28),
        and uint8 labels, shape (n,), in Fashion-MNIST label order.
    """
    if not (DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        import keras

        logger.info("%s not found; using keras.datasets.fashion_mnist", DEBIAN_DIR)
        return keras.datasets.fashion_mnist.load_data()
    parts = []
    for prefix in ("train", "t10k"):
        images = _read_idx(DEBIAN_DIR / f"{prefix}-images-idx3-ubyte.gz", 16)
        labels = _read_idx(DEBIAN_DIR / f"{prefix}-labels-idx1-ubyte.gz", 8)
        parts.append((images.reshape(-1, 28, 28), labels))
    return parts[0], parts[1]


def folder_order() -> np.ndarray:
    """Return, per Fashion-MNIST label, its index among the sorted class folders."""
    ranks = {name: i for i, name in enumerate(sorted(LABEL_NAMES))}
    return np.array([ranks[name] for name in LABEL_NAMES])


def build_cnn(n_classes: int = len(LABEL_NAMES)):
    """Return the default CNN: 4 convolutions, input raw grayscale 0..255 (28, 28, 1).

    Returns:
        An uncompiled ``keras.Model`` with softmax output, shape (None, n_classes).
    """
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Rescaling(1 / 255, name="rescale"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4"),
            layers.Flatten(name="flatten"),
            layers.Dense(n_classes, activation="softmax", name="predictions"),
        ],
        name="fashion_mnist_cnn",
    )


def train_cnn(x_train: np.ndarray, y_train: np.ndarray, epochs: int = EPOCHS):
    """Train :func:`build_cnn` deterministically (fixed seeds, deterministic ops).

    Args:
        x_train: uint8, shape (n, 28, 28).
        y_train: int class indices (folder order), shape (n,).

    Returns:
        The trained ``keras.Model``.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    model = build_cnn()

    def log_epoch(epoch: int, logs: dict[str, float]) -> None:
        logger.info(
            "training the default CNN: epoch %d of %d, loss %.3f, accuracy %.3f",
            epoch + 1, epochs, logs["loss"], logs["accuracy"],
        )  # fmt: skip

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train[..., None],
        y_train,
        batch_size=128,
        epochs=epochs,
        shuffle=True,
        verbose=0,  # stdout ends with the result's path: progress goes to the log
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)],
    )
    return model


def ensure_default(root: Path | None = None) -> DefaultFiles:
    """Make the embedded default in ``root`` unless it is there already.

    Args:
        root: the folder (None: :func:`default_root`).

    Returns:
        The :class:`DefaultFiles` of ``root``.
    """
    root = root or default_root()
    files = DefaultFiles(root)
    if files.model.is_file() and files.accuracy.is_file():
        return files
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    order = folder_order()
    names = sorted(LABEL_NAMES)
    logger.info("training the default CNN on %d Fashion-MNIST images", len(x_train))
    model = train_cnn(x_train, order[y_train])
    probabilities = model.predict(x_test[..., None], batch_size=512, verbose=0)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == order[y_test]))
    logger.info("default CNN test accuracy: %.4f on %d images", accuracy, len(x_test))

    for label, name in enumerate(LABEL_NAMES):
        folder = files.images_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for n, image in enumerate(x_test[y_test == label][:IMAGES_PER_CLASS]):
            Image.fromarray(image, mode="L").save(folder / f"{n:04d}.png")
    atomic_write_text(files.class_names, "\n".join(names) + "\n")
    tmp = files.model.with_name(f".{files.model.stem}.{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, files.model)
    atomic_write_text(
        files.accuracy,
        json.dumps({"test_accuracy": accuracy, "test_images": len(x_test)}, indent=1)
        + "\n",
    )
    return files
