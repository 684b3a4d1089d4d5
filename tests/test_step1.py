"""step1filteractivations.py end to end against the slow reference; bad input."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from filtag import data, models
from filtag.artifacts import load_vars
from tests import reference

step1 = importlib.import_module("step1filteractivations")


def run_step1(capsys, *argv: str) -> tuple[int, Path | None, str]:
    """Run the script's main; return (exit code, the printed vars path, stderr)."""
    code = step1.main(list(argv))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, Path(lines[-1]) if code == 0 else None, err


def test_step1_matches_reference_on_real_images(
    capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    code, path, _ = run_step1(
        capsys,
        "--network", str(default_files.model),
        "--images-dir", str(small_images),
        "--save-dir", str(tmp_path),
        "--batch-size", "7",
    )  # fmt: skip
    assert (
        code == 0
        and path.is_file()
        and path.name.endswith("-QFA-fashion_mnist_cnn-vars.pkl")
    )
    v = load_vars(path)
    classes = sorted(p.name for p in small_images.iterdir())
    assert v["labels_id"] == dict(enumerate(classes))
    split = data.split_images(small_images, 0.2, 123)
    assert v["train_filenames"] == split.files("train")[0]
    assert v["test_filenames"] == split.files("test")[0]
    assert len(v["test_filenames"]) == 10 * data.n_test_images(12, 0.2)

    model = models.load_network(str(default_files.model))
    names = v["meta"]["layer_names"]
    paths, labels = split.files("train")
    images = [
        reference.read_image(small_images / p, (28, 28), "grayscale") for p in paths
    ]
    expected = reference.class_filter_activations(
        model, names, lambda x: x, images, labels, len(classes)
    )
    for i in range(len(classes)):
        got = v[f"filter_act_{i}"]
        assert [a.shape for a in got] == [(16,), (32,), (64,), (64,)]
        for g, e in zip(got, expected[i], strict=True):
            assert g.dtype == np.float64
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-7)

    meta = v["meta"]
    assert meta["layer_names"] == ["conv1", "conv2", "conv3", "conv4"]
    assert meta["filters_per_layer"] == [16, 32, 64, 64]
    assert meta["image_size"] == [28, 28] and meta["color_mode"] == "grayscale"
    assert meta["preprocess"] == "none" and meta["interpolation"] == "nearest"
    assert meta["class_names"] == classes
    assert meta["images_per_class"] == {c: 10 for c in classes}
    assert (meta["split"], meta["seed_rn"]) == (0.2, 123)
    assert set(meta["versions"]) >= {"tensorflow", "keras", "numpy", "python"}
    prefix = str(path).removesuffix("-vars.pkl")
    assert (
        "step 1: 10 classes, 100 train images read (0 broken, 0 non-image and 0 "
        "hidden files skipped); 4 layers, 176 filters"
        in Path(prefix + "-info.log").read_text()
    )
    assert Path(prefix + "-warnings.log").read_text() == ""
    assert (
        "filter_act_<i> (filter_act_0 ... filter_act_9)"
        in Path(prefix + "-vars-info.txt").read_text()
    )


def test_step1_never_overwrites_and_skips_bad_files(
    capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    shutil.copytree(small_images, images)
    bag = sorted((images / "Bag").iterdir())
    bag[0].write_bytes(bag[0].read_bytes()[:50])  # truncated PNG
    (images / "Bag" / "readme.png").write_text("not an image")
    Image.open(bag[1]).convert("RGB").save(images / "Bag" / "rgb.jpg")  # colour JPEG
    args = ["--network", str(default_files.model), "--images-dir", str(images)]
    args += ["--save-dir", str(tmp_path / "out")]
    code, first, _ = run_step1(capsys, *args)
    assert code == 0
    code, second, _ = run_step1(capsys, *args)
    assert code == 0 and first != second and first.is_file()
    meta = load_vars(first)["meta"]
    assert meta["skipped_not_images"] == {"Bag/readme.png": "not an image file"}
    n_bag = meta["images_per_class"]["Bag"]
    truncated_in_train = "Bag/" + bag[0].name in load_vars(first)["train_filenames"]
    assert meta["skipped_broken"] == int(truncated_in_train)
    assert n_bag == 13 - data.n_test_images(13, 0.2) - int(truncated_in_train)
    warnings = Path(str(first).removesuffix("-vars.pkl") + "-warnings.log").read_text()
    assert "Bag/readme.png: not an image file" in warnings


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--images-dir", "/nonexistent"], "--images-dir /nonexistent is not a folder"),
        (["--network", "VGG17"], "--network 'VGG17' is neither"),
        (
            ["--layers", "nothing_matches"],
            "--layers 'nothing_matches' selects no layer",
        ),
    ],
)
def test_step1_bad_input_is_one_line_and_exit_2(
    capsys, default_files, small_images: Path, tmp_path: Path, argv, message
) -> None:
    base = ["--network", str(default_files.model), "--images-dir", str(small_images)]
    code, _, err = run_step1(capsys, *base, "--save-dir", str(tmp_path), *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("ERROR")]) == 1
    assert not list(tmp_path.glob("*-vars.pkl"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--split", "1.5"], "argument --split: expected a fraction between 0 and 1"),
        (["--batch-size", "0"], "argument --batch-size: expected a whole number >= 1"),
        (["--seed-rn", "x"], "argument --seed-rn: expected a whole number >= 0"),
        (["--exemplars", "-1"], "argument --exemplars: expected a whole number >= 0"),
        (["--time-delta", "99"], "argument --time-delta: expected hours in [-24, 24]"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_step1_bad_flags(capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        step1.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_class_names_file_must_fit_the_model(
    capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    code, _, err = run_step1(
        capsys,
        "--network", str(default_files.model),
        "--images-dir", str(small_images),
        "--save-dir", str(tmp_path),
        "--class-names", str(names),
    )  # fmt: skip
    assert code == 2 and "names.txt has 2 names but the model has 10 outputs" in err


@pytest.mark.slow
def test_step1_on_efficientnet_lite0_imagenet(
    capsys, lite0_model: Path, imagenet_images: Path, tmp_path: Path
) -> None:
    code, path, _ = run_step1(
        capsys,
        "--network", str(lite0_model),
        "--images-dir", str(imagenet_images),
        "--save-dir", str(tmp_path),
        "--batch-size", "8",
    )  # fmt: skip
    assert code == 0
    v = load_vars(path)
    meta = v["meta"]
    assert meta["class_names"][:2] == ["n01440764", "n01443537"]
    assert len(meta["class_names"]) == 1000
    assert meta["network"] == "efficientnet_lite0" and len(meta["layer_names"]) == 49
    assert sum(meta["filters_per_layer"]) == len(np.concatenate(v["filter_act_0"]))
    assert len(v["labels_id"]) == 19 and all(
        w.startswith("n") for w in v["labels_id"].values()
    )
    model = models.load_network(str(lite0_model))
    paths, labels = data.split_images(imagenet_images, 0.2, 123).files("train")
    images = [
        reference.read_image(imagenet_images / p, (224, 224), "rgb") for p in paths
    ]
    expected = reference.class_filter_activations(
        model, meta["layer_names"], lambda x: x, images, labels, 19
    )
    for i in range(19):
        for g, e in zip(v[f"filter_act_{i}"], expected[i], strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)


def test_lite0_classifies_real_imagenet_images(lite0_model: Path) -> None:
    from tests.support.lite0 import foolbox_imagenet_images

    model = models.load_network(str(lite0_model))
    pairs = foolbox_imagenet_images()
    images = np.stack([reference.read_image(p, (224, 224), "rgb") for p, _ in pairs])
    predicted = model.predict(images.astype(np.float32), verbose=0).argmax(axis=1)
    correct = int((predicted == [label for _, label in pairs]).sum())
    assert correct >= 17, f"{correct} of 20 correct"


def test_mixed_precision_keeps_the_statistics_close(
    capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    args = ["--network", str(default_files.model), "--images-dir", str(small_images),
            "--save-dir", str(tmp_path)]  # fmt: skip
    code, full, _ = run_step1(capsys, *args)
    code_mixed, mixed, _ = run_step1(capsys, *args, "--mixed-precision")
    assert code == code_mixed == 0
    v, vm = load_vars(full), load_vars(mixed)
    assert vm["meta"]["mixed_precision"] and not v["meta"]["mixed_precision"]
    for i in range(10):
        for a, b in zip(v[f"filter_act_{i}"], vm[f"filter_act_{i}"], strict=True):
            assert b.dtype == np.float64
            np.testing.assert_allclose(b, a, atol=5e-3)  # float16 maps, float64 sums
