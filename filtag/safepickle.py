"""Restricted and bounded unpickling: what reading a file may make Python do.

A pickle is a program for a small stack machine. filtag runs one only under
three checks, so that a file of n bytes can neither run code, nor make filtag
hold more than a small multiple of n bytes, nor make later walks of the result
take more than a small multiple of n steps:

1. :func:`scan` reads the opcodes before anything is built: every length that a
   string, bytes or long claims must lie inside the file (the C unpickler
   allocates a claimed length before it reads), every memo index must be below
   the bytes read so far (the C unpickler sizes its memo array by the index),
   integers have at most 64 bits (no hash flooding, no quadratic parsing), and
   the opcodes that load objects from outside the pickle or build class
   instances (persistent ids, the extension registry, ``INST``, ``OBJ``,
   ``NEWOBJ_EX``, out-of-band buffers) are refused.
2. :class:`SafeUnpickler` builds the objects with CPython's C unpickler. Its
   only globals are a few plain constructors that check their arguments: no
   numpy array or ``bytearray`` of a claimed size, numeric dtypes only (numpy's
   builtin dtype singletons, which ``BUILD`` cannot alter), and an argument
   longer than :data:`LONG` feeds one call only, so that a string shared
   through the memo is not copied again and again. An array is built from its
   ``BUILD`` state only after that state is checked.
3. :func:`check_tree` walks the result, iteratively: nesting is at most
   :data:`MAX_DEPTH` deep (so nothing contains itself), and the container
   items and array elements, each shared object counted once per reference,
   are at most :data:`ITEMS_PER_BYTE` per byte of the pickle. Pickle's memo
   lets a few bytes refer to one list a billion times; counted per reference,
   such a list is refused, while the little sharing that filtag's writer does
   (step 3's meta holds step 2's class list twice) passes. Strings and numbers are not
   counted: the schemas bound names' lengths, and filtag's writer stores each
   class name once and refers to it from every tag.

After the three checks, every walk of the value is linear in the file's size.
"""

from __future__ import annotations

import functools
import io
import math
import operator
import pickle
import pickletools
import re
from collections.abc import Iterator
from itertools import chain, compress, repeat
from typing import Any, BinaryIO, NoReturn

import numpy as np

from filtag.errors import UnsafePickleError
from filtag.tagging import gc_paused

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct
    from numpy.core.multiarray import scalar as _numpy_scalar

#: The deepest nesting of containers a value may have. The deepest that filtag
#: writes is 8: a step-3 checkpoint's partial rankings (dict, dict, dict, dict,
#: dict, list, list, tuple).
MAX_DEPTH = 10

#: Container items and array elements a value may hold per byte of its pickle,
#: counting each reference to a shared one: an item takes at least one byte,
#: and little sharing (a small tuple referred to again, 2 bytes a time) passes.
ITEMS_PER_BYTE = 4

#: Items a value may hold beyond :data:`ITEMS_PER_BYTE` per byte.
SLACK = 16

#: A str, bytes, list or tuple argument longer than this feeds one call only.
LONG = 64

#: Numeric dtype characters: bool, integers, floats, complex.
NUMERIC_CHARS = "?bBhHiIlLqQefdgFDG"

#: The dtypes a filtag file may hold: numpy's builtin numeric singletons.
PLAIN_DTYPES = frozenset(np.dtype(char) for char in NUMERIC_CHARS)

#: The only globals a filtag pickle may name (module, name).
ALLOWED_GLOBALS = frozenset(
    {
        ("builtins", name)
        for name in ("set", "frozenset", "bytearray", "complex", "slice")
    }
    | {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {
        (module, "_frombuffer")
        for module in ("numpy.core.numeric", "numpy._core.numeric")
    }
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
)


class PickleRefused(Exception):
    """A pickle that filtag does not load; the message says what is wrong."""


def plain_dtype(dtype: Any) -> bool:
    """Tell whether ``dtype`` is one filtag files may hold (native numeric)."""
    return isinstance(dtype, np.dtype) and dtype in PLAIN_DTYPES and dtype.isnative


# ------------------------------------------------------------------ opcode scan

#: Opcodes that load objects from outside the pickle or build class instances.
REFUSED_OPCODES = frozenset(
    {"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "INST", "OBJ", "NEWOBJ_EX"}
    | {"NEXT_BUFFER", "READONLY_BUFFER"}
)

#: The longest text line of an INT, LONG, GET or PUT opcode (64 bits, a sign).
NUMBER_LINE = 24

_CODE = {op.name: op.code.encode("latin-1")[0] for op in pickletools.opcodes}
_NAME = {code: name for name, code in _CODE.items()}
_WIDTHS = {
    pickletools.TAKEN_FROM_ARGUMENT1: (1, False),
    pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
    pickletools.TAKEN_FROM_ARGUMENT4U: (4, False),
    pickletools.TAKEN_FROM_ARGUMENT8U: (8, False),
}
#: Opcode -> (width, signed) of the length before a string, bytes or long.
_COUNTED = {
    _CODE[op.name]: _WIDTHS[op.arg.n]
    for op in pickletools.opcodes
    if op.arg is not None and op.arg.n in _WIDTHS
}
#: Opcode -> number of text lines, for the opcodes read up to a newline.
_LINES = {
    _CODE[op.name]: 2 if op.arg.name == "stringnl_noescape_pair" else 1
    for op in pickletools.opcodes
    if op.arg is not None and op.arg.n == pickletools.UP_TO_NEWLINE
}
_NUMBER_LINES = {_CODE[name] for name in ("INT", "LONG", "GET", "PUT")}
_LONGS = {_CODE["LONG1"], _CODE["LONG4"]}
_STOP, _PUT, _LONG_BINPUT = _CODE["STOP"], _CODE["PUT"], _CODE["LONG_BINPUT"]


def _fixed_steps() -> list[int]:
    """Per opcode byte: its length with its fixed-size argument; 0 if special."""
    steps = [0] * 256
    for op in pickletools.opcodes:
        code = _CODE[op.name]
        special = op.name in REFUSED_OPCODES or code in (_STOP, _LONG_BINPUT)
        if not special and (op.arg is None or op.arg.n >= 0):
            steps[code] = 1 + (op.arg.n if op.arg else 0)
    return steps


_STEPS = _fixed_steps()


def _run_pattern() -> re.Pattern[bytes]:
    """A regular expression of a run of opcodes of fixed length, with arguments.

    Each opcode's first byte fixes its length, so the run is read the way the
    unpickler reads it; the possessive repeat never backtracks.
    """
    by_length: dict[int, bytes] = {}
    for code, step in enumerate(_STEPS):
        if step:
            by_length[step] = by_length.get(step, b"") + re.escape(bytes([code]))
    tokens = [b"[%s]%s" % (codes, b"." * (n - 1)) for n, codes in by_length.items()]
    return re.compile(b"(?:%s)*+" % b"|".join(tokens), re.DOTALL)


_FIXED_RUN = _run_pattern()


def _truncated(what: str) -> pickle.UnpicklingError:
    """The error of a pickle that ends before what it announces."""
    return pickle.UnpicklingError(f"pickle data was truncated ({what})")


def _check_memo_index(index: int, pos: int, start: int) -> None:
    """Refuse a memo index that the bytes read so far cannot have reached."""
    if not 0 <= index <= pos - start:
        raise PickleRefused(
            f"memo index {index} at byte {pos} is beyond the {pos - start} bytes "
            "before it"
        )


def _counted_end(data: bytes, pos: int, op: int) -> int:
    """Return the end of the counted string, bytes or long at ``pos``."""
    width, signed = _COUNTED[op]
    head = data[pos + 1 : pos + 1 + width]
    if len(head) < width:
        raise _truncated(f"{_NAME[op]} at byte {pos}")
    size = int.from_bytes(head, "little", signed=signed)
    if size < 0 or (op in _LONGS and size > 8):
        raise PickleRefused(f"{_NAME[op]} of {size} bytes at byte {pos}")
    end = pos + 1 + width + size
    if end > len(data):
        raise _truncated(
            f"{_NAME[op]} at byte {pos} claims {size} bytes, "
            f"{len(data) - pos - 1 - width} remain"
        )
    return end


def _lines_end(data: bytes, pos: int, op: int, start: int) -> int:
    """Return the end of the opcode at ``pos`` that reads text lines."""
    end = pos
    for _ in range(_LINES[op]):
        end = data.find(b"\n", end + 1)
        if end < 0:
            raise _truncated(f"{_NAME[op]} at byte {pos} has no newline")
    if op in _NUMBER_LINES and end - pos > NUMBER_LINE:
        raise PickleRefused(f"{_NAME[op]} of {end - pos} digits at byte {pos}")
    if op == _PUT:
        _check_memo_index(int(data[pos + 1 : end]), pos, start)
    return end + 1


def _special_end(data: bytes, pos: int, start: int) -> int:
    """Check the opcode at ``pos`` that has no fixed length; return its end."""
    op = data[pos]
    name = _NAME.get(op)
    if name is None:
        raise PickleRefused(f"byte {op:#04x} at byte {pos} is no pickle opcode")
    if name in REFUSED_OPCODES:
        raise PickleRefused(f"opcode {name} at byte {pos}: filtag files never use it")
    if op in _COUNTED:
        return _counted_end(data, pos, op)
    if op in _LINES:
        return _lines_end(data, pos, op, start)
    if op != _LONG_BINPUT or pos + 5 > len(data):  # a fixed one cut short
        raise _truncated(f"{name} at byte {pos}")
    _check_memo_index(int.from_bytes(data[pos + 1 : pos + 5], "little"), pos, start)
    return pos + 5


def scan(data: bytes, start: int = 0) -> int:
    """Check the opcodes of the pickle that starts at ``data[start]``.

    Args:
        data: the bytes of a file (one or several pickles in a row).
        start: where the pickle starts.

    Returns:
        The position after its STOP opcode.

    Raises:
        PickleRefused: an opcode or an argument that filtag does not load.
        pickle.UnpicklingError: the pickle ends early, or claims more bytes
            than the file holds.
    """
    run, n, pos = _FIXED_RUN.match, len(data), start
    while True:
        pos = run(data, pos).end()  # C speed over the many fixed-length opcodes
        if pos >= n:
            raise _truncated("no STOP opcode")
        if data[pos] == _STOP:
            return pos + 1
        pos = _special_end(data, pos, start)


# --------------------------------------------------------- restricted globals


class _Consumed:
    """The long arguments that one load has given to constructors.

    Each may be given once: pickle's memo lets a file pass one 10 MB string to
    a million calls, and each call would copy it.
    """

    def __init__(self) -> None:
        self._seen: dict[int, Any] = {}

    def once(self, value: str | bytes | bytearray | list | tuple, what: str) -> Any:
        """Return ``value``; refuse it if it is long and was given before."""
        if len(value) > LONG:
            if id(value) in self._seen:
                raise PickleRefused(
                    f"{what} is given one {type(value).__name__} of {len(value)} "
                    "items twice (shared through the memo)"
                )
            self._seen[id(value)] = value
        return value

    def clear(self) -> None:
        """Forget the arguments, and drop the references that kept them alive."""
        self._seen.clear()


class _NdarrayClass:
    """Stands for ``numpy.ndarray``, ``_reconstruct``'s first argument.

    Neither callable nor a type, so that a pickle cannot call
    ``numpy.ndarray(shape, dtype)`` (an array of any claimed size).
    """


_NDARRAY = _NdarrayClass()


def _check_dtype(dtype: Any, what: str) -> np.dtype:
    """Return ``dtype`` if it is a plain numeric dtype; refuse anything else."""
    if not plain_dtype(dtype):
        raise PickleRefused(f"{what} has dtype {dtype!r:.40}; expected a numeric one")
    return dtype


def _check_shape(shape: Any, what: str) -> tuple[int, ...]:
    """Return ``shape`` if it is a tuple of at most 32 whole numbers >= 0."""
    if (
        type(shape) is not tuple
        or len(shape) > 32
        or not all(type(n) is int and n >= 0 for n in shape)
    ):
        raise PickleRefused(f"{what} has shape {shape!r:.40}")
    return shape


class _PendingArray:
    """A numpy array until its ``BUILD`` state has been checked and applied.

    :func:`check_tree` replaces each by its array; one that is shared, has no
    data, or sits in a tuple, a set or a dict key is refused.
    """

    def __init__(self, consumed: _Consumed, array: np.ndarray | None = None) -> None:
        self._consumed = consumed
        self.array = array

    def __setstate__(self, state: Any) -> None:
        """Build the array from numpy's pickled state, after checking that state.

        Args:
            state: ``(1, shape, dtype, is_fortran, raw bytes)`` (or without
                the leading version), as ``numpy.ndarray.__reduce__`` writes.
        """
        if self.array is not None:
            raise PickleRefused("an array is given its data twice")
        if type(state) is tuple and len(state) == 4:
            state = (1, *state)
        if type(state) is not tuple or len(state) != 5 or state[0] != 1:
            raise PickleRefused(f"an array's state is a {type(state).__name__}")
        _, shape, dtype, fortran, data = state
        _check_shape(shape, "an array")
        _check_dtype(dtype, "an array")
        if type(fortran) is not bool or type(data) is not bytes:
            raise PickleRefused("an array's data is not bytes")
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise PickleRefused(
                f"an array of shape {shape} and dtype {dtype} has {len(data)} bytes"
            )
        array = _numpy_reconstruct(np.ndarray, (0,), b"b")
        data = self._consumed.once(data, "an array")
        array.__setstate__((1, shape, dtype, fortran, data))
        self.array = array


def _reconstruct(consumed: _Consumed, cls: Any, shape: Any, code: Any) -> _PendingArray:
    """``numpy.core.multiarray._reconstruct`` as numpy's pickles call it: empty."""
    if cls is not _NDARRAY or math.prod(_check_shape(shape, "_reconstruct")) != 0:
        raise PickleRefused("_reconstruct is called for a non-empty array")
    if type(code) not in (bytes, str) or len(code) > 2:
        raise PickleRefused("_reconstruct is called with a long dtype code")
    return _PendingArray(consumed)


def _frombuffer(
    consumed: _Consumed,
    buffer: Any,
    dtype: Any,
    shape: Any,
    order: Any,
    axis_order: Any = None,
) -> _PendingArray:
    """``numpy.core.numeric._frombuffer`` (protocol 5): an array over bytes."""
    if type(buffer) not in (bytes, bytearray) or order not in ("C", "F", "K"):
        raise PickleRefused("_frombuffer is given no bytes")
    array = np.frombuffer(
        consumed.once(buffer, "_frombuffer"), _check_dtype(dtype, "_frombuffer")
    )
    shape = _check_shape(shape, "_frombuffer")
    if order != "K" or axis_order is None:
        return _PendingArray(consumed, array.reshape(shape, order=order))
    if type(axis_order) is not tuple or sorted(axis_order) != list(range(len(shape))):
        raise PickleRefused("_frombuffer is given no axis order")
    return _PendingArray(consumed, array.reshape(shape).transpose(axis_order))


def _scalar(dtype: Any, data: Any) -> np.generic:
    """``numpy.core.multiarray.scalar`` for a numeric dtype and a value's bytes."""
    _check_dtype(dtype, "a numpy scalar")
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise PickleRefused(f"a numpy scalar of dtype {dtype} is not given its bytes")
    return _numpy_scalar(dtype, data)


def _dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """``numpy.dtype`` of a numeric type, always the builtin singleton.

    ``copy`` is ignored: ``numpy.dtype.__setstate__`` leaves the builtin
    singletons unchanged, so a later ``BUILD`` cannot alter the dtype (make it
    hold Python objects or swap its bytes).
    """
    if type(spec) is not str or len(spec) > 8 or {type(align), type(copy)} != {bool}:
        raise UnsafePickleError(f"refused numpy dtype {spec!r:.40}")
    try:
        dtype = np.dtype(spec)
    except TypeError as exc:
        raise UnsafePickleError(f"refused numpy dtype {spec!r}: {exc}") from None
    if not plain_dtype(dtype):
        reason = "it holds Python objects" if dtype.hasobject else "it is not numeric"
        raise UnsafePickleError(f"refused numpy dtype {dtype}: {reason}")
    return dtype


def _latin1(consumed: _Consumed, text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` only as numpy pickles use it: array bytes as latin-1."""
    if encoding not in ("latin1", "latin-1") or type(text) is not str:
        raise UnsafePickleError(f"refused _codecs.encode(..., {encoding!r:.20})")
    return consumed.once(text, "_codecs.encode").encode("latin1")


def _set(consumed: _Consumed, kind: type, items: Any = ()) -> set | frozenset:
    """``set`` or ``frozenset`` of one list or tuple of items (protocols 0-3)."""
    if type(items) not in (list, tuple):
        raise PickleRefused(f"{kind.__name__} is given a {type(items).__name__}")
    return kind(consumed.once(items, kind.__name__))


def _bytearray(consumed: _Consumed, data: Any = b"", encoding: Any = None) -> bytearray:
    """``bytearray`` of given bytes (or latin-1 text), never of a claimed size."""
    if type(data) is bytes and encoding is None:
        return bytearray(consumed.once(data, "bytearray"))
    if type(data) is str and encoding in ("latin1", "latin-1"):
        return bytearray(consumed.once(data, "bytearray"), "latin-1")
    raise PickleRefused("bytearray is given no bytes")


def _slice(*args: Any) -> slice:
    """``slice`` of whole numbers or None."""
    if len(args) > 3 or not all(type(a) in (int, type(None)) for a in args):
        raise PickleRefused("slice is given other values than whole numbers")
    return slice(*args)


class _Complex:
    """``complex`` of two numbers; a type, as ``NEWOBJ`` (protocol 2+) needs."""

    def __new__(cls, real: Any = 0.0, imag: Any = 0.0) -> complex:  # type: ignore[misc]
        """Return ``complex(real, imag)`` for int or float parts."""
        if type(real) not in (int, float) or type(imag) not in (int, float):
            raise PickleRefused("complex is given other values than numbers")
        return complex(real, imag)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only builtin containers and numeric numpy values.

    Any global outside :data:`ALLOWED_GLOBALS` (``os.system``, ``builtins.eval``,
    a class of some package) raises :class:`UnsafePickleError` before it is
    looked up, so no code from the file ever runs; the allowed ones are
    replaced by the checking constructors above. Use :func:`load_one`, which
    runs :func:`scan` before and :func:`check_tree` after it.
    """

    def __init__(self, file: BinaryIO, consumed: _Consumed) -> None:
        super().__init__(file)
        self._stand_ins = {  # none of them refers to the unpickler
            "set": functools.partial(_set, consumed, set),
            "frozenset": functools.partial(_set, consumed, frozenset),
            "bytearray": functools.partial(_bytearray, consumed),
            "complex": _Complex,
            "slice": _slice,
            "_reconstruct": functools.partial(_reconstruct, consumed),
            "scalar": _scalar,
            "_frombuffer": functools.partial(_frombuffer, consumed),
            "ndarray": _NDARRAY,
            "dtype": _dtype,
            "encode": functools.partial(_latin1, consumed),
        }

    def find_class(self, module: str, name: str) -> Any:
        """Return the checking stand-in of ``module.name``; refuse other globals."""
        if module == "__builtin__":  # protocols 0-2 name builtins as Python 2 did
            module = "builtins"
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refused global '{module}.{name}': filtag files hold only builtin "
                "containers and numeric numpy values"
            )
        return self._stand_ins[name]


# ------------------------------------------------------------------ tree check

_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})
#: Every type an unpickled value may hold (arrays are still pending).
_ALLOWED_TYPES = (
    _CONTAINERS
    | {_PendingArray, str, bytes, bytearray, int, bool, float, complex, slice}
    | {type(None)}
    | {type(dtype) for dtype in PLAIN_DTYPES}
    | {dtype.type for dtype in PLAIN_DTYPES}
)


def _elements(batch: list[Any]) -> Iterator[Any]:
    """The items of the containers in ``batch`` (of dicts: keys, then values).

    Lazy and C-speed: no Python code runs per container or item.
    """
    dicts = compress(batch, map(operator.is_, map(type, batch), repeat(dict)))
    values = chain.from_iterable(map(dict.values, dicts))
    return chain(chain.from_iterable(batch), values)


def _containers_in(batch: list[Any]) -> list[Any]:
    """The containers among the items of ``batch``, once per reference."""
    is_container = map(_CONTAINERS.__contains__, map(type, _elements(batch)))
    return list(compress(_elements(batch), is_container))


def _kind(value: Any) -> str:
    """``value``'s type in words."""
    return "numpy array" if type(value) is _PendingArray else type(value).__name__


def _path(root: Any, target: Any, name: str, occurrence: int = 1) -> str | None:
    """Return where ``target`` is reached in ``root`` the ``occurrence``-th time.

    For messages: a walk that expands each container once and goes no deeper
    than :data:`MAX_DEPTH` + 1, so it is bounded on any value.

    Returns:
        ``name`` followed by the keys (``labels_id[0][2]``), or None.
    """
    found = 0
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    expanded: set[int] = set()
    while stack:
        value, keys = stack.pop()
        if value is target:
            found += 1
            if found == occurrence:
                return name + "".join(keys)
        if type(value) not in _CONTAINERS or id(value) in expanded:
            continue
        expanded.add(id(value))
        if len(keys) > MAX_DEPTH:
            continue
        if type(value) is dict:
            pairs = [(f"[{key!r:.40}]", item) for key, item in value.items()]
            pairs += [(" (a key)", key) for key in value]
        elif type(value) in (set, frozenset):
            pairs = [(" (an element)", item) for item in value]
        else:
            pairs = [(f"[{i}]", item) for i, item in enumerate(value)]
        stack.extend((item, (*keys, key)) for key, item in reversed(pairs))
    return None


def _refuse(root: Any, target: Any, name: str, problem: str) -> NoReturn:
    """Raise :class:`PickleRefused`: ``<where> is a <type> <problem>``."""
    where = _path(root, target, name) or name
    raise PickleRefused(f"{where} is a {_kind(target)} {problem}")


def _array(root: Any, pending: _PendingArray, name: str) -> np.ndarray:
    """Return the array of ``pending``; refuse one that was given no data."""
    if pending.array is None:
        _refuse(root, pending, name, "without data")
    return pending.array


def _build_arrays(root: Any, batch: list[Any], name: str) -> int:
    """Replace each :class:`_PendingArray` in ``batch`` by its array.

    Returns:
        The elements of the arrays, each array counted once per reference.

    Raises:
        PickleRefused: one sits elsewhere than in a list or as a dict value.
    """
    elements = 0
    for container in batch:
        if type(container) is dict:
            for key in [k for k, v in container.items() if type(v) is _PendingArray]:
                container[key] = _array(root, container[key], name)
                elements += container[key].size
            if any(type(key) is _PendingArray for key in container):
                _refuse(root, container, name, "whose keys are numpy arrays")
        elif type(container) is list:
            for i, item in enumerate(container):
                if type(item) is _PendingArray:
                    container[i] = _array(root, item, name)
                    elements += container[i].size
        elif any(type(item) is _PendingArray for item in container):
            _refuse(root, container, name, "holding numpy arrays (lists may)")
    return elements


def _check_types(root: Any, batch: list[Any], name: str) -> set[type]:
    """Return the types of the items in ``batch``; refuse types outside plain data."""
    kinds = set(map(type, _elements(batch)))
    if not kinds <= _ALLOWED_TYPES:
        bad = next(x for x in _elements(batch) if type(x) not in _ALLOWED_TYPES)
        where = _path(root, bad, name) or name
        raise PickleRefused(f"{where} is a {type(bad).__name__}")
    return kinds


def _looped(root: Any) -> Any | None:
    """Return a container in ``root`` that contains itself, or None.

    A depth-first walk that expands each container once and goes no deeper
    than :data:`MAX_DEPTH` + 1 levels (a loop below that is nesting too deep).
    """
    done: set[int] = set()
    on_path = {id(root)}
    stack = [(root, _elements([root]))]
    while stack:
        node, children = stack[-1]
        child = next((c for c in children if type(c) in _CONTAINERS), None)
        if child is None:
            stack.pop()
            on_path.discard(id(node))
            done.add(id(node))
        elif id(child) in on_path:
            return child
        elif id(child) not in done and len(stack) <= MAX_DEPTH:
            on_path.add(id(child))
            stack.append((child, _elements([child])))
    return None


def _refuse_looped(root: Any, name: str) -> None:
    """Refuse ``root`` if a container in it contains itself."""
    looped = _looped(root)
    if looped is not None:
        where = _path(root, looped, name, 2) or name
        raise PickleRefused(f"{where} is a {_kind(looped)} that contains itself")


def check_tree(value: Any, size: int, name: str) -> Any:
    """Check that a freshly unpickled ``value`` is plain data, as large as its file.

    Walks level by level, with C-speed passes over each level's items. A
    container or array that the memo shares counts once per reference: the
    items visited, and so the work of any later walk, stay within the
    pickle's size.

    Args:
        value: what :class:`SafeUnpickler` returned.
        size: the length of its pickle in bytes.
        name: what it is (a variable name), for messages (``filTags_k[5][2]``).

    Returns:
        ``value``, its arrays built.

    Raises:
        PickleRefused: more container items and array elements (counted per
            reference) than :data:`ITEMS_PER_BYTE` x ``size`` + :data:`SLACK`,
            nesting deeper than
            :data:`MAX_DEPTH` (a container that contains itself), or a value of
            another type than plain data.
    """
    if type(value) is _PendingArray:
        return _array(value, value, name)
    if type(value) not in _ALLOWED_TYPES:
        raise PickleRefused(f"{name} is a {type(value).__name__}")
    batch = [value] if type(value) in _CONTAINERS else []
    depth, items, limit = 1, 0, ITEMS_PER_BYTE * size + SLACK
    while batch:
        items += sum(map(len, batch))
        kinds = _check_types(value, batch, name) if items <= limit else set()
        if _PendingArray in kinds:
            items += _build_arrays(value, batch, name)
        if items > limit:
            _refuse_looped(value, name)
            raise PickleRefused(
                f"{name} holds over {items} items in {size} bytes (an object that "
                "the pickle's memo shares counts once per reference)"
            )
        if kinds.isdisjoint(_CONTAINERS):
            break
        batch = (
            list(_elements(batch)) if kinds <= _CONTAINERS else _containers_in(batch)
        )
        depth += 1
        if batch and depth > MAX_DEPTH:
            _refuse_looped(value, name)
            _refuse(value, batch[0], name, f"nested deeper than {MAX_DEPTH} levels")
    return value


# -------------------------------------------------------------------- loading


def load_one(data: bytes, start: int, name: str) -> tuple[Any, int]:
    """Load the pickle that starts at ``data[start]``, checked and bounded.

    Args:
        data: the bytes of a file (one or several pickles in a row).
        start: where the pickle starts.
        name: what it holds (a variable name), for messages.

    Returns:
        ``(value, end)``: the value (see :func:`check_tree`) and the position
        after its pickle.

    Raises:
        PickleRefused: the pickle is not plain, bounded data.
        UnsafePickleError: it names a global outside :data:`ALLOWED_GLOBALS`.
        Exception: whatever the C unpickler raises on malformed data (none of
            it runs code from the file).
    """
    end = scan(data, start)
    stream = io.BytesIO(data)
    stream.seek(start)
    consumed = _Consumed()
    unpickler = SafeUnpickler(stream, consumed)
    with gc_paused():  # millions of new containers, no cycle worth collecting yet
        value = unpickler.load()
    consumed.clear()
    if stream.tell() != end:
        raise PickleRefused(
            f"{name} ends at byte {stream.tell()}, its opcodes at {end}"
        )
    return check_tree(value, end - start, name), end


def safe_loads(data: bytes) -> Any:
    """Load the first pickle of ``data``, checked and bounded (:func:`load_one`)."""
    return load_one(data, 0, "the value")[0]


def safe_load(file: BinaryIO) -> Any:
    """Load the next pickle of the open binary ``file``; leave it just after."""
    position = file.tell()
    value, end = load_one(file.read(), 0, "the value")
    file.seek(position + end)
    return value
