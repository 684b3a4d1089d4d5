"""Step files are checked before use: crafted ones are refused fast, in little memory.

Memo bombs, deep nesting and self-references in every variable of every file of
a real run (the default chain), each refused by the scripts that read it with
one line and exit code 2 within seconds; the unpickler's own bombs (claimed
sizes, memo indices, constructors fed shared data) in a child process whose
peak memory is measured; wrong types per variable with messages that name the
place; and every file that filtag writes passes.
"""

from __future__ import annotations

import copy
import importlib
import json
import pickle
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from filtag import safepickle
from filtag.artifacts import (
    CLASS_FILE,
    Run,
    atomic_write_bytes,
    load_vars,
    names_path,
    write_vars,
)
from filtag.errors import ArtifactError
from filtag.resume import Journal
from tests.conftest import refused, run_script

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = {
    name: importlib.import_module(name)
    for name in ["step2filtertags", "step3evaluation", "step4hitrates", "labdecode",
                 "filTagsvis", "hitrates-plots"]
}  # fmt: skip

#: How long a refusal may take, in seconds.
QUICK = 5

#: The scripts that read each kind of file, and the flag they read it with.
READERS = {
    "QFA": [("step2filtertags", "--activations-file")],
    "TF": [
        ("step3evaluation", "--filtags-file"),
        ("filTagsvis", "--filtags-file"),
        ("labdecode", "--vars-file"),
    ],
    "E": [("step4hitrates", "--eval-file"), ("labdecode", "--vars-file")],
    CLASS_FILE: [("step4hitrates", "--eval-file"), ("labdecode", "--vars-file")],
    "HR": [("hitrates-plots", "--hitrates-file"), ("labdecode", "--vars-file")],
}
CHAIN_FILE = {"QFA": "step1", "TF": "step2", "E": "step3", CLASS_FILE: "step3"}
CHAIN_FILE["HR"] = "step4"


# ---------------------------------------------------------------------- payloads


def memo_bomb(levels: int = 9) -> list:
    """Lists that refer to one list ten times, ``levels`` deep: 10**levels leaves."""
    value: list = ["Bag"]
    for _ in range(levels):
        value = [value] * 10
    return value


def deep_list_pickle(depth: int) -> bytes:
    """The pickle of a list nested ``depth`` deep, written opcode by opcode."""
    return b"\x80\x04" + b"]" * depth + b"a" * (depth - 1) + b"."


def self_referencing(value: Any) -> Any:
    """A copy of ``value`` (as a list if it is none) that contains itself."""
    if isinstance(value, dict) and value:
        looped = dict(value)
        looped[next(iter(looped))] = looped
        return looped
    looped = list(value) if isinstance(value, list) else [value]
    looped.append(looped)
    return looped


PAYLOADS: dict[str, Callable[[Any], bytes]] = {
    "memo bomb": lambda value: pickle.dumps(memo_bomb(), 4),
    "deep nesting": lambda value: deep_list_pickle(100_000),
    "self-reference": lambda value: pickle.dumps(self_referencing(value), 4),
}


# -------------------------------------------------------------------- file sets


def pickles_of(path: Path) -> dict[str, bytes]:
    """Split a ``-vars.pkl`` into its variables' pickles, by name."""
    names = load_vars(path).keys()
    data, blobs, start = path.read_bytes(), {}, 0
    for name in names:
        end = safepickle.scan(data, start)
        blobs[name], start = data[start:end], end
    return blobs


def write_pickles(path: Path, blobs: dict[str, bytes]) -> Path:
    """Write a ``-vars.pkl`` (and its names file) from pickled variables."""
    atomic_write_bytes(names_path(path), [pickle.dumps(list(blobs), 4)])
    atomic_write_bytes(path, list(blobs.values()))
    return path


def copy_run_files(chain: dict[str, Path], key: str, folder: Path) -> Path:
    """Copy a chain file (a step-3 index with its class files) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    source = chain[key]
    for path in source.parent.glob(source.name.removesuffix("-vars.pkl") + "-vars*"):
        shutil.copy(path, folder / path.name)
    return folder / source.name


def target_of(kind: str, copied: Path) -> Path:
    """The file of ``kind`` among the copied ones (a class file: the first one)."""
    if kind != CLASS_FILE:
        return copied
    return copied.parent / load_vars(copied)["eval_files"][0]


def refused_quickly(script: str, flag: str, path: Path, out: Path) -> str:
    """Run a script on a bad file: exit 2, no traceback, error last, in seconds."""
    start = time.monotonic()
    text = refused(SCRIPTS[script], flag, path, "--save-dir", out)
    assert time.monotonic() - start < QUICK, (script, path)
    *before, line = text.splitlines()
    assert line.startswith("ERROR ") and all(
        not earlier.startswith("ERROR") for earlier in before
    ), text
    return line


# ------------------------------------------------ bombs in every variable


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("kind", READERS)
def test_bombs_in_every_variable_are_refused_in_one_line(
    default_chain, tmp_path: Path, kind: str, payload: str
) -> None:
    copied = copy_run_files(default_chain, CHAIN_FILE[kind], tmp_path / "run")
    target = target_of(kind, copied)
    original = pickles_of(target)
    values = load_vars(target)
    for name in original:
        bad = dict(original, **{name: PAYLOADS[payload](values[name])})
        write_pickles(target, bad)
        for script, flag in READERS[kind]:
            line = refused_quickly(script, flag, copied, tmp_path / "out")
            assert f"{target} is not a filtag file ({name}" in line, line
    assert not list((tmp_path / "out").glob("*-vars.pkl"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_bomb_as_the_variable_names_is_refused(
    default_chain, tmp_path: Path, payload: str
) -> None:
    copied = copy_run_files(default_chain, "step2", tmp_path / "run")
    atomic_write_bytes(names_path(copied), [PAYLOADS[payload](["filTags_k"])])
    line = refused_quickly("labdecode", "--vars-file", copied, tmp_path / "out")
    assert f"{copied} is not a filtag file (the variable names" in line


def test_the_issues_files_are_refused(default_chain, tmp_path: Path) -> None:
    """#10: tags that refer 10^9 times to one string; a 10^6-deep labels_id."""
    copied = copy_run_files(default_chain, "step2", tmp_path / "tf")
    layer = [["Bag"] * 1000] * 1000  # one tag list, a thousand times per layer
    bomb = {value: [layer] * 1000 for value in (0, 1)}  # 2 * 10^9 tags
    assert len(pickle.dumps(bomb, 4)) < 13_500  # the issue's file: 13.5 KB
    write_pickles(copied, {**pickles_of(copied), "filTags_k": pickle.dumps(bomb, 4)})
    for script, flag in READERS["TF"]:
        line = refused_quickly(script, flag, copied, tmp_path / "out")
        assert "filTags_k holds over" in line and "once per reference" in line
    step1 = copy_run_files(default_chain, "step1", tmp_path / "qfa")
    write_pickles(step1, {**pickles_of(step1), "labels_id": deep_list_pickle(10**6)})
    line = refused_quickly("step2filtertags", "--activations-file", step1, tmp_path)
    assert "labels_id[0][0][0][0][0][0][0][0][0][0] is a list nested deeper" in line
    looped: dict = {"step": "QFA"}
    looped["step1"] = looped
    write_pickles(step1, {**pickles_of(default_chain["step1"]),
                          "meta": pickle.dumps(looped, 4)})  # fmt: skip
    line = refused_quickly("step2filtertags", "--activations-file", step1, tmp_path)
    assert "meta['step1'] is a dict that contains itself" in line


# ------------------------------------------------- the unpickler's own bombs

#: Crafted pickles of a few hundred bytes that would make the unpickler (or
#: the constructors it calls) allocate gigabytes, and what refuses each.
UNPICKLER_BOMBS = {
    # the C unpickler sizes its memo array by the index: 2**29 entries, 8 GB
    "memo index": (b"\x80\x04N" + b"r" + struct.pack("<I", 2**29) + b".", "memo index"),
    # a length the file does not hold (the C unpickler allocates it first)
    "claimed bytes": (b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"ab.", "claims"),
    "claimed bytearray": (b"\x80\x05\x96" + struct.pack("<Q", 2**33) + b".", "claims"),
    "claimed str": (b"\x80\x04X" + struct.pack("<I", 2**31) + b"ab.", "claims"),
    # bytearray(4 GB), numpy.ndarray((10**9,), object): constructors of a size
    "bytearray(n)": (
        b"\x80\x04cbuiltins\nbytearray\nJ\x00\x00\x00\x40\x85R.",
        "no bytes",
    ),
    "ndarray(n, object)": (
        b"\x80\x04cnumpy\nndarray\nJ\x00\xca\x9a\x3b\x85\x8c\x01O\x86R.",
        "not callable",
    ),
    "an integer of 2 KB": (
        b"\x80\x04\x8b\x00\x08\x00\x00" + b"\x01" * 2048 + b".",
        "LONG4",
    ),
}


class Reduced:
    """An object that pickles as ``reduce`` (what ``__reduce__`` returns)."""

    def __init__(self, reduce: tuple) -> None:
        self.reduce = reduce

    def __reduce__(self) -> tuple:
        return self.reduce


def _shared_data_bombs() -> dict[str, tuple[bytes, str]]:
    """Pickles that hand one 4 MB string or list to a thousand constructor calls."""
    import _codecs

    from numpy._core.multiarray import _reconstruct

    text, data = "A" * (1 << 22), b"A" * (1 << 22)
    state = (1, (1 << 19,), np.dtype("f8"), False, data)
    calls = {
        "array data": (_reconstruct, (np.ndarray, (0,), b"b"), state),
        "latin-1 text": (_codecs.encode, (text, "latin1")),
        "set items": (set, (list(range(1 << 16)),)),
        "bytearray data": (bytearray, (data,)),
    }
    return {
        f"shared {what}": (pickle.dumps([Reduced(call) for _ in range(1000)], 4),
                           "twice")
        for what, call in calls.items()
    }  # fmt: skip


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux")
def test_the_unpickler_allocates_a_small_multiple_of_the_file(tmp_path: Path) -> None:
    """Each bomb is refused for its reason, in a child that stays small.

    The child's peak is its ``VmHWM``: ``ru_maxrss`` would include the memory
    of the test process it was forked from.
    """
    layer = [["Bag"] * 1000] * 1000
    bombs = {
        **UNPICKLER_BOMBS,
        **_shared_data_bombs(),
        "2e9 tags": (pickle.dumps([[layer] * 1000] * 2, 4), "once per reference"),
        "1e6 deep": (deep_list_pickle(10**6), "nested deeper than 10 levels"),
    }
    for name, (data, _) in bombs.items():
        path = tmp_path / f"{name.replace(' ', '_')}-vars.pkl"
        write_pickles(path, {"v": data})
    child = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from filtag.artifacts import load_vars\n"
        "out = {}\n"
        "for path in sorted(Path(sys.argv[1]).glob('*-vars.pkl')):\n"
        "    start = time.monotonic()\n"
        "    try:\n"
        "        load_vars(path)\n"
        "        out[path.name] = ['loaded', 0]\n"
        "    except Exception as exc:\n"
        "        out[path.name] = [str(exc), time.monotonic() - start]\n"
        "status = Path('/proc/self/status').read_text()\n"
        "out['peak MB'] = int(status.split('VmHWM:')[1].split()[0]) / 1024\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout)
    for name, (_, reason) in bombs.items():
        message, seconds = report[f"{name.replace(' ', '_')}-vars.pkl"]
        assert reason in message and seconds < QUICK, (name, message)
    # The shared-data pickles are 8 MB; their bombs would take 4 GB each.
    assert report["peak MB"] < 300, report


def test_numpy_refuses_array_data_of_another_size_itself() -> None:
    """Beside filtag's own check: numpy never allocates a claimed shape."""
    from numpy._core.multiarray import _reconstruct

    array = _reconstruct(np.ndarray, (0,), b"b")
    with pytest.raises(ValueError, match="buffer size does not match"):
        array.__setstate__((1, (10**9,), np.dtype("f8"), False, b"12345678"))
    state = (1, (10**9,), np.dtype("f8"), False, b"12345678")
    reduced = Reduced((_reconstruct, (np.ndarray, (0,), b"b"), state))
    with pytest.raises(safepickle.PickleRefused, match=r"\(1000000000,\).* 8 bytes"):
        safepickle.safe_loads(pickle.dumps(reduced, 4))


@pytest.mark.parametrize("char", safepickle.NUMERIC_CHARS)
def test_build_cannot_alter_a_dtype(char: str) -> None:
    """numpy's dtype pickles end with BUILD; on filtag's dtypes it changes nothing."""
    dtype = np.dtype(char)
    tampered = (3, ">", None, None, None, dtype.itemsize, dtype.alignment, 0x3D)
    pickled = Reduced((np.dtype, (dtype.str, False, True), tampered))
    values = np.ones(3, char)
    loaded = safepickle.safe_loads(pickle.dumps([pickled, values], 4))
    assert loaded[0] is np.dtype(dtype.str) == dtype
    for unchanged in (loaded[0], dtype, loaded[1].dtype):
        assert unchanged.isnative and not unchanged.hasobject
    assert loaded[1].tolist() == values.tolist()


def test_shared_arrays_count_once_per_reference() -> None:
    array = np.zeros(1000)
    assert len(safepickle.safe_loads(pickle.dumps([array] * 5, 4))) == 5
    with pytest.raises(safepickle.PickleRefused, match="holds over 1001000 items"):
        safepickle.safe_loads(pickle.dumps([array] * 1000, 4))


# ------------------------------------------------------- wrong types per variable


#: (kind, change to the real file's variables, what the message says).
WRONG = [
    ("QFA", lambda v: v.update(labels_id=list(v["labels_id"].values())),
     "labels_id is a list of 10 items; expected a dict {class index: class name}"),
    ("QFA", lambda v: v["labels_id"].update({3: v["labels_id"][2]}),
     "labels_id[3] repeats 'Coat'"),
    ("QFA", lambda v: v["filter_act_3"].__setitem__(1, v["filter_act_3"][1][None]),
     "filter_act_3[1] is a float64 array of shape (1, 32); expected a 1-D float array"),
    ("QFA", lambda v: v["filter_act_3"].__setitem__(0, np.full(16, np.inf)),
     "filter_act_3[0] is a float64 array of shape (16,); expected floats, finite or"),
    ("QFA", lambda v: v["filter_act_4"].pop(),
     "filter_act_4 has layer sizes [16, 32, 64]; before: [16, 32, 64, 64]"),
    ("QFA", lambda v: v.pop("filter_act_9"), "it lacks the variable filter_act_9"),
    ("QFA", lambda v: v.update(filter_act_10=v["filter_act_0"]),
     "filter_act_10 has no class in labels_id (10 classes)"),
    ("QFA", lambda v: v["test_filenames"].__setitem__(0, 7),
     "test_filenames[0] is 7; expected a str of at most 4096 characters"),
    ("QFA", lambda v: v["meta"].update(image_size="x"),
     "meta['image_size'] is the str 'x'; expected a list of whole numbers >= 1"),
    ("QFA", lambda v: v["meta"].update(filters_per_layer=[16, 32, 64, 65]),
     "meta['filters_per_layer'] is [16, 32, 64, 65] but filter_act_0 has layers"),
    ("TF", lambda v: v["filTags_k"][5][2].__setitem__(17, ["Bag", "Bag"]),
     "filTags_k[5][2][17][1] repeats class 'Bag'"),
    ("TF", lambda v: v["filTags_q"][0][1].__setitem__(0, ["Cat"]),
     "filTags_q[0][1][0][0] is 'Cat', not a class name"),
    ("TF", lambda v: v["filTags_q"].pop(25),
     "filTags_q has values [0, 1, 2, 5, 17]; before: [0, 1, 2, 5, 17, 25]"),
    ("TF", lambda v: v["filTags_k"][17].pop(),
     "filTags_k[17] has filters per layer [16, 32, 64]; before: [16, 32, 64, 64]"),
    ("TF", lambda v: v["meta"]["step1"].pop("image_size"),
     "meta['step1'] lacks 'image_size'"),
    ("TF", lambda v: v["meta"].update(k_q="0-25"),
     "meta['k_q'] is the str '0-25'; expected a list of whole numbers >= 0"),
    ("E", lambda v: v["eval_files"].__setitem__(0, "../x-vars0.pkl"),
     "eval_files[0] is the str '../x-vars0.pkl'; expected a file name beside"),
    ("E", lambda v: v["classes"].pop(), "eval_files has length (one per class) 10"),
    (CLASS_FILE, lambda v: v["y_k"][5].__setitem__(0, [("Bag", 2), ("Bag", 1)]),
     "y_k[5][0][1] repeats class 'Bag'"),
    (CLASS_FILE, lambda v: v["y_q"][1].__setitem__(0, [("Bag", 0)]),
     "y_q[1][0][0][1] is 0; expected a whole number >= 1"),
    (CLASS_FILE, lambda v: v["y"][0].__setitem__(0, ("Bag", 1.5)),
     "y[0][0][1] is 1.5; expected a number in [0, 1.001]"),
    (CLASS_FILE, lambda v: v["y_k_ll"][0].pop(),
     "y_k_ll[0] has length (one ranking per image) 1; before: 2"),
    (CLASS_FILE, lambda v: v["class_images_dict"].update(Hat=[]),
     "class_images_dict is a dict of 2 items; expected one class"),
    ("HR", lambda v: v["hit_k"]["Bag"][0].update({1: 1.5}),
     "hit_k['Bag'][0][1] is 1.5; expected a number in [0, 1]"),
    ("HR", lambda v: v["totalhit_q"][5].pop(10),
     "totalhit_q[5] has m values [1, 2, 3]; before: [1, 2, 3, 10]"),
    ("HR", lambda v: v.update(meanhit_k=[0.5]),
     "meanhit_k is a list of 1 items; expected a dict {k: {m: rate}}"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "change", "message"), WRONG)
def test_wrong_values_are_refused_naming_the_place(
    default_chain, tmp_path: Path, kind: str, change: Callable, message: str
) -> None:
    copied = copy_run_files(default_chain, CHAIN_FILE[kind], tmp_path / "run")
    target = target_of(kind, copied)
    variables = copy.deepcopy(load_vars(target))
    change(variables)
    write_vars(target, variables, "changed", info=False)
    with pytest.raises(ArtifactError) as error:
        load_vars(target, kind)
    text = str(error.value)
    assert text.startswith(f"{target} is not a filtag file (") and message in text
    assert text.endswith("wrote.") or text.endswith("beside its index.")
    script, flag = READERS[kind][0]
    assert refused_quickly(script, flag, copied, tmp_path / "out") == f"ERROR {text}"


def test_a_step_tag_that_is_no_str_is_refused(default_chain, tmp_path) -> None:
    copied = copy_run_files(default_chain, "step2", tmp_path / "run")
    variables = load_vars(copied)
    write_vars(copied, {**variables, "meta": {"step": ["TF"]}}, "changed")
    for script, flag in READERS["TF"]:
        line = refused_quickly(script, flag, copied, tmp_path / "out")
        assert f"{copied} is not a filtag file" in line, line


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_bomb_in_a_journal_is_refused(tmp_path: Path, payload: str) -> None:
    run = Run(tmp_path, "2026-01-01-0000", "E", "net")
    header = pickle.dumps({"inputs": {}}, 4)
    run.path("journal.pkl").write_bytes(header + PAYLOADS[payload]({}))
    with pytest.raises(ArtifactError, match="not a filtag file"):
        Journal.read(run)


def test_a_wrong_journal_record_is_refused(tmp_path: Path) -> None:
    step3 = Run(tmp_path, "2026-01-01-0000", "E", "net")
    journal = Journal.create(step3, {"inputs": {}})
    journal.append({"row": 0, "file": "x-vars0.pkl"})
    with pytest.raises(ArtifactError, match=r"a journal record has the keys \["):
        Journal.read(step3)
    step1 = Run(tmp_path, "2026-01-01-0000", "QFA", "net")
    journal = Journal.create(step1, {"inputs": {"step": "QFA"}})
    journal.append({"class": 0, "sums": np.zeros(3, np.float32), "count": 1})
    with pytest.raises(ArtifactError, match="sums is a float32 array"):
        Journal.read(step1)
    step1.path("journal.pkl").unlink()
    journal = Journal.create(step1, {"inputs": {"step": "QFA"}})
    journal.append({"class": 2, "sums": np.zeros(3), "count": 1})
    assert Journal.read(step1).records[0]["class"] == 2
    with step1.path("journal.pkl").open("ab") as f:  # a record cut off by a kill
        f.write(pickle.dumps({"class": 3, "sums": np.zeros(3), "count": 1})[:40])
    assert len(Journal.read(step1).records) == 1
    assert step1.path("journal.pkl").stat().st_size == journal.path.stat().st_size


# ------------------------------------------------ every file filtag writes passes


def test_every_file_of_a_run_and_its_decoding_passes(default_chain, tmp_path) -> None:
    labdecode = SCRIPTS["labdecode"]
    mapping = tmp_path / "mapping.txt"
    mapping.write_text("Bag, Tasche\nCoat, Mantel (lang)\n", encoding="utf-8")
    files = {kind: default_chain[CHAIN_FILE[kind]] for kind in ("QFA", "TF", "E", "HR")}
    for kind in ("TF", "E", "HR"):
        decoded, _ = run_script(labdecode, "--vars-file", files[kind], "--mapping",
                                mapping, "--save-dir", tmp_path)  # fmt: skip
        assert load_vars(decoded)["meta"]["label_mapping"]["Bag"] == "Tasche"
        files[f"decoded {kind}"] = decoded
    class_files = 0
    for name, path in files.items():
        kind = name.removeprefix("decoded ")
        load_vars(path, kind)
        if kind == "E":
            for class_file in load_vars(path)["eval_files"]:
                load_vars(path.parent / class_file, CLASS_FILE)
                class_files += 1
    assert len(files) == 7 and class_files == 20
