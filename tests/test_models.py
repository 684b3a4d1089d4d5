"""Networks: loading, layer selection on real architectures, input and preprocessing."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from filtag import models, networks
from filtag.errors import FiltagError


@pytest.fixture(scope="module")
def vgg16() -> keras.Model:
    return models.load_network("VGG16", "none")


def test_vgg16_layers_are_its_13_convolutions(vgg16: keras.Model) -> None:
    layers = models.select_layers(vgg16)
    assert [layer.name for layer in layers][:3] == [
        "block1_conv1",
        "block1_conv2",
        "block2_conv1",
    ]
    assert len(layers) == 13
    assert sum(int(layer.output.shape[-1]) for layer in layers) == 4224
    assert models.select_layers(vgg16, "name") == layers  # the original rule agrees


def test_layer_lists_and_regexes(vgg16: keras.Model) -> None:
    chosen = models.select_layers(vgg16, "block5_conv3, block1_conv1")
    assert [layer.name for layer in chosen] == ["block1_conv1", "block5_conv3"]
    chosen = models.select_layers(vgg16, r"^block[45]_conv[13]$")
    assert [layer.name for layer in chosen] == [
        "block4_conv1",
        "block4_conv3",
        "block5_conv1",
        "block5_conv3",
    ]
    assert models.select_layers(vgg16, "pool")[0].name == "block1_pool"
    with pytest.raises(FiltagError, match="--layers 'fc' selects no layer"):
        models.select_layers(vgg16, "fc")  # fc1/fc2 are 2-D outputs
    with pytest.raises(FiltagError, match="neither conv, name"):
        models.select_layers(vgg16, "block(")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("network", "n_conv", "n_name"),
    [
        ("ResNet50", 53, 172),  # 'conv' in the name also catches BN/ReLU/pad layers
        ("InceptionV3", 94, 94),
        ("MobileNet", 28, 86),  # 13 DepthwiseConv2D + 15 Conv2D (conv_preds too)
    ],
)
def test_layer_selection_on_real_architectures(
    network: str, n_conv: int, n_name: int
) -> None:
    model = models.load_network(network, "none")
    conv = models.select_layers(model)
    assert len(conv) == n_conv
    assert all(isinstance(layer, models.CONV_CLASSES) for layer in conv)
    names = models.select_layers(model, "name")
    assert len(names) == n_name
    assert all("conv" in layer.name for layer in names)


def test_image_spec_reads_input_shape(default_files) -> None:
    cnn = models.load_network(str(default_files.model))
    spec = models.image_spec(cnn, "bilinear")
    assert (spec.height, spec.width, spec.color_mode, spec.channels) == (
        28,
        28,
        "grayscale",
        1,
    )
    free = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)])
    assert models.image_spec(free).height == models.DEFAULT_SIZE == 224
    sized = models.image_spec(free, "auto", (40, 60))
    assert (sized.height, sized.width, sized.interpolation) == (40, 60, "nearest")
    assert models.image_spec(cnn, "nearest", (28, 28)).height == 28
    with pytest.raises(FiltagError, match="--image-size 32,32: the model's input is "
                       "fixed at 28x28"):  # fmt: skip
        models.image_spec(cnn, "nearest", (32, 32))
    with pytest.raises(FiltagError, match="--interpolation 'cubic' is unknown"):
        models.image_spec(cnn, "cubic")
    flat = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)])
    with pytest.raises(FiltagError, match=r"Received: input_shape=\(None, 10\)"):
        models.image_spec(flat)


def test_preprocess_resolution() -> None:
    assert models.resolve_preprocess("auto", "VGG16") == "VGG16"
    assert models.resolve_preprocess("auto", "model.keras") == "none"
    assert models.resolve_preprocess("torch", "VGG16") == "torch"
    with pytest.raises(FiltagError, match="--preprocess 'sparkle' is unknown"):
        models.resolve_preprocess("sparkle", "VGG16")
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    caffe = x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(models.preprocess_function("caffe")(x.copy()), caffe)
    np.testing.assert_allclose(models.preprocess_function("VGG16")(x.copy()), caffe)
    np.testing.assert_allclose(
        models.preprocess_function("tf")(x.copy()), x / 127.5 - 1
    )
    np.testing.assert_array_equal(models.preprocess_function("none")(x), x)
    recorded = networks.with_mean_std("mean-std", [0.5, 0.25, 0.125], [0.25])
    assert recorded == "mean-std 0.5,0.25,0.125/0.25"
    assert models.resolve_preprocess(recorded, "VGG16") == recorded
    np.testing.assert_allclose(
        models.preprocess_function(recorded)(x.copy()),
        (x / 255 - np.array([0.5, 0.25, 0.125], np.float32)) / 0.25,
        rtol=1e-6,
    )
    assert networks.with_mean_std("auto", [0.5], [0.5]) == "mean-std 0.5/0.5"
    for preprocess, mean, std, message in [
        ("mean-std", None, None, "--preprocess mean-std needs --mean and --std"),
        ("caffe", [0.5], [0.5], "--mean and --std go together, with --preprocess "
         "mean-std"),
        ("auto", [0.5], None, "--mean and --std go together"),
        ("auto", [0.5], [0.0], r"--std \[0.0\]: every value must be > 0"),
        ("mean-std 1/x", None, None, "expected 'mean-std M/S'"),
    ]:  # fmt: skip
        with pytest.raises(FiltagError, match=message):
            networks.with_mean_std(preprocess, mean, std)


def test_keras_mean_std_must_fit_the_channels(default_files) -> None:
    with pytest.raises(FiltagError) as caught:
        networks.load_network(str(default_files.model), None, "conv", "mean-std",
                              "auto", mean=[0.1, 0.2, 0.3], std=[0.5])  # fmt: skip
    assert str(caught.value) == (
        "--mean 0.1,0.2,0.3 has 3 values but the model reads 1-channel images; "
        "give one value or 1."
    )


def test_load_errors_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(FiltagError, match="--network 'VGG17' is neither"):
        models.load_network("VGG17")
    with pytest.raises(FiltagError, match=r"--network .*missing\.keras not found"):
        models.load_network(str(tmp_path / "missing.keras"))
    bad = tmp_path / "bad.keras"
    bad.write_text("no model")
    with pytest.raises(FiltagError, match="is not a loadable Keras model"):
        models.load_network(str(bad))
    with pytest.raises(FiltagError, match=r"--weights nowhere\.h5 not found"):
        models.load_network("VGG16", "nowhere.h5")
    assert models.network_name(str(bad)) == "bad"
    assert models.network_name("VGG16") == "VGG16"
