"""torchvision, timm and EfficientNet-Lite0 through every step, as PyTorch models.

``torchvision:resnet18`` and ``timm:test_efficientnet`` (random weights, small
images) through steps 1-4, si-eval and the pages; EfficientNet-Lite0 with its
real ImageNet weights in Keras and in PyTorch (timm): the same step-1 numbers.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from filtag.artifacts import load_vars
from tests.conftest import run_chain, run_script
from tests.support.lite0 import lite0_timm_weights

step1, si_eval, vis, plots = (
    importlib.import_module(name)
    for name in ("step1filteractivations", "si-eval", "filTagsvis", "hitrates-plots")
)


@pytest.mark.parametrize(
    ("network", "meta_expected"),
    [
        # --image-size 64: torchvision resizes to 64 * 256 // 224, timm to
        # floor(64 / crop_pct 0.95), then both crop the centre
        ("torchvision:resnet18",
         {"network": "resnet18", "preprocess": "torchvision", "resize": 73,
          "image_size": [64, 64], "interpolation": "bilinear",
          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
          "filters_per_layer": [64] * 5 + [128] * 5 + [256] * 5 + [512] * 5}),
        ("timm:test_efficientnet",
         {"network": "test_efficientnet", "preprocess": "timm", "resize": 67,
          "image_size": [64, 64], "interpolation": "bicubic"}),
    ],
)  # fmt: skip
def test_torchvision_and_timm_through_every_step(
    imagenet_images, tmp_path, network, meta_expected
) -> None:
    files = run_chain(network, imagenet_images, tmp_path, "--weights", "none",
                      "--image-size", 64)  # fmt: skip
    meta = load_vars(files["step1"])["meta"]
    assert {key: meta[key] for key in meta_expected} == meta_expected
    assert meta["framework"] == "torch" and meta["network_arg"] == network
    assert meta["class_names"][:2] == ["n01440764", "n01443537"]  # ImageNet wnids
    assert meta["images_per_class"]["n03594945"] == 1
    v3 = load_vars(files["step3"])
    assert v3["meta"]["images_evaluated"] == 1
    assert load_vars(files["step4"])["meta"]["images"] == 1
    image = next((imagenet_images / "n03594945").iterdir())
    run_script(si_eval, "--filtags-file", files["step2"], "--image", image, "--html",
               "--save-dir", tmp_path)  # fmt: skip
    name = meta_expected["network"]
    assert list(tmp_path.glob(f"*-SI-{name}-explanation.html"))
    run_script(vis, "--filtags-file", files["step2"], "--save-dir", tmp_path)
    run_script(plots, "--hitrates-file", files["step4"], "--save-dir", tmp_path)
    assert list(tmp_path.glob(f"*-VIS-{name}-k5.html"))
    assert list(tmp_path.glob(f"*-HRP-{name}-hitrates.html"))


def test_lite0_gives_the_same_step1_numbers_in_keras_and_pytorch(
    lite0_model, imagenet_images, tmp_path
) -> None:
    """The Keras port and timm's tf_efficientnet_lite0, with the same weights."""
    weights = lite0_timm_weights(tmp_path / "lite0_timm.pth")
    common = ("--images-dir", imagenet_images, "--save-dir", tmp_path)
    keras_file, _ = run_script(step1, "--network", lite0_model, *common)
    torch_file, _ = run_script(
        step1, "--network", "timm:tf_efficientnet_lite0", "--weights", weights,
        # the port's Rescaling(1/128, offset=-127/128) is (x / 255 - m) / s
        "--preprocess", "mean-std", "--mean", repr(127 / 255), "--std",
        repr(128 / 255), *common,
    )  # fmt: skip
    k, t = load_vars(keras_file), load_vars(torch_file)
    names = list(zip(k["meta"]["layer_names"], t["meta"]["layer_names"], strict=True))
    assert len(names) == 49
    assert names[:4] == [("stem_conv", "conv_stem"), ("block1a_dwconv",
                         "blocks.0.0.conv_dw"), ("block1a_project_conv",
                         "blocks.0.0.conv_pw"), ("block2a_expand_conv",
                         "blocks.1.0.conv_pw")]  # fmt: skip
    assert names[-1] == ("head_conv", "conv_head")
    assert k["meta"]["filters_per_layer"] == t["meta"]["filters_per_layer"]
    assert k["train_filenames"] == t["train_filenames"]
    for key in ("class_names", "image_size", "color_mode", "interpolation"):
        assert k["meta"][key] == t["meta"][key], key
    assert (k["meta"]["framework"], t["meta"]["framework"]) == ("keras", "torch")
    for c in k["labels_id"]:
        for a, b in zip(k[f"filter_act_{c}"], t[f"filter_act_{c}"], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    for a, b in zip(k["exemplar_values"], t["exemplar_values"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
