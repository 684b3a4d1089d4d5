"""Step 1's in-graph computation against the per-image float64 reference."""

from __future__ import annotations

import importlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from filtag import activations, models
from filtag.artifacts import load_vars
from tests import reference
from tests.conftest import refused

step1 = importlib.import_module("step1filteractivations")
step3 = importlib.import_module("step3evaluation")
si_eval = importlib.import_module("si-eval")


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


def _probe_against_reference(
    model: keras.Model, images: np.ndarray, xla: str = "auto"
) -> activations.FilterProbe:
    """Check the probe's values against the float64 reference, image by image.

    Returns:
        The probe (to look at what it compiled).
    """
    layers = models.select_layers(model)
    probe = activations.FilterProbe(model, layers, lambda x: x, xla)
    fast, outputs = probe(images)
    sub = keras.Model(model.inputs, [layer.output for layer in layers])
    for i, image in enumerate(images):
        maps = sub.predict(image[None].astype(np.float32), verbose=0)
        maps = maps if isinstance(maps, list) else [maps]
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
    return probe


def _read_images(model: keras.Model, paths: list[Path]) -> np.ndarray:
    """Read ``paths`` as the reference does, at ``model``'s input size."""
    spec = models.image_spec(model)
    size = (spec.height, spec.width)
    return np.stack([reference.read_image(p, size, spec.color_mode) for p in paths])


def depthwise_model() -> keras.Model:
    """A small MobileNet-like network with random weights and BN statistics.

    Convolutions without bias feed batch normalizations (the pattern whose
    in-place reuse :class:`activations._ScaledMeans` keeps), a depthwise and a
    separable convolution, a residual add.
    """
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="stem")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    y = keras.layers.BatchNormalization(name="dw_bn")(y)
    y = keras.layers.ReLU(6.0)(y)
    y = keras.layers.Conv2D(8, 1, use_bias=False, name="project")(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.SeparableConv2D(12, 3, activation="relu", name="separable")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [rng.uniform(0.5, 2, gamma.shape), rng.normal(size=beta.shape),
                 rng.normal(size=mean.shape), rng.uniform(0.5, 2, var.shape)]
            )  # fmt: skip
    return model


@pytest.mark.parametrize("xla", activations.XLA_MODES)
def test_probe_matches_reference_on_the_default_cnn(
    default_files, small_images: Path, xla: str
) -> None:
    model = models.load_network(str(default_files.model))
    paths = [sorted(d.iterdir())[0] for d in sorted(small_images.iterdir())]
    probe = _probe_against_reference(model, _read_images(model, paths), xla)
    assert probe.xla_used == {"on": "on", "off": "off", "auto": "off"}[xla]


@pytest.mark.parametrize("xla", activations.XLA_MODES)
def test_probe_matches_reference_on_a_depthwise_network(xla: str) -> None:
    model = depthwise_model()
    images = np.random.default_rng(1).integers(0, 256, (5, 20, 20, 3), np.uint8)
    probe = _probe_against_reference(model, images, xla)
    assert probe.filters_per_layer == [8, 8, 8, 12]
    assert probe.xla_used == ("on" if xla == "on" else "off")


def test_probe_falls_back_when_xla_cannot_compile() -> None:
    # a host function in the network: XLA cannot compile the whole pass, so the
    # network runs as TensorFlow graph (its reductions are still compiled)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.Lambda(
        lambda t: tf.ensure_shape(tf.numpy_function(np.abs, [t], tf.float32), t.shape),
        output_shape=lambda shape: shape,
    )(x)
    x = keras.layers.Conv2D(2, 3, name="conv_after")(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    images = np.random.default_rng(2).integers(0, 256, (3, 6, 6, 1), np.uint8)
    probe = _probe_against_reference(model, images, "on")
    assert probe.xla == "on" and probe.xla_used == "off"


def test_auto_rule(default_files) -> None:
    cnn = models.load_network(str(default_files.model))
    depthwise = depthwise_model()
    assert activations.grouped_convolutions(cnn) == []
    assert activations.grouped_convolutions(depthwise) == ["dw", "separable"]
    grouped = keras.Sequential(
        [keras.Input((8, 8, 4)), keras.layers.Conv2D(4, 3, groups=2, name="grouped")]
    )
    nested = keras.Sequential([keras.Input((8, 8, 4)), grouped])
    assert activations.grouped_convolutions(nested) == ["grouped"]
    assert activations.choose_xla(cnn, on_gpu=True)[0]
    assert not activations.choose_xla(depthwise, on_gpu=True)[0]
    assert not activations.choose_xla(cnn, on_gpu=False)[0]


def test_probe_refuses_an_unknown_xla_mode() -> None:
    model = depthwise_model()
    with pytest.raises(ValueError, match="xla must be one of"):
        activations.FilterProbe(model, models.select_layers(model), lambda x: x, "yes")


@pytest.mark.parametrize(
    ("script", "required"),
    [
        (step1, []),
        (step3, ["--filtags-file", "x.pkl"]),
        (si_eval, ["--filtags-file", "x.pkl"]),
    ],
)
def test_xla_flag_refuses_other_values(script, required: list[str]) -> None:
    err = refused(script, *required, "--xla", "true")
    assert "argument --xla: expected one of auto, on, off; Received: 'true'" in err
    assert len(err.strip().splitlines()) == 1


def test_step1_records_the_xla_choice(default_chain) -> None:
    meta = load_vars(default_chain["step1"])["meta"]
    assert meta["xla"] == {"asked": "auto", "used": "off"}


def test_probe_matches_reference_on_efficientnet_lite0(
    lite0_model: Path, imagenet_images: Path
) -> None:
    model = models.load_network(str(lite0_model))
    paths = sorted(imagenet_images.glob("*/*.jpg"))[:4]
    _probe_against_reference(model, _read_images(model, paths))
