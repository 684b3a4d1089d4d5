"""Fuzzing (hypothesis): the loader and the argument parsing never crash or run code."""

from __future__ import annotations

import contextlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filtag import artifacts, cli, params
from filtag.errors import ArtifactError

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _valid_pickles() -> list[bytes]:
    """Real filtag-style pickles, every protocol, to mutate."""
    value = {
        "labels_id": {0: "cat", 1: "dog"},
        "filter_act_0": [np.arange(4, dtype=np.float64), np.ones(3, np.float32)],
        "meta": {"step": "QFA", "names": np.array(["a", "bc"]), "s": {1, 2}},
    }
    return [
        pickle.dumps(value, protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)
    ]


@st.composite
def mutated_pickles(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_valid_pickles())))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position:]
            if not data:
                break
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


EVIL_GLOBALS = [
    b"cos\nsystem\n",
    b"cbuiltins\neval\n",
    b"cbuiltins\nexec\n",
    b"csubprocess\nPopen\n",
    b"cnumpy\nload\n",
    b"cposix\nsystem\n",
]


@st.composite
def evil_pickles(draw) -> bytes:
    """A pickle that calls a dangerous global, maybe nested in containers."""
    call = draw(st.sampled_from(EVIL_GLOBALS)) + b"(S'touch /tmp/filtag-pwned'\ntR"
    wrapped = call
    for _ in range(draw(st.integers(0, 3))):
        wrapped = draw(st.sampled_from([b"(l" + wrapped + b"a", b"(" + wrapped + b"t",
                                        b"(dS'k'\n" + wrapped + b"s"]))  # fmt: skip
    return wrapped + b"."


def _load(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "f-vars.pkl"
    artifacts.atomic_write_bytes(artifacts.names_path(path), [pickle.dumps(["v"])])
    artifacts.atomic_write_bytes(path, [payload])
    artifacts.load_vars(path)


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated_pickles()))
def test_random_or_mutated_bytes_never_crash_the_loader(
    tmp_path: Path, payload: bytes
) -> None:
    try:
        _load(tmp_path, payload)
    except ArtifactError:
        pass


@FUZZ
@given(evil_pickles())
def test_code_in_a_pickle_never_runs(tmp_path: Path, payload: bytes) -> None:
    marker = Path("/tmp/filtag-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(ArtifactError):
        _load(tmp_path, payload)
    assert not marker.exists()


FLAG_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "0",
            "-1",
            "1.5",
            "1e9",
            "0-25",
            "5-1",
            "1,,2",
            "nan",
            "inf",
            "x",
            "",
            " ",
            "--",
            "1-2-3",
            "\udce9",
        ]
    ),
)


#: One value name per command-line option (--layers serves two scripts).
OPTIONS = {param.flag(name): name for name, param in reversed(params.PARAMS.items())}


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(sorted(OPTIONS.values())), FLAG_VALUES),
                max_size=5))  # fmt: skip
def test_argument_parsing_gives_each_validators_value_or_one_line(
    pairs: list[tuple[str, str]],
) -> None:
    defaults = dict.fromkeys(OPTIONS.values())
    argv = [
        item
        for name, value in pairs
        for item in (params.PARAMS[name].flag(name), value)
    ]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = cli.parse("fuzz", argv, **defaults)
    except SystemExit as exc:  # argparse's one-line error, exit 2
        assert exc.code == 2
        message = err.getvalue()
        assert message.count("\n") <= 1 or "usage:" in message
        assert "error:" in message
        return
    last = dict(pairs)  # the last value of each flag wins
    for name in defaults:
        param = params.PARAMS[name]
        if name in last and not param.switch:
            assert getattr(args, name) == param.convert(last[name]), name
        elif name not in last:
            assert getattr(args, name) is None, name


@FUZZ
@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(),
                 st.lists(st.integers(-5, 200), max_size=5), st.none()))  # fmt: skip
def test_every_validator_accepts_or_says_what_it_expected(value: object) -> None:
    for name, param in params.PARAMS.items():
        try:
            converted = param.convert(value)
        except ValueError as exc:
            message = str(exc)
            assert message.startswith(("expected", "range")), (name, message)
            continue
        assert converted is not None, name
        assert param.convert(converted) == converted, name  # idempotent
