"""Step 2's tags as one pickle whose bytes are produced rule by rule.

At ImageNet size with ``--k-q 0-100``, ``filTags_k`` and ``filTags_q`` hold
about 280 million tags: as Python lists, 2.2 GB of pointers alone. This module
writes the pickle of ``{value: [per layer [per filter [class names]]]}``
straight from each rule's selection masks (:meth:`filtag.tagging.RuleTags.masks`),
one layer at a time, with numpy, so that neither the lists nor the whole pickle
ever exist. ``pickle.load`` and :class:`filtag.artifacts.SafeUnpickler` read it
into the very dict that :meth:`~filtag.tagging.RuleTags.lists` returns.

The pickle (protocol 4, opcodes as ``pickletools`` names them; no globals):

- ``PROTO 4``, then ``MARK``, each class name as ``BINUNICODE`` + ``MEMOIZE``
  (memo index = class index), ``POP_MARK``: every name is stored once;
- ``EMPTY_DICT MARK``, per rule value its int and its list, ``SETITEMS STOP``;
- a list: ``EMPTY_LIST MARK`` items ``APPENDS``; a filter's items are its class
  names as memo references, ``BINGET i`` (2 bytes) for ``i < 256``, else
  ``LONG_BINGET i`` (5 bytes), as the standard pickler writes them. Loaded, all
  tags of a class are one str object, as in the lists built in memory.

A ``pickle.Pickler`` whose ``reducer_override`` turns small proxies into
``(list, (), None, items)`` streams too, but it saves each of the 280 million
names through the pickler, as a str object: measured side by side on the
ImageNet-sized input, its tagging and writing took 2-3.5 times as long.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator, Sequence
from pickle import (
    APPENDS,
    BINGET,
    BINUNICODE,
    EMPTY_DICT,
    EMPTY_LIST,
    LONG_BINGET,
    MARK,
    MEMOIZE,
    POP_MARK,
    PROTO,
    SETITEMS,
    STOP,
)

import numpy as np

from filtag.artifacts import PickleStream
from filtag.tagging import KINDS, RuleTags


def memo_get(index: int) -> bytes:
    """Return the opcode that pushes memo entry ``index`` (0 <= index < 2**32)."""
    if index < 256:
        return BINGET + bytes([index])
    return LONG_BINGET + struct.pack("<I", index)


def int_opcode(value: int) -> bytes:
    """Return the opcode that pushes the int ``value`` (any size).

    A protocol-2 pickle of an int is ``PROTO 2``, one int opcode, ``STOP``
    (ints are never memoized); the opcode is valid in protocol 4.
    """
    return pickle.dumps(value, protocol=2)[2:-1]


def names_preamble(class_names: Sequence[str]) -> bytes:
    """Return ``PROTO 4`` and the opcodes that memoize the names as 0, 1, ...

    The names are pushed after a ``MARK`` and popped with ``POP_MARK``; their
    memo entries stay. A name is encoded as pickle encodes str (UTF-8, lone
    surrogates passed through).
    """
    parts = [PROTO, bytes([4]), MARK]
    for name in class_names:
        encoded = name.encode("utf-8", "surrogatepass")
        parts += [BINUNICODE, struct.pack("<I", len(encoded)), encoded, MEMOIZE]
    parts.append(POP_MARK)
    return b"".join(parts)


class LayerEncoder:
    """Encodes one layer's tags, given its selection mask, as pickled lists.

    Class ``c``'s reference is 2 bytes for ``c < 256`` and 5 bytes beyond, so a
    filter's list is its "short" references, then its "long" ones: each kind
    is gathered at once from a mask of equal-sized items, and the filters'
    pieces are then joined.
    """

    def __init__(self, n_classes: int) -> None:
        """Precompute every class's memo reference.

        Args:
            n_classes: the classes, memoized as 0 .. n_classes - 1.
        """
        self.n_short = min(n_classes, 256)
        short = [memo_get(index) for index in range(self.n_short)]
        long = [memo_get(index) for index in range(self.n_short, n_classes)]
        #: ``BINGET c`` of classes 0..255, one 2-byte item each.
        self.short_refs = np.frombuffer(b"".join(short), dtype="V2")
        #: ``LONG_BINGET c`` of classes 256.., one 5-byte item each.
        self.long_refs = np.frombuffer(b"".join(long), dtype="V5")

    def _refs(
        self, selected: np.ndarray, refs: np.ndarray
    ) -> tuple[memoryview, list[int]]:
        """Return the references of the selected cells, filter by filter, and ends.

        Args:
            selected: bool, shape (n_filters, len(refs)).
            refs: one reference per column.

        Returns:
            The bytes of the references, and the byte offset where each
            filter's references end.
        """
        gathered = np.broadcast_to(refs, selected.shape)[selected]
        counts = np.count_nonzero(selected, axis=1)
        ends = (np.cumsum(counts) * refs.itemsize).tolist()
        return memoryview(gathered.view(np.uint8)), ends

    def encode(self, mask: np.ndarray) -> bytes:
        """Return the pickled list of one layer's tags: a list per filter.

        Args:
            mask: bool, shape (n_classes, n_filters): ``[c, f]`` tags filter
                ``f`` with class ``c``.

        Returns:
            ``EMPTY_LIST MARK``, per filter ``EMPTY_LIST MARK``, the references
            of its classes in class order, ``APPENDS``; then ``APPENDS``.
        """
        selected = mask.T
        short, short_ends = self._refs(selected[:, : self.n_short], self.short_refs)
        long, long_ends = self._refs(selected[:, self.n_short :], self.long_refs)
        pieces = [EMPTY_LIST + MARK]
        short_start = long_start = 0
        for short_end, long_end in zip(short_ends, long_ends, strict=True):
            pieces += (
                EMPTY_LIST + MARK,
                short[short_start:short_end],
                long[long_start:long_end],
                APPENDS,
            )
            short_start, long_start = short_end, long_end
        pieces.append(APPENDS)
        return b"".join(pieces)


def tags_pickle(tags: RuleTags, kind: str) -> Iterator[bytes]:
    """Yield, piece by piece, the pickle of ``tags.lists(kind)``.

    Only one layer's mask and bytes exist at a time.

    Args:
        tags: the rules and activations of step 2.
        kind: "k" or "q".

    Yields:
        bytes, which, concatenated, are one pickle.
    """
    encoder = LayerEncoder(len(tags.class_names))
    yield names_preamble(tags.class_names) + EMPTY_DICT + MARK
    for value in tags.values[kind]:
        yield int_opcode(value) + EMPTY_LIST + MARK
        for mask in tags.masks(kind, value):
            yield encoder.encode(mask)
        yield APPENDS
    yield SETITEMS + STOP


def streamed(tags: RuleTags) -> dict[str, PickleStream]:
    """Return step 2's ``filTags_k`` and ``filTags_q``, to pass to ``write_vars``."""
    return {f"filTags_{kind}": PickleStream(tags_pickle(tags, kind)) for kind in KINDS}
