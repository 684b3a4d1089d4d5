"""Artifacts: the seed's file set, atomic writes, run ids, the restricted loader."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from filtag import artifacts
from filtag.errors import ArtifactError, UnsafePickleError


def _sample() -> dict:
    return {
        "labels_id": {0: "cat", 1: "dog"},
        "filter_act_0": [np.arange(3, dtype=np.float64), np.zeros(2, np.float32)],
        "flags": np.array([[True, False]]).T,
        "meta": {"step": "QFA", "n": np.int64(3), "x": 1.5, "s": {1, 2}, "t": (1, "a")},
    }


def _assert_same(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


def test_round_trip_through_restricted_loader(tmp_path: Path) -> None:
    path = tmp_path / "r-vars.pkl"
    artifacts.write_vars(path, _sample(), "header line")
    loaded = artifacts.load_vars(path)
    _assert_same(loaded, _sample())


def test_file_set_is_the_seed_layout(tmp_path: Path) -> None:
    path = tmp_path / "r-vars.pkl"
    artifacts.write_vars(path, _sample(), "header line")
    with (tmp_path / "r-vars-names.pkl").open("rb") as f:
        names = pickle.load(f)
        assert f.read() == b""  # ONE pickled list
    assert names == list(_sample())
    with path.open("rb") as f:  # several pickles in a row, plain pickle reads them
        values = [pickle.load(f) for _ in names]
        assert f.read() == b""
    _assert_same(dict(zip(names, values, strict=True)), _sample())
    info = (tmp_path / "r-vars-info.txt").read_text()
    assert info.startswith("header line")
    assert "load_vars('r-vars.pkl')" in info
    assert "- labels_id:" in info


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_foreign_global_is_refused_before_it_runs(
    tmp_path: Path, protocol: int
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil-vars.pkl"
    artifacts.atomic_write_bytes(
        artifacts.names_path(path), [pickle.dumps(["labels_id", "meta"], protocol)]
    )
    payload = {"labels_id": {0: "cat"}, "nested": [(1, _Exploit(marker))]}
    artifacts.atomic_write_bytes(path, [pickle.dumps(payload, protocol)])
    with pytest.raises(UnsafePickleError, match=r"refused global 'posix\.system'"):
        artifacts.load_vars(path)
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r-vars.pkl"
    artifacts.write_vars(path, _sample(), "h")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ArtifactError, match="truncated or not a filtag file"):
        artifacts.load_vars(path)


def test_missing_names_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r-vars.pkl"
    artifacts.write_vars(path, _sample(), "h")
    artifacts.names_path(path).unlink()
    with pytest.raises(ArtifactError, match=r"r-vars-names\.pkl not found"):
        artifacts.load_vars(path)


def test_unsaveable_type_is_refused_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "r-vars.pkl"
    with pytest.raises(TypeError, match="'meta'"):
        artifacts.write_vars(path, {"meta": {"p": Path("x")}}, "h")
    with pytest.raises(TypeError, match="'names' holds a ndarray of dtype <U1"):
        artifacts.write_vars(path, {"names": np.array(["a", "b"])}, "h")
    assert list(tmp_path.iterdir()) == []


def test_a_str_array_is_refused_when_read(tmp_path: Path) -> None:
    path = tmp_path / "r-vars.pkl"
    artifacts.atomic_write_bytes(artifacts.names_path(path), [pickle.dumps(["v"])])
    artifacts.atomic_write_bytes(path, [pickle.dumps(np.array(["a", "b"]))])
    with pytest.raises(UnsafePickleError, match="refused numpy dtype <U1: it is not"):
        artifacts.load_vars(path)


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"

    def chunks():
        yield b"half"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        artifacts.atomic_write_bytes(target, chunks())
    assert list(tmp_path.iterdir()) == []


def test_runs_never_share_a_prefix(tmp_path: Path) -> None:
    first = artifacts.reserve_run(tmp_path, "QFA", "VGG16", 0)
    second = artifacts.reserve_run(tmp_path, "QFA", "VGG16", 0)
    other_step = artifacts.reserve_run(tmp_path, "TF", "VGG16", 0)
    assert first.prefix != second.prefix
    assert second.run_id in (f"{first.run_id}-2", artifacts.make_run_id(0))
    assert other_step.path("info.log").is_file()
    assert first.path("info.log").is_file() and second.path("info.log").is_file()


def test_run_id_uses_time_delta() -> None:
    import datetime as dt

    now = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.timezone.utc)
    assert artifacts.make_run_id(0, now) == "2026-01-31-2330"
    assert artifacts.make_run_id(1, now) == "2026-02-01-0030"
    assert artifacts.make_run_id(-5.5, now) == "2026-01-31-1800"


def test_step_check_names_the_file_and_the_step(tmp_path: Path) -> None:
    path = tmp_path / "r-vars.pkl"
    artifacts.write_vars(path, {"meta": {"step": "E"}}, "h")
    with pytest.raises(ArtifactError, match=r"--activations-file .*r-vars.pkl is a "):
        artifacts.load_step_vars(path, "QFA", "--activations-file")
    with pytest.raises(ArtifactError, match="lacks labels_id"):
        artifacts.load_step_vars(path, "E", "--eval-file", required=["labels_id"])
