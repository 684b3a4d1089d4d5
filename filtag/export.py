"""Machine-readable exports of step 2's tags and step 3's rankings: CSV and JSON.

They lie beside a run's ``-vars.pkl`` and need no unpickling:

- ``<prefix>-tags.csv`` (step 2): columns :data:`TAG_COLUMNS`, one row per
  (rule, value, layer, filter), rules k then q, values, layers and filters in
  the order of ``filTags_k``/``filTags_q``.
- ``<prefix>-tags.json`` (step 2): ``{"layer_names": [name per layer],
  "filTags_k": {"<k>": [[[tag] per filter] per layer]}, "filTags_q": {...}}``,
  the pickled variables with the values as text keys.
- ``<prefix>-rankings.csv`` (step 3): columns :data:`RANKING_COLUMNS`, one row
  per (test image, rule, value, layers): class by class in the order of
  ``eval_files``, then by image, rule (k, q), value, layers (``all`` = all
  selected layers, ``last`` = the last one); written class by class, so
  memory holds one class file at a time.

Fields:

- a list in one field (``tags``; ``ranking`` as ``name:count`` items) joins its
  items with ``;``, writing ``\\`` and ``;`` inside an item as ``\\\\`` and
  ``\\;``: :func:`split_field` and :func:`split_ranking` read them back (a
  ranking item splits at its last ``:``);
- numbers are written as Python writes them, so ``int(text)``/``float(text)``
  give the pickled numbers back exactly.

Encodings: CSV follows RFC 4180 (the csv module's quoting, CRLF line ends) in
UTF-8; a file name that is not UTF-8 (which ``os.fsdecode`` holds as lone
surrogates U+DC80..U+DCFF) is written as its original bytes, so reading with
``open(path, newline="", encoding="utf-8", errors="surrogateescape")`` gives
the exact strings back (any other lone surrogate, which no file system yields,
is written as U+FFFD). JSON is UTF-8 with non-ASCII characters as they are
and lone surrogates as ``\\udcXX`` escapes, which ``json.loads`` turns back into
the same strings.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from filtag.artifacts import CLASS_FILE, atomic_write_bytes, load_vars

#: Columns of ``-tags.csv``.
TAG_COLUMNS = ("rule", "value", "layer", "layer_name", "filter", "n_tags", "tags")

#: Columns of ``-rankings.csv``.
RANKING_COLUMNS = (
    "class",
    "image",
    "rule",
    "value",
    "layers",
    "top1",
    "top1_probability",
    "ranking",
)

#: The rules of steps 2 and 3.
RULES = ("k", "q")

#: Step 3's rankings: the ``layers`` column, and the suffix of its variable.
LAYER_SCOPES = (("all", ""), ("last", "_ll"))

#: CSV rows encoded per chunk written.
ROWS_PER_CHUNK = 1000

_SEPARATOR = ";"
_ESCAPE = "\\"


def _csv_encode_error(error: UnicodeError) -> tuple[bytes | str, int]:
    """Encode lone surrogates U+DC80..U+DCFF as their bytes, others as U+FFFD."""
    try:
        return codecs.lookup_error("surrogateescape")(error)
    except UnicodeEncodeError:
        return "\ufffd".encode() * (error.end - error.start), error.end


codecs.register_error("filtag.csv", _csv_encode_error)


# -------------------------------------------------------------------- list fields


def join_field(items: Iterable[str]) -> str:
    """Join ``items`` with ``;``, escaping ``\\`` and ``;`` inside each item.

    An empty list gives ``""``, as does a list of one empty item (the row's
    count column tells them apart).
    """
    return _SEPARATOR.join(
        item.replace(_ESCAPE, _ESCAPE * 2).replace(_SEPARATOR, _ESCAPE + _SEPARATOR)
        for item in items
    )


def split_field(field: str) -> list[str]:
    """Return the items that :func:`join_field` joined (``""`` gives ``[]``)."""
    if not field:
        return []
    items, current = [], []
    chars = iter(field)
    for char in chars:
        if char == _ESCAPE:
            current.append(next(chars, _ESCAPE))
        elif char == _SEPARATOR:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def join_ranking(ranking: Iterable[tuple[str, int]]) -> str:
    """Return a ranking ``[(name, count)]`` as ``name:count;name:count``."""
    return join_field(f"{name}:{count}" for name, count in ranking)


def split_ranking(field: str) -> list[tuple[str, int]]:
    """Return the ``[(name, count)]`` ranking that :func:`join_ranking` wrote."""
    pairs = (item.rpartition(":") for item in split_field(field))
    return [(name, int(count)) for name, _, count in pairs]


# -------------------------------------------------------------------------- rows


def tag_rows(
    filtags_k: Mapping[int, list],
    filtags_q: Mapping[int, list],
    layer_names: Sequence[str],
) -> Iterator[list[Any]]:
    """Yield the rows of ``-tags.csv`` (without the header).

    Args:
        filtags_k, filtags_q: step 2's ``{value: [[class name] per filter] per
            layer}``.
        layer_names: the name of each layer.

    Yields:
        ``[rule, value, layer index, layer name, filter index, number of tags,
        tags joined by join_field]``.
    """
    for rule, filtags in zip(RULES, (filtags_k, filtags_q), strict=True):
        for value, layers in filtags.items():
            for a, layer in enumerate(layers):
                for b, tags in enumerate(layer):
                    yield [
                        rule,
                        value,
                        a,
                        layer_names[a],
                        b,
                        len(tags),
                        join_field(tags),
                    ]


def ranking_rows(class_vars: Mapping[str, Any]) -> Iterator[list[Any]]:
    """Yield the rows of ``-rankings.csv`` for one step-3 per-class file.

    Args:
        class_vars: a per-class file's variables: ``y`` ([[(name, probability)]
            * 5 per image]), ``y_k``, ``y_k_ll``, ``y_q``, ``y_q_ll`` ({value:
            [[(name, count)] per image]}) and ``class_images_dict`` ({class
            name: [image path]}).

    Yields:
        ``[class name, image path, rule, value, "all" or "last", top-1 name,
        top-1 probability, ranking joined by join_ranking]``.
    """
    for class_name, images in class_vars["class_images_dict"].items():
        for i, image in enumerate(images):
            top1, probability = class_vars["y"][i][0]
            for rule in RULES:
                for value in class_vars[f"y_{rule}"]:
                    for scope, suffix in LAYER_SCOPES:
                        ranking = class_vars[f"y_{rule}{suffix}"][value][i]
                        yield [
                            class_name, image, rule, value, scope, top1,
                            probability, join_ranking(ranking),
                        ]  # fmt: skip


# -------------------------------------------------------------------------- text


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return ``header`` and ``rows`` as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Iterator[bytes]:
    """Yield ``header`` and ``rows`` as CSV bytes, :data:`ROWS_PER_CHUNK` at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for number, row in enumerate(rows, start=1):
        writer.writerow(row)
        if number % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode("utf-8", "filtag.csv")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8", "filtag.csv")


def _tags_document(
    filtags_k: Mapping[int, list],
    filtags_q: Mapping[int, list],
    layer_names: Sequence[str],
) -> dict[str, Any]:
    """Return the object that ``-tags.json`` holds."""
    return {
        "layer_names": list(layer_names),
        "filTags_k": {str(value): layers for value, layers in filtags_k.items()},
        "filTags_q": {str(value): layers for value, layers in filtags_q.items()},
    }


def _escape_surrogates(text: str) -> str:
    """Return JSON ``text`` with each lone surrogate as a ``\\udXXX`` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def tags_csv(
    filtags_k: Mapping[int, list],
    filtags_q: Mapping[int, list],
    layer_names: Sequence[str],
) -> str:
    """Return ``-tags.csv``: the header :data:`TAG_COLUMNS`, then :func:`tag_rows`."""
    return _csv_text(TAG_COLUMNS, tag_rows(filtags_k, filtags_q, layer_names))


def tags_json(
    filtags_k: Mapping[int, list],
    filtags_q: Mapping[int, list],
    layer_names: Sequence[str],
) -> str:
    """Return ``-tags.json`` (see the module's docstring), surrogates escaped."""
    document = _tags_document(filtags_k, filtags_q, layer_names)
    return _escape_surrogates(json.dumps(document, ensure_ascii=False))


def rankings_csv(class_files: Iterable[Mapping[str, Any]]) -> str:
    """Return ``-rankings.csv`` of step-3 per-class files, in the given order."""
    return _csv_text(
        RANKING_COLUMNS, (row for c in class_files for row in ranking_rows(c))
    )


# ------------------------------------------------------------------------- files


def export_path(vars_path: Path, suffix: str) -> Path:
    """Return the export ``<prefix>-<suffix>`` beside ``<prefix>-vars.pkl``."""
    prefix = vars_path.name.removesuffix(".pkl").removesuffix("-vars")
    return vars_path.with_name(f"{prefix}-{suffix}")


def meta_layer_names(meta: Any, n_layers: int) -> list[str]:
    """Return step 1's layer names from a step-2 ``meta`` (``""`` when unknown)."""
    step1 = meta.get("step1") if isinstance(meta, dict) else None
    names = step1.get("layer_names") if isinstance(step1, dict) else None
    return list(names) if names and len(names) == n_layers else [""] * n_layers


def write_tags(vars_path: Path, variables: Mapping[str, Any]) -> list[Path]:
    """Write ``<prefix>-tags.csv`` and ``<prefix>-tags.json`` of a step-2 file.

    Args:
        vars_path: the step-2 ``-vars.pkl`` (need not exist yet).
        variables: its ``filTags_k``, ``filTags_q`` and (optional) ``meta``.

    Returns:
        The two files written, each atomically.
    """
    filtags_k, filtags_q = variables["filTags_k"], variables["filTags_q"]
    n_layers = len(next(iter(filtags_k.values()), []))
    names = meta_layer_names(variables.get("meta"), n_layers)
    csv_path = export_path(vars_path, "tags.csv")
    json_path = export_path(vars_path, "tags.json")
    atomic_write_bytes(
        csv_path, _csv_chunks(TAG_COLUMNS, tag_rows(filtags_k, filtags_q, names))
    )
    chunks = json.JSONEncoder(ensure_ascii=False).iterencode(
        _tags_document(filtags_k, filtags_q, names)
    )
    atomic_write_bytes(
        json_path, (c.encode("utf-8", "backslashreplace") for c in chunks)
    )
    return [csv_path, json_path]


def write_rankings(vars_path: Path, eval_files: Sequence[str]) -> Path:
    """Write ``<prefix>-rankings.csv`` of a step-3 run, one class file at a time.

    Args:
        vars_path: the step-3 index ``-vars.pkl`` (need not exist yet).
        eval_files: the per-class file names, in ``vars_path``'s folder.

    Returns:
        The file written (atomically).

    Raises:
        ArtifactError: a per-class file is missing or unreadable.
    """
    path = export_path(vars_path, "rankings.csv")
    class_files = (load_vars(vars_path.parent / n, CLASS_FILE) for n in eval_files)
    rows = (row for c in class_files for row in ranking_rows(c))
    atomic_write_bytes(path, _csv_chunks(RANKING_COLUMNS, rows))
    return path


def write_exports(vars_path: Path, variables: Mapping[str, Any]) -> list[Path]:
    """Write the exports of a step file beside ``vars_path``.

    Args:
        vars_path: the ``-vars.pkl`` the variables are (or will be) saved as.
        variables: a step-2 file's (``filTags_k``, ``filTags_q``): writes the
            tags; a step-3 index's (``eval_files``, whose class files already lie
            beside ``vars_path``): writes the rankings; others: nothing.

    Returns:
        The files written.
    """
    if "filTags_k" in variables and "filTags_q" in variables:
        return write_tags(vars_path, variables)
    if "eval_files" in variables:
        return [write_rankings(vars_path, variables["eval_files"])]
    return []
