"""Step 1's in-graph computation against the per-image float64 reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from filtag import activations, models
from tests import reference


def test_scaled_filter_means_by_hand() -> None:
    # one image, 2x2 positions, 2 filters: min 0 and max 8 over the whole layer
    maps = np.array([[[[0, 2], [4, 8]], [[2, 2], [6, 0]]]], np.float32)
    got = activations.scaled_filter_means(tf.constant(maps)).numpy()
    np.testing.assert_allclose(
        got, [[(0 + 4 + 2 + 6) / 4 / 8, (2 + 8 + 2 + 0) / 4 / 8]]
    )
    constant = np.full((2, 3, 3, 4), 5.0, np.float32)
    np.testing.assert_array_equal(
        activations.scaled_filter_means(tf.constant(constant)).numpy(), np.zeros((2, 4))
    )


def _probe_against_reference(model_path: Path, image_paths: list[Path]) -> None:
    model = models.load_network(str(model_path))
    layers = models.select_layers(model)
    spec = models.image_spec(model)
    preprocess = models.preprocess_function("none")
    probe = activations.FilterProbe(model, layers, preprocess)
    images = np.stack(
        [
            reference.read_image(p, (spec.height, spec.width), spec.color_mode)
            for p in image_paths
        ]
    )
    fast, outputs = probe(images)
    sub = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    for i, image in enumerate(images):
        maps = sub.predict(image[None].astype(np.float32), verbose=0)
        expected = np.concatenate(
            reference.image_filter_activations([m[0] for m in maps])
        )
        np.testing.assert_allclose(fast[i], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        outputs,
        model.predict(images.astype(np.float32), verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    assert fast.shape == (len(images), sum(probe.filters_per_layer))
    assert 0 <= fast.min() and fast.max() <= 1


def test_probe_matches_reference_on_the_default_cnn(
    default_files, small_images: Path
) -> None:
    paths = [sorted(d.iterdir())[0] for d in sorted(small_images.iterdir())]
    _probe_against_reference(default_files.model, paths)


def test_probe_matches_reference_on_efficientnet_lite0(
    lite0_model: Path, imagenet_images: Path
) -> None:
    paths = sorted(imagenet_images.glob("*/*.jpg"))[:4]
    _probe_against_reference(lite0_model, paths)
