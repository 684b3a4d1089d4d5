"""PyTorch models: a hand-written ``nn.Module`` by file and by module, the refusals.

Against a slow reference: a tiny ``nn.Module`` (in-place ReLUs, a module called
twice) image by image in float64, through every step. torchvision's and timm's
own eval transforms against filtag's reading. The torchvision and timm chains
and Lite0 across frameworks: ``test_torch_steps.py``.
"""

from __future__ import annotations

import copy
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from filtag import data
from filtag.artifacts import load_vars
from filtag.errors import FiltagError
from filtag.networks import load_network
from filtag.torch_network import BUILD_SEED
from tests import reference
from tests.conftest import refused, run_chain, run_script
from tests.support import tinynet

REPO = Path(__file__).resolve().parent.parent

step1, step2, step3, step4, si_eval, vis, plots, tagcheck = (
    importlib.import_module(name)
    for name in ("step1filteractivations", "step2filtertags", "step3evaluation",
                 "step4hitrates", "si-eval", "filTagsvis", "hitrates-plots",
                 "tagcheck")
)  # fmt: skip

#: The tiny network's layers and filters (``mid`` is called twice).
TINY_LAYERS = ["features.0", "mid", "down"]
TINY_FILTERS = [8, 8, 16]

#: Step 1's preprocessing of the tiny network: (pixels / 255 - 0.5) / 0.25.
TINY_ARGS = ("--image-size", "28", "--preprocess", "mean-std", "--mean", "0.5",
             "--std", "0.25")  # fmt: skip

#: --network of the tiny hand-written module (tests/support/tinynet.py).
TINY = ("--network", "tests.support.tinynet:make")


def _tiny_preprocess(x: np.ndarray) -> np.ndarray:
    return (x / 255 - 0.5) / 0.25


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> dict[str, Path]:
    """tinynet.py copied to a folder, and a state dict of other weights than its own."""
    folder = tmp_path_factory.mktemp("tiny")
    shutil.copy(tinynet.__file__, folder / "tinynet.py")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        torch.save(tinynet.make().state_dict(), folder / "tinynet.pt")
    return {"file": folder / "tinynet.py", "weights": folder / "tinynet.pt"}


def _tiny_model(weights: Path) -> torch.nn.Module:
    model = tinynet.make()
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()


@pytest.fixture(scope="module")
def tiny_chain(tiny_files, small_images, tmp_path_factory) -> dict[str, Path]:
    """Steps 1-4 on the small Fashion-MNIST folder, ``tinynet.py:make`` + state dict."""
    return run_chain(
        f"{tiny_files['file']}:make", small_images, tmp_path_factory.mktemp("chain"),
        "--weights", tiny_files["weights"], "--batch-size", 7, *TINY_ARGS,
    )  # fmt: skip


def test_tiny_module_step1_equals_a_per_image_float64_reference(
    tiny_chain, tiny_files, small_images
) -> None:
    v = load_vars(tiny_chain["step1"])
    meta = v["meta"]
    assert meta["framework"] == "torch" and meta["network"] == "tinynet.make"
    assert meta["network_arg"] == f"{tiny_files['file'].resolve()}:make"
    assert meta["model_path"] == str(tiny_files["file"].resolve())
    assert meta["weights_path"] == str(tiny_files["weights"].resolve())
    assert len(meta["weights_sha256"]) == 64
    assert meta["layer_names"] == TINY_LAYERS
    assert meta["filters_per_layer"] == TINY_FILTERS
    assert meta["preprocess"] == "mean-std 0.5/0.25"
    assert (meta["mean"], meta["std"], meta["resize"]) == ([0.5], [0.25], None)
    assert meta["image_size"] == [28, 28] and meta["color_mode"] == "grayscale"
    assert meta["interpolation"] == "nearest"
    classes = sorted(p.name for p in small_images.iterdir())
    assert meta["class_names"] == classes  # 10 outputs, one per folder

    split = data.split_images(small_images, 0.2, 123)
    paths, labels = split.files("train")
    images = [reference.read_image(small_images / p, (28, 28), "grayscale")
              for p in paths]  # fmt: skip
    per_image = reference.torch_image_values(
        _tiny_model(tiny_files["weights"]), TINY_LAYERS, _tiny_preprocess, images
    )
    expected = reference.class_means(per_image, labels, len(classes))
    for c in range(len(classes)):
        for got, want in zip(v[f"filter_act_{c}"], expected[c], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # an in-place ReLU follows features.0: its output has negative values that
    # a hook reading the tensor later would see as 0
    assert min(m.min() for m in _maps(tiny_files, images[:5], "features.0")) < 0


def _maps(tiny_files, images, layer) -> list[np.ndarray]:
    """The full output of ``layer`` (first call) per image, by the reference's copy."""
    got = []
    model = _tiny_model(tiny_files["weights"])
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    keep = []
    twin.get_submodule(layer).register_forward_hook(
        lambda m, a, out: keep.append(out[0].permute(1, 2, 0).numpy())
    )
    for image in images:
        keep.clear()
        x = _tiny_preprocess(image.astype(np.float32)).transpose(2, 0, 1)[None]
        with torch.no_grad():
            twin(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        got.append(keep[0])
    return got


def test_feature_maps_padding_and_the_first_call(tiny_files, small_images) -> None:
    net = load_network(
        f"{tiny_files['file']}:make", str(tiny_files["weights"]), "conv",
        "mean-std", "auto", image_size=(28, 28), mean=[0.5], std=[0.25],
    )  # fmt: skip
    paths = sorted(small_images.rglob("*.png"))[:5]
    images = np.stack([data.load_image(str(p), net.spec) for p in paths])
    for layer in ("features.0", "mid"):  # mid: its first call, before the ReLU
        maps = net.feature_maps(images, layer)
        assert maps.shape == (5, 28, 28, 8) and maps.dtype == np.float32
        want = _maps(tiny_files, list(images), layer)
        np.testing.assert_allclose(maps, np.stack(want), rtol=1e-5, atol=1e-5)
    probe = net.probe(8)
    alone, out_alone = probe(images[:1])
    together, out_together = probe(images)
    assert alone.shape == (1, 32) and together.shape == (5, 32)
    np.testing.assert_array_equal(alone[0], together[0])  # both padded to 8
    np.testing.assert_array_equal(out_alone[0], out_together[0])
    assert [a.shape[1] for a in probe.split_layers(together)] == TINY_FILTERS


def test_mixed_precision_runs_under_autocast_close_to_float32(
    tiny_files, small_images
) -> None:
    """On a CPU, ``--mixed-precision`` computes in bfloat16 (8 significant bits)."""
    nets = [
        load_network(
            f"{tiny_files['file']}:make", str(tiny_files["weights"]), "conv",
            "mean-std", "auto", mixed, image_size=(28, 28), mean=[0.5], std=[0.25],
        )
        for mixed in (False, True)
    ]  # fmt: skip
    paths = sorted(small_images.rglob("*.png"))[:6]
    images = np.stack([data.load_image(str(p), nets[0].spec) for p in paths])
    (exact, out_exact), (mixed, out_mixed) = (net.probe(6)(images) for net in nets)
    assert mixed.dtype == out_mixed.dtype == np.float32
    assert not np.array_equal(mixed, exact)  # computed in another precision
    np.testing.assert_allclose(mixed, exact, atol=0.03)
    np.testing.assert_allclose(
        out_mixed, out_exact, atol=0.05 * np.abs(out_exact).max()
    )


def test_ablator_equals_a_copy_with_those_channels_zeroed(
    tiny_files, small_images
) -> None:
    net = load_network(
        f"{tiny_files['file']}:make", str(tiny_files["weights"]), "conv",
        "mean-std", "auto", image_size=(28, 28), mean=[0.5], std=[0.25],
    )  # fmt: skip
    paths = sorted(small_images.rglob("*.png"))[:4]
    images = np.stack([data.load_image(str(p), net.spec) for p in paths])
    ablator = net.ablator(["mid", "down"])
    assert ablator.filters_per_layer == [8, 16] and ablator.n_filters == 24
    zeroed = {"mid": [0, 3, 7], "down": [1, 2, 15]}
    masks = np.ones((4, 24), np.float32)
    masks[:, [0, 3, 7]] = 0
    masks[:, [8 + 1, 8 + 2, 8 + 15]] = 0
    masks[1] = 1  # the second image: nothing switched off
    got = ablator(images, masks)
    model = _tiny_model(tiny_files["weights"])
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for name, channels in zeroed.items():
            conv = copy_.get_submodule(name)
            conv.weight[channels] = 0
            conv.bias[channels] = 0
        x = torch.from_numpy(_tiny_preprocess(images.astype(np.float32)))
        x = x.permute(0, 3, 1, 2).float()
        want_zeroed, want_plain = copy_(x).numpy(), model(x).numpy()
    np.testing.assert_allclose(got[[0, 2, 3]], want_zeroed[[0, 2, 3]], atol=1e-5)
    np.testing.assert_allclose(got[1], want_plain[1], atol=1e-5)
    assert np.abs(want_zeroed[0] - want_plain[0]).max() > 1e-3
    with pytest.raises(ValueError, match="selected layers"):
        net.ablator(["head"])


def test_the_tiny_chain_runs_si_eval_the_pages_and_the_check(
    tiny_chain, small_images, tmp_path
) -> None:
    meta4 = load_vars(tiny_chain["step4"])["meta"]
    assert meta4["network"] == "tinynet.make" and meta4["images"] == 20
    image = sorted((small_images / "Bag").iterdir())[0]
    _, printed = run_script(
        si_eval,
        "--filtags-file",
        tiny_chain["step2"],
        "--image",
        image,
        "--html",
        "--save-dir",
        tmp_path,
    )
    assert "| down " in printed
    assert list(tmp_path.glob("*-SI-tinynet.make-explanation.html"))
    vis_page, _ = run_script(vis, "--filtags-file", tiny_chain["step2"],
                             "--save-dir", tmp_path)  # fmt: skip
    assert vis_page.name.endswith("-VIS-tinynet.make-k5.html")
    plot_page, _ = run_script(plots, "--hitrates-file", tiny_chain["step4"],
                              "--save-dir", tmp_path)  # fmt: skip
    assert plot_page.is_file()
    check, _ = run_script(tagcheck, "--filtags-file", tiny_chain["step2"],
                          "--random-draws", 2, "--save-dir", tmp_path)  # fmt: skip
    tc = load_vars(check)
    assert tc["meta"]["layers"] == ["down"]
    drops = np.array(list(tc["logp_drop_tagged"].values()), np.float64)
    assert len(drops) == 10 and np.isfinite(drops).all() and (drops != 0).any()


def test_step3_refuses_a_changed_model_or_weights_file(
    tiny_files, small_images, tmp_path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for key in ("file", "weights"):
        shutil.copy(tiny_files[key], folder / tiny_files[key].name)
    network = f"{folder / 'tinynet.py'}:make"
    weights = folder / "tinynet.pt"
    r1, _ = run_script(step1, "--network", network, "--weights", weights,
                       "--images-dir", small_images, "--save-dir", tmp_path,
                       "--exemplars", 0, *TINY_ARGS)  # fmt: skip
    r2, _ = run_script(step2, "--activations-file", r1, "--k-q", "1",
                       "--save-dir", tmp_path)  # fmt: skip
    original = weights.read_bytes()
    state = torch.load(weights, weights_only=True)
    state["head.bias"] += 1
    torch.save(state, weights)
    err = refused(step3, "--filtags-file", r2, "--save-dir", tmp_path)
    assert f"the weights file {weights.resolve()} changed since step 1" in err
    weights.write_bytes(original)
    with (folder / "tinynet.py").open("a") as f:
        f.write("\n# edited\n")
    err = refused(step3, "--filtags-file", r2, "--save-dir", tmp_path)
    assert f"the model file {(folder / 'tinynet.py').resolve()} changed" in err
    assert not list(tmp_path.glob("*-E-*"))


def test_a_package_module_factory_and_layer_rules_on_module_paths() -> None:
    def names(rule: str) -> list[str]:
        net = load_network("tests.support.tinynet:make", None, rule, "auto", "auto")
        return net.layer_names

    assert names("conv") == TINY_LAYERS
    assert names("down,features.0") == ["features.0", "down"]  # model order
    assert names(r"^(mid|down)$") == ["mid", "down"]
    assert names("^features") == ["features", "features.0", "features.1"]
    with pytest.raises(
        FiltagError,
        match=r"--layers 'name' selects no module with a "
        r"4-D output in --network tests.support.tinynet:make; "
        r"layers are module paths such as features, features.0",
    ):
        names("name")
    with pytest.raises(FiltagError, match="selects no module with a 4-D output"):
        names("head")  # a Linear: 2-D output
    with pytest.raises(FiltagError, match=r"--layers '\(' is neither conv, name"):
        names("(")
    net = load_network("tests.support.tinynet:make_rgb", None, "conv", "auto",
                       "bilinear", image_size=(24, 32))  # fmt: skip
    assert net.name == "tinynet.make_rgb" and net.preprocess == "none"
    assert net.spec == data.ImageSpec(24, 32, "rgb", "bilinear")
    assert net.model_file == Path(tinynet.__file__)
    acts, outputs = net.probe(2)(np.zeros((1, 24, 32, 3), np.uint8))
    assert acts.shape == (1, 32) and outputs.shape == (1, 10)


def test_random_weights_are_the_same_in_every_step_and_leave_the_generator(
    tiny_files,
) -> None:
    state = torch.random.get_rng_state()
    nets = [load_network("tests.support.tinynet:make", "none", "conv", "auto",
                         "auto", image_size=(16, 16)) for _ in range(2)]  # fmt: skip
    assert torch.equal(state, torch.random.get_rng_state())
    for a, b in zip(*(n.model.state_dict().values() for n in nets), strict=True):
        assert torch.equal(a, b)
    torch.manual_seed(BUILD_SEED)
    own = tinynet.make()
    assert torch.equal(own.head.weight, nets[0].model.head.weight)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--network", "torchvision:resnet17"),
            "--network torchvision:resnet17 is not a torchvision classification model",
        ),
        (("--network", "timm:resnet17"), "--network timm:resnet17 is not a timm model"),
        (
            ("--network", "tests.support.tinynet:nothing"),
            "tests.support.tinynet has no function nothing",
        ),
        (
            ("--network", "tests.support.tinynet:not_a_module"),
            "not_a_module() returned a int, not a torch.nn.Module",
        ),
        (
            ("--network", "tests.support.nowhere:make"),
            "module tests.support.nowhere cannot be imported (ModuleNotFoundError",
        ),
        (("--network", "nowhere.py:make"), "nowhere.py not found"),
        (
            (*TINY, "--weights", "imagenet"),
            "has no imagenet weights of filtag's; pass --weights FILE",
        ),
        (
            (*TINY, "--weights", "none.pt"),
            "--weights none.pt not found",
        ),
        (
            (*TINY, "--preprocess", "torchvision"),
            "--preprocess 'torchvision' is not one for this PyTorch model; use auto, "
            "mean-std",
        ),
        (
            (
                "--network",
                "torchvision:resnet18",
                "--weights",
                "none",
                "--preprocess",
                "timm",
            ),
            "use auto, torchvision, mean-std (with --mean and --std) or none",
        ),
        (
            (*TINY, "--preprocess", "caffe"),
            "--preprocess 'caffe' is not one for this PyTorch model",
        ),
        (
            (*TINY, "--mean", "0.5"),
            "--mean and --std go together",
        ),
        (
            (*TINY, "--preprocess", "mean-std"),
            "--preprocess mean-std needs --mean and --std",
        ),
        (
            (
                *TINY,
                "--mean",
                "0.5,0.5,0.5",
                "--std",
                "1",
            ),
            "--mean 0.5,0.5,0.5 has 3 values but the model reads "
            "1-channel images; give one value or 1.",
        ),
        (
            (*TINY, "--mean", "0", "--std", "0"),
            "--std [0.0]: every value must be > 0.",
        ),
        (
            (*TINY, "--image-size", "2"),
            "fails on a 2x2 grayscale image (RuntimeError",
        ),
        (
            (*TINY, "--interpolation", "cubic"),
            "--interpolation 'cubic' is unknown; use auto or one of nearest",
        ),
        (
            (*TINY, "--image-size", "1,2,3"),
            "argument --image-size: expected H or H,W",
        ),
    ],
)
def test_bad_names_and_inputs_are_refused(small_images, tmp_path, argv, message):
    err = refused(step1, *argv, "--images-dir", small_images, "--save-dir", tmp_path)
    assert message in err, err
    assert not list(tmp_path.iterdir())


def test_weights_must_be_a_state_dict_read_with_weights_only(
    small_images, tmp_path
) -> None:
    pickled = tmp_path / "module.pt"
    torch.save(tinynet.make(), pickled)  # a whole module: unpickling runs code
    other = tmp_path / "other.pt"
    torch.save(tinynet.make_rgb().state_dict(), other)
    out = tmp_path / "out"
    base = (*TINY, "--images-dir", small_images,
            "--save-dir", out)  # fmt: skip
    err = refused(step1, *base, "--weights", pickled)
    assert f"--weights {pickled} is not a state dict that torch.load(weights_only=" \
           "True) reads (UnpicklingError" in err  # fmt: skip
    assert "save model.state_dict(), not the model." in err
    err = refused(step1, *base, "--weights", other)
    assert f"--weights {other} does not fit the model (Error(s) in loading" in err
    assert "size mismatch for features.0.weight" in err
    assert not out.exists() or not list(out.iterdir())


def test_without_torch_a_pytorch_network_fails_with_one_line(small_images, tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None; import step1filteractivations as s; "
        "sys.exit(s.main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--network", "torchvision:resnet18",
         "--images-dir", str(small_images), "--save-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "ERROR --network torchvision:resnet18: PyTorch models need torch: "
        "pip install 'filtag[torch]'"
    )


def test_steps_2_and_4_of_a_pytorch_run_import_neither_framework(
    tiny_chain, tmp_path
) -> None:
    """Without torch (its import fails), steps 2 and 4 read the torch run's files."""
    step1_file, step3_file = str(tiny_chain["step1"]), str(tiny_chain["step3"])
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import step2filtertags, step4hitrates\n"
        f"assert step2filtertags.main(['--activations-file', {step1_file!r},"
        f" '--k-q', '1', '--save-dir', {str(tmp_path)!r}]) == 0\n"
        f"assert step4hitrates.main(['--eval-file', {step3_file!r},"
        f" '--m', '1', '--save-dir', {str(tmp_path)!r}]) == 0\n"
        "heavy = {'tensorflow', 'keras', 'torchvision', 'timm'} & set(sys.modules)\n"
        "assert not heavy and sys.modules['torch'] is None, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.split() if line.endswith(".pkl")]
    assert [p.name.split("-")[-3] for p in written] == ["TF", "HR"]
    step2 = load_vars(written[0])
    assert step2["meta"]["step1"]["framework"] == "torch"


def test_reading_equals_torchvision_and_timm_eval_transforms(imagenet_images):
    """filtag's reading + input = the model's own eval transform of a PIL image."""
    import timm
    import torchvision

    paths = sorted(imagenet_images.rglob("*.jpg"))
    tv = load_network("torchvision:resnet18", "none", "conv", "auto", "auto")
    timm_net = load_network("timm:test_efficientnet", "none", "conv", "auto", "auto")
    assert (tv.spec.resize, tv.spec.interpolation) == (256, "bilinear")
    assert (timm_net.spec.resize, timm_net.spec.interpolation) == (168, "bicubic")
    assert (timm_net.spec.height, timm_net.spec.width) == (160, 160)
    transforms = [
        (tv, torchvision.models.ResNet18_Weights.DEFAULT.transforms()),
        (timm_net, timm.data.create_transform(
            **timm.data.resolve_data_config({}, model=timm_net.model)
        )),
    ]  # fmt: skip
    for net, transform in transforms:
        images = np.stack([data.load_image(str(p), net.spec) for p in paths])
        got = net.inputs(images).numpy()
        want = []
        for p in paths:
            with Image.open(p) as img:
                want.append(transform(img.convert("RGB")).numpy())
        np.testing.assert_allclose(got, np.stack(want), rtol=0, atol=2e-6)
