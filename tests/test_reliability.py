"""Reliability: interrupted runs resume to the same result; nothing half-written."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from filtag import activations
from filtag.artifacts import PREFIX_PATTERN, Run, load_vars
from filtag.resume import Journal
from tests.conftest import run_script

step1 = importlib.import_module("step1filteractivations")
step3 = importlib.import_module("step3evaluation")
REPO = Path(__file__).resolve().parent.parent
RUN_SPECIFIC = {"run_id", "created_utc", "resume"}


def _same_results(a: Path, b: Path) -> None:
    """Assert two runs' files hold the same variables (meta but for run id, time)."""
    va, vb = load_vars(a), load_vars(b)
    assert list(va) == list(vb)
    for name in va:
        if name == "meta":
            strip = lambda m: {k: v for k, v in m.items() if k not in RUN_SPECIFIC}  # noqa: E731
            assert strip(va[name]) == strip(vb[name])
        elif name.startswith("filter_act_") or name == "exemplar_values":
            for x, y in zip(va[name], vb[name], strict=True):
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes()  # bit for bit
        elif name != "eval_files":
            assert va[name] == vb[name], name


class _Interrupt:
    """Make FilterProbe raise KeyboardInterrupt (as Ctrl-C would) on batch ``n``."""

    def __init__(self, monkeypatch, n: int) -> None:
        self.calls = 0
        original = activations.FilterProbe.__call__

        def call(probe, images):
            self.calls += 1
            if self.calls == n:
                raise KeyboardInterrupt
            return original(probe, images)

        monkeypatch.setattr(activations.FilterProbe, "__call__", call)


def _journal(folder: Path) -> Journal:
    """Read the one run journal in ``folder``."""
    (path,) = folder.glob("*-journal.pkl")
    match = PREFIX_PATTERN.fullmatch(path.name.removesuffix("-journal.pkl"))
    return Journal.read(Run(folder, match["run_id"], match["tag"], match["network"]))


def test_step1_resumes_after_ctrl_c_mid_class(
    monkeypatch, capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    args = ["--network", str(default_files.model), "--images-dir", str(small_images),
            "--batch-size", "3"]  # fmt: skip
    whole, _ = run_script(step1, *args, "--save-dir", tmp_path / "whole")
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _Interrupt(patch, 12)  # 3 images a batch, 10 a class: inside class 3
        assert step1.main([*args, "--save-dir", str(out)]) == 130
    journal = _journal(out)
    run_id = journal.path.name.split("-QFA-")[0]
    err = capsys.readouterr().err
    assert f"finished classes are kept; continue with --resume {run_id}" in err
    assert [r["class"] for r in journal.records] == [0, 1, 2]
    assert not list(out.glob("*-vars.pkl"))
    resumed, _ = run_script(step1, *args, "--save-dir", out, "--resume", run_id)
    assert resumed.name.startswith(run_id) and not journal.path.exists()
    _same_results(whole, resumed)
    info = Path(str(resumed).replace("-vars.pkl", "-info.log")).read_text()
    assert "resuming: 3 of 10 classes are done" in info


def test_step3_resumes_after_ctrl_c_mid_class(
    monkeypatch, capsys, default_chain, tmp_path: Path
) -> None:
    args = ["--filtags-file", str(default_chain["step2"]), "--batch-size", "1"]
    whole, _ = run_script(step3, *args, "--save-dir", tmp_path / "whole")
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _Interrupt(patch, 5)  # 2 test images a class: the 1st image of class 2
        assert step3.main([*args, "--save-dir", str(out)]) == 130
    written = sorted(p.name.split("-E-")[1] for p in out.glob("*-vars?.pkl"))
    assert written == ["fashion_mnist_cnn-vars0.pkl", "fashion_mnist_cnn-vars1.pkl"]
    journal = _journal(out)
    resumed, _ = run_script(step3, *args, "--save-dir", out, "--resume", journal.path)
    _same_results(whole, resumed)
    v_whole, v_resumed = load_vars(whole), load_vars(resumed)
    for a, b in zip(v_whole["eval_files"], v_resumed["eval_files"], strict=True):
        _same_results(whole.parent / a, resumed.parent / b)


@pytest.fixture(scope="module")
def twelve_test_chain(default_files, tmp_path_factory) -> Path:
    """Steps 1-2 on 60 real images per class: 12 test images per class for step 3."""
    root = tmp_path_factory.mktemp("twelve")
    images = root / "images"
    for class_dir in sorted(default_files.images_dir.iterdir()):
        (images / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.iterdir())[:60]:
            shutil.copy(image, images / class_dir.name / image.name)
    step2 = importlib.import_module("step2filtertags")
    step1_file, _ = run_script(step1, "--network", default_files.model,
                               "--images-dir", images, "--save-dir", root)  # fmt: skip
    step2_file, _ = run_script(step2, "--activations-file", step1_file,
                               "--k-q", "0,1,5", "--save-dir", root)  # fmt: skip
    return step2_file


def _stop_stalled(
    script: str, stall_at: int, args: list[str], out: Path, signal_number: int
) -> Journal:
    """Run ``script`` with its network stalled from call ``stall_at`` on, stop it
    with a real signal once its journal holds a class, and return the journal."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.stall", str(stall_at), script, *args,
         "--save-dir", str(out)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be stopped"
        found = list(out.glob("*-journal.pkl"))
        if found and len(_journal(out).records) >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # the run is now stalled in batch ``stall_at``
    process.send_signal(signal_number)
    assert process.wait(timeout=60) == (130 if signal_number == signal.SIGINT else -9)
    assert not list(out.glob("*-vars.pkl"))
    return _journal(out)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL])
def test_step3_resume_keeps_a_half_done_class(
    twelve_test_chain: Path, tmp_path: Path, signal_number: int
) -> None:
    """Batch 32 over classes of 12 test images: batch 1 finishes classes 0-1 and 8
    of class 2's 12 images; the run is stopped by a real signal right there,
    resumed, and must equal an uninterrupted run."""
    args = ["--filtags-file", str(twelve_test_chain), "--batch-size", "32"]
    whole, _ = run_script(step3, *args, "--save-dir", tmp_path / "whole")
    out = tmp_path / "cut"
    journal = _stop_stalled("step3evaluation", 2, args, out, signal_number)
    assert [r["row"] for r in journal.records] == [0, 1]
    resumed, _ = run_script(step3, *args, "--save-dir", out, "--resume", journal.path)
    _same_results(whole, resumed)
    v_whole, v_resumed = load_vars(whole), load_vars(resumed)
    assert len(v_resumed["eval_files"]) == 10
    for a, b in zip(v_whole["eval_files"], v_resumed["eval_files"], strict=True):
        class_file = load_vars(resumed.parent / b)
        assert all(len(class_file[f"y_{v}"][5]) == 12 for v in ("k", "q", "k_ll"))
        _same_results(whole.parent / a, resumed.parent / b)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL])
def test_step1_resumes_a_batch_that_spans_two_classes(
    default_files, small_images: Path, tmp_path: Path, signal_number: int
) -> None:
    """Batch 4 over classes of 10 train images: batch 3 holds images 8-9 of class 0
    and 0-1 of class 1; stopped in batch 4, the journal holds class 0 alone, and
    the resumed run reads class 1 from its first image, in batches aligned
    differently from an uninterrupted run's, to a bit-identical result."""
    images = tmp_path / "images"
    shutil.copytree(small_images, images)
    args = ["--network", str(default_files.model), "--images-dir", str(images),
            "--batch-size", "4"]  # fmt: skip
    whole, _ = run_script(step1, *args, "--save-dir", tmp_path / "whole")
    out = tmp_path / "cut"
    journal = _stop_stalled("step1filteractivations", 4, args, out, signal_number)
    assert [r["class"] for r in journal.records] == [0]
    run_id = journal.path.name.split("-QFA-")[0]
    resumed, _ = run_script(step1, *args, "--save-dir", out, "--resume", run_id)
    _same_results(whole, resumed)
    # the exemplars of class 0 came from the journal alone
    v = load_vars(whole)
    exemplars = [row for layer in v["exemplar_images"] for row in layer]
    of_class_0 = {(f, p) for f, row in enumerate(exemplars) for p in row
                  if p.startswith(v["labels_id"][0] + "/")}  # fmt: skip
    train, record = v["train_filenames"], journal.records[0]
    journaled = {(f, train[p]) for f, p in zip(record["exemplar_filters"].tolist(),
                 record["exemplar_positions"].tolist(), strict=True)}  # fmt: skip
    assert of_class_0 and of_class_0 <= journaled
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*-journal.pkl"))


def test_step1_journal_costs_what_the_classes_cost(
    default_files, small_images: Path, tmp_path: Path, monkeypatch
) -> None:
    """All bytes the journal takes: per class, one float64 row, a count and its
    exemplars still in the top N (6 bytes each: a uint8 filter, a float32
    value, a uint8 position), never the whole top N."""
    sizes, entries = [], []
    original = Journal.append

    def append(journal, record):
        original(journal, record)
        sizes.append(journal.path.stat().st_size)
        entries.append(len(record["exemplar_values"]))

    monkeypatch.setattr(Journal, "append", append)
    path, _ = run_script(step1, "--network", default_files.model, "--images-dir",
                         small_images, "--save-dir", tmp_path)  # fmt: skip
    steps = np.diff(sizes)
    assert (
        len(sizes) == 10 and (steps <= 176 * 8 + 6 * np.array(entries[1:]) + 450).all()
    )
    assert sum(entries) < 176 * 9 * 10 / 3  # far from a whole top N per class
    assert sizes[-1] < 2 * path.stat().st_size


def _finished_step1(
    default_files, small_images: Path, save_dir: Path
) -> tuple[list[str], Path]:
    """Run step 1 of the default CNN on the small images; return its flags and
    its -vars.pkl."""
    args = ["--network", str(default_files.model), "--images-dir", str(small_images),
            "--save-dir", str(save_dir)]  # fmt: skip
    done, _ = run_script(step1, *args)
    return args, done


def test_resume_refuses_other_inputs_and_finished_runs(
    capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    args, done = _finished_step1(default_files, small_images, tmp_path)
    run_id = done.name.split("-QFA-")[0]
    assert step1.main([*args, "--resume", run_id]) == 2
    assert f"--resume {run_id}: 0 interrupted" in capsys.readouterr().err
    inputs = {**load_vars(done)["meta"], "split": 0.5}
    fake = Run(tmp_path, f"{run_id}-9", "QFA", "fashion_mnist_cnn")
    Journal.create(fake, {"inputs": inputs})
    assert step1.main([*args, "--resume", str(fake.path("journal.pkl"))]) == 2
    err = capsys.readouterr().err
    assert "split was 0.5 in the interrupted run but is 0.2 now" in err
    assert len([line for line in err.splitlines() if line.startswith("ERROR")]) == 1
    other = Run(tmp_path, f"{run_id}-8", "QFA", "fashion_mnist_cnn")
    Journal.create(other, {"inputs": load_vars(done)["meta"]})
    resume = ["--resume", str(other.path("journal.pkl")), "--exemplars", "5"]
    assert step1.main([*args, *resume]) == 2
    assert (
        "exemplars was 9 in the interrupted run but is 5 now" in capsys.readouterr().err
    )


def test_resume_refuses_exemplars_of_another_class(
    capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    args, done = _finished_step1(default_files, small_images, tmp_path)
    fake = Run(tmp_path, "2026-01-01-0000", "QFA", "fashion_mnist_cnn")
    journal = Journal.create(fake, {"inputs": load_vars(done)["meta"]})
    record = {"class": 0, "sums": np.zeros(176), "count": 10}
    journal.append({**record, "exemplar_filters": np.array([3], np.uint8),
                    "exemplar_values": np.array([0.5], np.float32),
                    "exemplar_positions": np.array([10], np.uint8)})  # fmt: skip
    assert step1.main([*args, "--resume", str(journal.path)]) == 2
    err = capsys.readouterr().err
    assert f"{journal.path} holds a record that is not a step-1 class record" in err


# ------------------------------------------------------------------ bad images


def _bomb_png(path: Path, side: int = 20_000) -> None:
    """A PNG whose header claims side x side pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 4)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )  # fmt: skip


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """A folder of every kind of odd file; see docs/RELIABILITY.md."""
    from PIL import Image

    root = tmp_path_factory.mktemp("zoo") / "images"
    formats, broken = root / "formats", root / "broken"
    formats.mkdir(parents=True)
    broken.mkdir()
    (root / "empty").mkdir()
    gradient = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))
    Image.fromarray(gradient).convert("CMYK").save(formats / "cmyk.jpg", quality=95)
    Image.fromarray(gradient.astype(np.uint16) * 257).save(formats / "deep16.png")
    Image.fromarray(gradient).convert("P").save(formats / "palette.png")
    Image.fromarray(gradient).convert("RGBA").save(formats / "rgba.png")
    Image.fromarray(gradient).save(formats / "gray.jpg", quality=95)
    Image.fromarray(gradient).save(formats / "rgb_named.txt", format="PNG")
    Image.fromarray(gradient).save(os.fsdecode(bytes(formats) + b"/caf\xe9.png"))
    Image.fromarray(gradient).save(formats / ".hidden.png")
    os.symlink("..", formats / "loop")  # a folder link back up: not followed
    Image.fromarray(gradient).save(broken / "whole.png")
    jpeg = (formats / "gray.jpg").read_bytes()
    (broken / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    png = (formats / "palette.png").read_bytes()
    (broken / "truncated.png").write_bytes(png[: len(png) - 30])
    (broken / "zero.png").write_bytes(b"")
    (broken / "text.jpg").write_text("not an image\n")
    _bomb_png(broken / "bomb.png")
    os.symlink("selfloop.png", broken / "selfloop.png")  # a link loop
    return root


def test_odd_formats_are_read_correctly(zoo: Path) -> None:
    from filtag import data

    spec = data.ImageSpec(32, 32, "grayscale")
    gradient = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))
    for name in ("deep16.png", "palette.png", "rgba.png", "rgb_named.txt"):
        image = data.load_image(str(zoo / "formats" / name), spec)
        np.testing.assert_array_equal(image[..., 0], gradient, err_msg=name)
    for name in ("cmyk.jpg", "gray.jpg"):  # lossy: close, not equal
        image = data.load_image(str(zoo / "formats" / name), spec)
        assert np.abs(image[..., 0].astype(int) - gradient).max() <= 8, name
    rgb = data.load_image(
        str(zoo / "formats" / "deep16.png"), data.ImageSpec(16, 16, "rgb")
    )
    assert rgb.shape == (16, 16, 3) and rgb[0, 1, 0] == 24  # nearest: column 3 of 32


def test_a_run_survives_every_bad_file(
    zoo: Path, default_files, tmp_path: Path
) -> None:
    path, _ = run_script(
        step1, "--network", default_files.model, "--images-dir", zoo,
        "--class-names", default_files.class_names, "--save-dir", tmp_path,
    )  # fmt: skip
    v = load_vars(path)
    meta = v["meta"]
    assert v["labels_id"] == {0: "broken", 1: "empty", 2: "formats"}
    rejected = meta["skipped_not_images"]
    assert sorted(rejected) == [
        "broken/selfloop.png",  # a link loop
        "broken/text.jpg",
        "broken/truncated.jpg",  # cut inside its header
        "broken/zero.png",
    ]
    assert (
        rejected["broken/text.jpg"]
        == rejected["broken/zero.png"]
        == "not an image file"
    )
    assert "unreadable" in rejected["broken/selfloop.png"]
    assert "unreadable" in rejected["broken/truncated.jpg"]
    assert meta["skipped_hidden"] == 1
    # broken/: whole.png, truncated.png and bomb.png have image headers; one is
    # a test image; of the 2 train images only whole.png decodes.
    train_broken = [p for p in v["train_filenames"] if p.startswith("broken/")]
    assert meta["images_per_class"]["broken"] == int("broken/whole.png" in train_broken)
    assert meta["skipped_broken"] == len(train_broken) - int(
        "broken/whole.png" in train_broken
    )
    assert meta["images_per_class"]["empty"] == 0
    assert np.isnan(v["filter_act_1"][0]).all()  # the empty class
    formats = sorted(p for p in v["train_filenames"] + v["test_filenames"]
                     if p.startswith("formats/"))  # fmt: skip
    assert len(formats) == 7 and "formats/caf\udce9.png" in formats
    assert meta["images_per_class"]["formats"] == 6
    warnings = Path(str(path).replace("-vars.pkl", "-warnings.log")).read_text()
    for name in train_broken:
        if name != "broken/whole.png":
            assert f"{name}: cannot decode" in warnings
    assert "broken/text.jpg: not an image file" in warnings
    assert "class 'empty' has no image files" in warnings
    info = Path(str(path).replace("-vars.pkl", "-info.log")).read_text()
    assert (
        "skipped hidden" in info
        and f"{meta['skipped_broken']} broken, 4 non-image" in info
    )


# ------------------------------------------------------------- mismatched files


def test_files_of_different_runs_are_refused_naming_both(
    default_chain, lite0_chain, capsys, tmp_path: Path
) -> None:
    from filtag.artifacts import write_vars

    step4 = importlib.import_module("step4hitrates")
    # a step-3 index whose class file was swapped for one of another run
    v3 = load_vars(default_chain["step3"])
    other = load_vars(lite0_chain["step3"])
    mixed = tmp_path / "2026-01-01-0000-E-mixed-vars.pkl"
    shutil.copy(
        lite0_chain["step3"].parent / other["eval_files"][0], tmp_path / "x.pkl"
    )
    shutil.copy(
        lite0_chain["step3"].parent
        / other["eval_files"][0].replace(".pkl", "-names.pkl"),
        tmp_path / "x-names.pkl",
    )
    write_vars(mixed, {**v3, "eval_files": ["x.pkl", *v3["eval_files"][1:]]}, "mixed")
    assert step4.main(["--eval-file", str(mixed), "--save-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'x.pkl'} (classes ['n01614925']" in err
    assert f"does not belong to {mixed}" in err
    # a step-2 file whose tags do not fit the layers of its step-1 file
    v2 = load_vars(default_chain["step2"])
    v2["filTags_k"] = {k: tags[:-1] for k, tags in v2["filTags_k"].items()}
    v2["filTags_q"] = {k: tags[:-1] for k, tags in v2["filTags_q"].items()}
    cut = write_vars(tmp_path / "2026-01-01-0000-TF-cut-vars.pkl", v2, "cut")
    assert step3.main(["--filtags-file", str(cut), "--save-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{cut} has tags for [16, 32, 64] filters per layer but its step-1 file" in err
    )
    assert str(v2["meta"]["activations_file"]) in err


# ------------------------------------------------- operating-system errors, names


def test_a_full_disk_is_one_line_that_says_how_to_resume(
    default_files, small_images: Path, tmp_path: Path
) -> None:
    """A real EFBIG: the file-size limit of the process, as a full disk would stop
    the writes; the run ends with one line naming the file, the cause and
    --resume, leaves no temporary file, and resumes to the whole run's result."""
    args = ["--network", str(default_files.model), "--images-dir", str(small_images)]
    whole, _ = run_script(step1, *args, "--save-dir", tmp_path / "whole")
    out = tmp_path / "full"
    code = (
        "import resource, signal, sys, step1filteractivations as s\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))\n"
        "sys.exit(s.main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args, "--save-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "File too large" in errors[0] and str(out) in errors[0]
    run_id = _journal(out).path.name.split("-QFA-")[0]
    assert f"--resume {run_id}" in errors[0]
    assert not list(out.glob(".*.tmp"))
    resumed, _ = run_script(step1, *args, "--save-dir", out, "--resume", run_id)
    _same_results(whole, resumed)


def test_a_folder_removed_during_a_run_is_one_line(
    monkeypatch, capsys, default_files, small_images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gone"
    calls = 0
    original = activations.FilterProbe.__call__

    def call(probe, images):
        nonlocal calls
        calls += 1
        if calls == 3:
            shutil.rmtree(out)
        return original(probe, images)

    monkeypatch.setattr(activations.FilterProbe, "__call__", call)
    args = ["--network", str(default_files.model), "--images-dir", str(small_images),
            "--batch-size", "8", "--save-dir", str(out)]  # fmt: skip
    assert step1.main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert "No such file or directory" in line and "--resume" in line


def test_class_names_that_are_not_utf8_work_in_every_script(
    default_files, small_images: Path, tmp_path: Path
) -> None:
    """A folder named b'Ankle_boot\\xe9' (not UTF-8): kept unchanged in the pickles,
    escaped in text, pages and figures."""
    images = tmp_path / "images"
    shutil.copytree(small_images, images)
    odd = os.fsdecode(b"Ankle_boot\xe9")
    os.rename(images / "Ankle_boot", os.fsencode(images) + b"/Ankle_boot\xe9")
    step2 = importlib.import_module("step2filtertags")
    step4 = importlib.import_module("step4hitrates")
    scripts = {name: importlib.import_module(name) for name in (
        "si-eval", "filTagsvis", "hitrates-plots", "labdecode")}  # fmt: skip
    out = ["--save-dir", tmp_path]
    s1, _ = run_script(step1, "--network", default_files.model, "--images-dir",
                       images, *out)  # fmt: skip
    assert load_vars(s1)["labels_id"][0] == odd
    s2, _ = run_script(step2, "--activations-file", s1, "--k-q", "1,5", *out)
    s3, _ = run_script(step3, "--filtags-file", s2, "--export", *out)
    s4, printed = run_script(step4, "--eval-file", s3, *out)
    assert "Ankle_boot\\xe9" in Path(str(s4).replace("-vars.pkl", "-results.txt")
                                      ).read_text()  # fmt: skip
    assert odd in load_vars(s4)["hit_k"]
    si = scripts["si-eval"]
    _, printed = run_script(si, "--filtags-file", s2, "--class-name", odd, *out)
    assert "Ankle_boot\\xe9" in printed
    image = next((images / odd).iterdir())
    _, printed = run_script(si, "--filtags-file", s2, "--image", image, "--html", *out)
    page = next(tmp_path.glob("*-explanation.html")).read_text()
    assert "Ankle_boot\\xe9" in printed and "Ankle_boot\\xe9" in page
    vis, _ = run_script(scripts["filTagsvis"], "--filtags-file", s2, *out)
    assert (
        "Ankle_boot\\\\xe9" in vis.read_text() or "Ankle_boot\\xe9" in vis.read_text()
    )
    plots_page, _ = run_script(scripts["hitrates-plots"], "--hitrates-file", s4, *out)
    assert plots_page.is_file()
    decoded, _ = run_script(scripts["labdecode"], "--vars-file", s3, *out)
    assert load_vars(decoded)["classes"][0] == odd
