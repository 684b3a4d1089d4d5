"""Image folders: classes, content-based discovery, the split, the tf.data input."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from filtag import data
from filtag.data import ImageSpec
from filtag.errors import FiltagError
from tests.reference import read_image


@pytest.mark.parametrize(
    ("n", "split", "expected"),
    [
        (0, 0.2, 0),
        (1, 0.2, 0),
        (1, 0.6, 1),
        (2, 0.2, 1),  # floor(0.9) = 0, at least one test image
        (2, 0.9, 1),  # floor(2.3) = 2, at least one train image
        (5, 0.2, 1),
        (5, 0.3, 2),  # floor(2.0)
        (10, 0.25, 3),  # floor(3.0)
        (10, 0.35, 4),  # floor(4.0): a half rounds up
        (10, 0.34, 3),
        (300, 0.2, 60),
    ],
)
def test_test_image_count(n: int, split: float, expected: int) -> None:
    assert data.n_test_images(n, split) == expected


def test_split_is_deterministic_and_order_independent() -> None:
    files = [f"c/{i:03d}.png" for i in range(57)]
    train, test = data.split_class(files, 0.2, 123, "c")
    shuffled = files[:]
    random.Random(1).shuffle(shuffled)
    assert data.split_class(shuffled, 0.2, 123, "c") == (train, test)
    assert len(test) == 11 and len(train) == 46
    assert sorted(train + test) == files and not set(train) & set(test)
    assert train == sorted(train) and test == sorted(test)
    assert data.split_class(files, 0.2, 124, "c")[1] != test
    assert data.split_class(files, 0.2, 123, "d")[1] != test


def _png(path: Path, size=(8, 8), mode="L", value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path, format="PNG")
    return path


def test_folder_discovery_by_content(tmp_path: Path, caplog) -> None:
    root = tmp_path / "images"
    _png(root / "b" / "x.png")
    _png(root / "b" / "deep" / "y.dat")  # a PNG whatever its extension
    (root / "b" / "notes.jpg").write_text("not an image")
    (root / "b" / "empty.png").write_bytes(b"")
    _png(root / "b" / ".hidden.png")
    _png(root / "b" / ".cache" / "z.png")
    _png(root / "a" / "1.png")
    (root / "c_empty").mkdir()
    (root / ".git").mkdir()
    with caplog.at_level(logging.INFO, "filtag"):
        split = data.split_images(root, 0.5, 1)
    assert split.classes == ["a", "b", "c_empty"]
    assert sorted(split.train[1] + split.test[1]) == ["b/deep/y.dat", "b/x.png"]
    assert split.rejected == {
        "b/notes.jpg": "not an image file",
        "b/empty.png": "not an image file",
    }
    assert split.train[2] == split.test[2] == []
    assert (
        "b/notes.jpg" in caplog.text and "'c_empty' has no image files" in caplog.text
    )
    assert ".hidden.png" in caplog.text  # logged as skipped, never read


def test_split_of_one_class_ignores_the_others(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for i in range(20):
        _png(root / "m" / f"{i}.png")
    before = data.split_images(root, 0.2, 5)
    _png(root / "a_new" / "0.png")
    after = data.split_images(root, 0.2, 5)
    assert (before.train[0], before.test[0]) == (after.train[1], after.test[1])
    paths, labels = after.files("train")
    assert paths == after.train[0] + after.train[1]
    np.testing.assert_array_equal(labels, [0] * len(after.train[0]) + [1] * 16)


def test_missing_or_flat_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FiltagError, match=r"--images-dir .* is not a folder"):
        data.split_images(tmp_path / "nope", 0.2, 1)
    _png(tmp_path / "flat.png")
    with pytest.raises(FiltagError, match="has no class sub-folders"):
        data.split_images(tmp_path, 0.2, 1)


def test_dataset_matches_pillow_and_skips_broken_images(
    small_images: Path, tmp_path: Path, caplog
) -> None:
    sources = sorted((small_images / "Bag").iterdir())[:5]
    paths = [shutil.copy(p, tmp_path / p.name) for p in sources]
    broken = tmp_path / "broken.png"
    broken.write_bytes(Path(paths[0]).read_bytes()[:60])
    paths.insert(2, broken)
    rgb = tmp_path / "colour.jpg"
    Image.open(sources[0]).convert("RGB").resize((40, 30)).save(rgb)
    paths.append(rgb)
    spec = ImageSpec(28, 28, "grayscale", "nearest")
    with caplog.at_level(logging.WARNING, "filtag"):
        batches = list(data.image_dataset([Path(p) for p in paths], spec, 3))
    images = np.concatenate([b[0].numpy() for b in batches])
    index = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(index, [0, 1, 3, 4, 5, 6])
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
    for got, i in zip(images, index, strict=True):
        np.testing.assert_array_equal(
            got, read_image(Path(paths[i]), (28, 28), "grayscale")
        )
    assert f"skipped {broken}: cannot decode" in caplog.text


def test_decode_threads_keep_the_order_and_the_pixels(
    small_images: Path, tmp_path: Path
) -> None:
    paths = sorted(small_images.glob("*/*"))[:45]
    broken = tmp_path / "broken.png"
    broken.write_bytes(paths[0].read_bytes()[:60])
    paths.insert(7, broken)
    spec = ImageSpec(28, 28, "grayscale", "nearest")
    expected = [data.load_image(str(p), spec) for p in paths]
    for threads in (1, 8, None):
        dataset = data.image_dataset(paths, spec, 4, threads=threads)
        pool = dataset.options().threading.private_threadpool_size
        assert pool == (threads or data.decode_threads())
        batches = list(dataset)
        index = np.concatenate([b[1].numpy() for b in batches])
        np.testing.assert_array_equal(index, [i for i in range(46) if i != 7])
        images = np.concatenate([b[0].numpy() for b in batches])
        for got, i in zip(images, index, strict=True):
            np.testing.assert_array_equal(got, expected[i])
