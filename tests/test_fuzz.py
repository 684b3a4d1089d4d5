"""Fuzzing (hypothesis): the loader and the argument parsing never crash or run code;
shared and nested data is loaded exactly when it is no larger than its file."""

from __future__ import annotations

import contextlib
import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filtag import artifacts, cli, params, safepickle
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


def _is_value(text: str) -> bool:
    """Tell whether argparse surely reads ``text`` after an option as its value."""
    return not text.startswith("-") or re.fullmatch(r"-\d+|-\d*\.\d+", text) is not None


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(sorted(OPTIONS.values())), FLAG_VALUES),
                max_size=5))  # fmt: skip
def test_argument_parsing_gives_the_validators_values(
    pairs: list[tuple[str, str]],
) -> None:
    """Parsed values are what each flag's validator makes of its last value."""
    defaults = dict.fromkeys(OPTIONS.values())
    argv = [
        item
        for name, value in pairs
        for item in (params.PARAMS[name].flag(name), value)
    ]
    last = dict(pairs)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = cli.parse("fuzz", argv, **defaults)
    except SystemExit as exc:  # argparse's one-line error, exit 2
        assert exc.code == 2
        message = re.fullmatch(
            r".*?: error: (.*) \(see --help\)\n", err.getvalue(), re.S
        )
        assert message, err.getvalue()
        flag = re.match(r"argument (--[\w-]+): (.*)", message[1])
        if flag and flag[1] in OPTIONS and not flag[2].startswith("expected one arg"):
            name = OPTIONS[flag[1]]
            with pytest.raises(ValueError, match=re.escape(flag[2])):
                params.PARAMS[name].convert(last[name])
        return
    for name, value in last.items():
        if _is_value(value):
            assert not params.PARAMS[name].switch, (name, value)  # a stray value fails
            assert getattr(args, name) == params.PARAMS[name].convert(value), name
    if all(map(_is_value, last.values())):  # no value was read as an option
        assert all(getattr(args, n) is None for n in defaults if n not in last)


@FUZZ
@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(),
                 st.lists(st.integers(-5, 200), max_size=5), st.none()))  # fmt: skip
def test_every_validator_accepts_or_explains(value: object) -> None:
    """A value is either refused naming it, or turned into one the validator keeps."""
    pieces = value if isinstance(value, list) else re.split(r"[,\s]+", str(value))
    for flag in params.PARAMS.values():
        try:
            converted = flag.convert(value)
        except ValueError as exc:
            text = str(exc)
            assert re.fullmatch(r"expected .+|range '.+' runs backwards", text), text
            if "; Received: " in text:
                received = text.split("; Received: ", 1)[1]
                assert received in {repr(value), *map(repr, pieces)}, text
        else:
            assert flag.convert(converted) == converted, (flag.help, value)


@st.composite
def shared_structures(draw) -> tuple[Any, bool]:
    """Nested lists, tuples and dicts whose children are drawn from earlier
    nodes, so containers are shared (the memo refers to them again), chains
    get deep, and, sometimes, the root is appended inside itself.

    Returns:
        (value, whether it contains itself).
    """
    leaves = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=3), st.none())
    pool: list[Any] = draw(st.lists(leaves, min_size=1, max_size=4))
    for _ in range(draw(st.integers(1, 14))):
        children = draw(st.lists(st.sampled_from(pool[-6:]), max_size=6))
        kind = draw(st.sampled_from([list, tuple, dict]))
        node = (
            {f"k{i}": child for i, child in enumerate(children)}
            if kind is dict
            else kind(children)
        )
        pool.append(node)
    root = pool[-1]
    lists = [node for node in pool if type(node) is list]
    looped = bool(lists) and draw(st.booleans())
    if looped:
        root = lists[-1]
        root.append(root)
    return root, looped


def _depth_and_items(value: Any) -> tuple[int, int]:
    """Reference: nesting depth and container items counted per reference."""
    memo: dict[int, tuple[int, int]] = {}

    def walk(node: Any) -> tuple[int, int]:
        if type(node) not in (list, tuple, dict):
            return 0, 0
        if id(node) not in memo:
            children = node.values() if type(node) is dict else node
            found = [walk(child) for child in children]
            memo[id(node)] = (
                1 + max((d for d, _ in found), default=0),
                len(node) + sum(n for _, n in found),
            )
        return memo[id(node)]

    return walk(value)


@FUZZ
@given(shared_structures(), st.integers(2, pickle.HIGHEST_PROTOCOL))
def test_sharing_and_nesting_are_bounded_by_the_pickle(
    structure: tuple[Any, bool], protocol: int
) -> None:
    """Loaded iff no deeper than MAX_DEPTH and, counting every reference, no
    more than ITEMS_PER_BYTE container items per byte; then equal to what was
    pickled."""
    value, looped = structure
    data = pickle.dumps(value, protocol)
    if looped:
        with pytest.raises(safepickle.PickleRefused, match="contains itself"):
            safepickle.safe_loads(data)
        return
    depth, items = _depth_and_items(value)
    limit = safepickle.ITEMS_PER_BYTE * len(data) + safepickle.SLACK
    if depth > safepickle.MAX_DEPTH or items > limit:
        with pytest.raises(safepickle.PickleRefused, match=r"deeper|items in"):
            safepickle.safe_loads(data)
    else:
        assert safepickle.safe_loads(data) == value
