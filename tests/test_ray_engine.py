"""--engine ray: steps 1 and 3 on a local Ray equal the local engine; faults; resume.

One local Ray (2 CPUs) serves the module. Each Ray run starts its actors (a
process importing TensorFlow and building the network), so the runs here are few
and small: the 12-images-per-class Fashion-MNIST folder with two broken images.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import filtag
from filtag import ray_engine
from filtag.artifacts import Run, load_vars
from filtag.errors import FiltagError
from filtag.resume import Journal
from tests.conftest import refused
from tests.support import ray_faults

ray = pytest.importorskip("ray")

step1_script = importlib.import_module("step1filteractivations")

#: meta keys that differ between two runs of the same inputs, or between engines.
RUN_SPECIFIC = {"run_id", "created_utc", "resume", "engine", "xla", "versions"}


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray with 2 CPUs for the module; its workers know the die marker."""
    marker = tmp_path_factory.mktemp("ray") / "died"
    args = ray_engine.local_init_args(None)
    args["num_cpus"] = 2
    args["runtime_env"]["env_vars"][ray_faults.MARKER_VARIABLE] = str(marker)
    repo = str(Path(__file__).resolve().parent.parent)
    args["runtime_env"]["env_vars"]["PYTHONPATH"] = repo
    ray.init(**args)
    yield marker
    ray.shutdown()


@pytest.fixture(scope="module")
def images(small_images: Path, tmp_path_factory) -> Path:
    """The small folder, with a truncated (undecodable) PNG in two classes."""
    root = tmp_path_factory.mktemp("ray_images") / "images"
    shutil.copytree(small_images, root)
    for class_dir in sorted(root.iterdir())[:2]:
        source = sorted(class_dir.iterdir())[0].read_bytes()
        (class_dir / "zz_broken.png").write_bytes(source[: len(source) // 2])
    return root


def _step1(network: Path, images: Path, out: Path, **kwargs) -> Path:
    return filtag.step1(str(network), images, save_dir=out, batch_size=5, **kwargs).path


@pytest.fixture(scope="module")
def local_step1(default_files, images: Path, tmp_path_factory) -> Path:
    """Step 1 with the local engine: the reference of the Ray runs."""
    return _step1(default_files.model, images, tmp_path_factory.mktemp("local1"))


def _same_step1(local: Path, other: Path) -> None:
    """Assert two step-1 files agree: activations within 1e-9, the rest equal."""
    a, b = load_vars(local), load_vars(other)
    assert list(a) == list(b)
    for name in a:
        if name.startswith("filter_act_"):
            for x, y in zip(a[name], b[name], strict=True):
                assert x.dtype == y.dtype == np.float64
                np.testing.assert_allclose(y, x, rtol=1e-9, atol=0)
        elif name == "exemplar_values":
            for x, y in zip(a[name], b[name], strict=True):
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
        elif name == "meta":
            strip = lambda m: {k: v for k, v in m.items() if k not in RUN_SPECIFIC}  # noqa: E731
            assert strip(a[name]) == strip(b[name])
        else:
            assert a[name] == b[name], name


def test_step1_ray_equals_local(
    local_ray, default_files, images: Path, local_step1: Path, tmp_path: Path
) -> None:
    path = _step1(default_files.model, images, tmp_path, engine="ray")
    _same_step1(local_step1, path)
    meta = load_vars(path)["meta"]
    assert meta["skipped_broken"] == 1  # one broken image is a train image
    assert meta["engine"] == {"name": "ray", "address": None, "actors": 1,
                              "gpus_per_actor": 0.0, "xla_used": ["off"]}  # fmt: skip
    assert load_vars(local_step1)["meta"]["engine"] == {"name": "local"}


def test_step1_ray_survives_a_killed_actor(
    local_ray, monkeypatch, default_files, images, local_step1, tmp_path
) -> None:
    """The actor's process dies in its third batch; Ray restarts it and retries."""
    monkeypatch.setattr(ray_engine, "ProbeActor", ray_faults.DyingProbeActor)
    path = _step1(default_files.model, images, tmp_path, engine="ray")
    assert local_ray.is_file()  # it did die
    _same_step1(local_step1, path)


def test_step1_ray_resumes_classes_in_any_order(
    local_ray, monkeypatch, default_files, images, local_step1, tmp_path
) -> None:
    """A Ray run stopped after 3 journaled classes, resumed with Ray."""
    appended = []
    original = Journal.append

    def append(journal, record):
        if len(appended) == 3:
            raise KeyboardInterrupt
        appended.append(record["class"])
        original(journal, record)

    with monkeypatch.context() as patch:
        patch.setattr(Journal, "append", append)
        with pytest.raises(KeyboardInterrupt, match="--resume"):
            _step1(default_files.model, images, tmp_path, engine="ray")
    (journal_path,) = tmp_path.glob("*-journal.pkl")
    run_id = journal_path.name.split("-QFA-")[0]
    run = Run(tmp_path, run_id, "QFA", "fashion_mnist_cnn")
    journal = Journal.read(run)
    assert [r["class"] for r in journal.records] == appended
    journal_path.unlink()  # the same records, written in reverse order
    reversed_journal = Journal.create(run, journal.header)
    for record in reversed(journal.records):
        reversed_journal.append(record)
    path = _step1(default_files.model, images, tmp_path, engine="ray", resume=run_id)
    _same_step1(local_step1, path)
    assert (
        "resuming: 3 of 10 classes are done"
        in Path(str(path).replace("-vars.pkl", "-info.log")).read_text()
    )


def test_step3_ray_equals_local(local_ray, local_step1: Path, tmp_path: Path) -> None:
    tags = filtag.step2(local_step1, k_q="0,1,5,17", save_dir=tmp_path).path
    runs = {
        engine: filtag.step3(
            tags, save_dir=tmp_path / engine, batch_size=3, engine=engine
        ).path
        for engine in ("local", "ray")
    }
    index = {engine: load_vars(path) for engine, path in runs.items()}
    assert index["ray"]["meta"]["images_skipped"] == 1  # one broken test image
    strip = lambda m: {k: v for k, v in m.items() if k not in RUN_SPECIFIC}  # noqa: E731
    assert strip(index["ray"]["meta"]) == strip(index["local"]["meta"])
    assert index["ray"]["classes"] == index["local"]["classes"]
    for a, b in zip(
        index["local"]["eval_files"], index["ray"]["eval_files"], strict=True
    ):
        assert a.split("-E-")[1] == b.split("-E-")[1]
        local, other = (load_vars(runs[e].parent / f) for e, f in
                        (("local", a), ("ray", b)))  # fmt: skip
        assert other == local  # top-5, rankings, files: identical, in order


def test_settled_counts_each_image_once_in_any_order() -> None:
    groups = np.array([0, 0, 1, 1, 1, 2])
    settled = ray_engine.Settled(groups, np.array([0, 1, 2, 3, 4]), 4)
    first = settled.take(np.array([4, 2, 4]))  # a retried row comes twice
    assert first.tolist() == [True, True, False]
    assert settled.finished(np.array([4, 2])) == []
    assert settled.take(np.array([1, 3, 2])).tolist() == [True, True, False]
    assert settled.finished(np.array([1, 3])) == [1]  # class 1 before class 0
    with pytest.raises(FiltagError, match="no result for 1 images"):
        settled.check_all()
    settled.take(np.array([0]))
    assert settled.finished(np.array([0])) == [0]
    settled.check_all()


def test_pool_size_defaults() -> None:
    options = ray_engine.RayOptions()
    assert ray_engine.pool_size({"CPU": 16, "GPU": 8}, options) == (8, 1.0)
    assert ray_engine.pool_size({"CPU": 16}, options) == (8, 0.0)
    assert ray_engine.pool_size({"CPU": 1}, options) == (1, 0.0)
    half = ray_engine.RayOptions(gpus_per_actor=0.5)
    assert ray_engine.pool_size({"CPU": 16, "GPU": 8}, half) == (16, 0.5)
    assert ray_engine.pool_size({"CPU": 2}, ray_engine.RayOptions(actors=3)) == (
        3,
        0.0,
    )


def test_engine_ray_without_ray_says_what_to_install(
    monkeypatch, default_files, images: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray: ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    err = refused(step1_script, "--network", default_files.model, "--images-dir",
                  images, "--save-dir", tmp_path, "--engine", "ray")  # fmt: skip
    last = err.strip().splitlines()[-1]
    assert "pip install 'filtag[ray]'" in last and "--engine ray" in last
    assert not list(tmp_path.iterdir())  # refused before any file


def test_ray_inputs_need_engine_ray(default_files, images, tmp_path) -> None:
    err = refused(step1_script, "--network", default_files.model, "--images-dir",
                  images, "--save-dir", tmp_path, "--ray-actors", "2")  # fmt: skip
    assert "ray_actors applies with engine ray only" in err
