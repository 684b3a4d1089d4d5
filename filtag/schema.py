"""What each filtag step file holds, checked before any step uses it.

:func:`validate` checks the variables of a loaded file against the schema of
its kind (a step tag, :data:`CLASS_FILE` or a journal record kind). It runs after
:func:`filtag.safepickle.check_tree`, so every value is a tree of plain data,
nested at most ``MAX_DEPTH`` deep and no larger than its file: the checks below
are linear in the file's size, mostly C-speed passes (``set``, ``map``).

What a file of each kind must hold (README, "Variables"):

- step 1 (QFA): ``labels_id`` {0..n-1: class name}; ``filter_act_<i>`` for every
  class, one 1-D float array per layer (finite or NaN), the same layer sizes
  for every class; ``train_filenames``/``test_filenames`` lists of paths.
- step 2 (TF): ``filTags_k``/``filTags_q`` {value: per layer, per filter, the
  list of distinct class names (at most one tag per class per filter)}, the
  same values and filters per layer in both.
- step 3 index (E): ``eval_files`` (plain file names), ``k_q``, ``classes``.
- step 3 class file: ``y`` per image its (class name, probability) pairs;
  ``y_k``, ``y_k_ll``, ``y_q``, ``y_q_ll`` {value: per image a ranking of
  (class name, count >= 1) pairs, at most one per class}; ``class_images_dict``
  {class name: one path per image}.
- step 4 (HR): ``hit_*`` {class: {k: {m: rate}}}, ``totalhit_*`` and
  ``meanhit_*`` {k: {m: rate}}, rates in [0, 1], the same k and m everywhere.
- ``meta`` (optional: files of the original FilTag scripts have none): a dict
  with str keys whose known keys have their types, with the earlier steps'
  metas under ``step1``, ``step2``, ``step3``.

Class names have at most :data:`MAX_NAME` characters, other texts at most
:data:`MAX_TEXT`, so shared names cannot make exports grow beyond a small
multiple of the file. Variables that no step reads are loaded but not checked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from filtag.errors import ArtifactError

#: Tags in file names, and the script that writes them.
STEP_TAGS = {
    "QFA": "step1filteractivations.py",
    "TF": "step2filtertags.py",
    "E": "step3evaluation.py",
    "HR": "step4hitrates.py",
    "SI": "si-eval.py",
    "LD": "labdecode.py",
    "VIS": "filTagsvis.py",
    "HRP": "hitrates-plots.py",
    "TC": "tagcheck.py",
}

#: The kind of step 3's per-class files ``<prefix>-varsX.pkl``.
CLASS_FILE = "E-class"

#: The kinds of a run's ``-journal.pkl`` records: this prefix and ``header``
#: or the step's tag.
JOURNAL = "journal-"

#: The most characters of a class name (a folder name has at most 255 bytes).
MAX_NAME = 256

#: The most characters of a path or another text in ``meta``.
MAX_TEXT = 4096

#: Probabilities may exceed 1 by this much (outputs summing to 1 within 1e-3).
PROBABILITY_SLACK = 1e-3

#: The step-1 meta keys that steps 3 and si-eval read to rebuild the network.
TAGS_RUN_KEYS = (
    "network",
    "model_path",
    "weights",
    "layer_names",
    "preprocess",
    "image_size",
    "color_mode",
    "interpolation",
    "images_dir",
    "split",
    "seed_rn",
    "split_sha256",
    "class_names",
)


class _Wrong(Exception):
    """What is wrong with a variable: the text inside the error's parentheses."""


# ------------------------------------------------------------------- basic checks


def _describe(value: Any) -> str:
    """A short description of ``value`` for messages."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, str | bytes):
        return f"the {type(value).__name__} {value!r:.60}"
    if isinstance(value, list | tuple | dict | set | frozenset):
        return f"a {type(value).__name__} of {len(value)} items"
    if value is None or isinstance(value, bool | int | float | np.generic):
        return f"{value!r:.40}"
    return f"a {type(value).__name__}"


def _fail(where: str, value: Any, expected: str) -> _Wrong:
    """The error ``<where> is <value>; expected <expected>``."""
    return _Wrong(f"{where} is {_describe(value)}; expected {expected}")


#: The types of whole numbers: Python's and numpy's.
_INT_TYPES = frozenset({int} | {np.dtype(char).type for char in "bBhHiIlLqQ"})


def _is_int(value: Any) -> bool:
    """Tell whether ``value`` is a whole number (not a bool)."""
    return type(value) is int or isinstance(value, np.integer)


def _is_real(value: Any) -> bool:
    """Tell whether ``value`` is a finite real number (not a bool)."""
    return (
        type(value) in (int, float) or isinstance(value, np.integer | np.floating)
    ) and math.isfinite(value)


def _whole(value: Any, where: str, minimum: int = 0) -> int:
    """Return ``value`` if it is a whole number >= ``minimum``."""
    if not _is_int(value) or value < minimum:
        raise _fail(where, value, f"a whole number >= {minimum}")
    return int(value)


def _text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    """Return ``value`` if it is a str of at most ``limit`` characters."""
    if type(value) is not str or len(value) > limit:
        raise _fail(where, value, f"a str of at most {limit} characters")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    """Return ``value`` if it is None or a str (a path, a hash, ...)."""
    return None if value is None else _text(value, where)


def _rate(value: Any, where: str, high: float = 1.0) -> float:
    """Return ``value`` if it is a number in [0, ``high``]."""
    if not _is_real(value) or not 0 <= value <= high:
        raise _fail(where, value, f"a number in [0, {high:g}]")
    return float(value)


def _list(value: Any, where: str, what: str) -> list:
    """Return ``value`` if it is a list."""
    if type(value) is not list:
        raise _fail(where, value, f"a list of {what}")
    return value


def _dict(value: Any, where: str, what: str) -> dict:
    """Return ``value`` if it is a dict."""
    if type(value) is not dict:
        raise _fail(where, value, f"a dict {what}")
    return value


def _is_text(value: Any, limit: int) -> bool:
    """Tell whether ``value`` is a str of at most ``limit`` characters."""
    return type(value) is str and len(value) <= limit


def _texts(value: Any, where: str, limit: int, distinct: bool) -> list[str]:
    """Return ``value`` if it is a list of str (distinct when asked)."""
    items = _list(value, where, "str")
    if items and (set(map(type, items)) != {str} or max(map(len, items)) > limit):
        i = next(i for i, item in enumerate(items) if not _is_text(item, limit))
        raise _fail(f"{where}[{i}]", items[i], f"a str of at most {limit} characters")
    if distinct and len(set(items)) != len(items):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item in seen:
                raise _Wrong(f"{where}[{i}] repeats {item!r:.60}")
            seen.add(item)
    return items


def _names(value: Any, where: str, distinct: bool = True) -> list[str]:
    """Return ``value`` if it is a list of class names."""
    return _texts(value, where, MAX_NAME, distinct)


def _paths(value: Any, where: str) -> list[str]:
    """Return ``value`` if it is a list of distinct paths."""
    return _texts(value, where, MAX_TEXT, distinct=True)


def _wholes(value: Any, where: str, minimum: int = 0) -> list:
    """Return ``value`` if it is a list of whole numbers >= ``minimum``."""
    items = _list(value, where, f"whole numbers >= {minimum}")
    for i, item in enumerate(items):
        _whole(item, f"{where}[{i}]", minimum)
    return items


def _required(variables: Mapping[str, Any], name: str) -> Any:
    """Return the variable ``name``; it must be there."""
    if name not in variables:
        raise _Wrong(f"it lacks the variable {name}")
    return variables[name]


def _same(found: Any, expected: Any, where: str, what: str) -> Any:
    """Return ``found``; it must equal the ``expected`` of an earlier value."""
    if expected is not None and found != expected:
        raise _Wrong(f"{where} has {what} {found!r:.80}; before: {expected!r:.80}")
    return found


# ----------------------------------------------------------------------- meta


def _fraction(value: Any, where: str) -> float:
    """Return ``value`` if it is a number strictly between 0 and 1."""
    if not _is_real(value) or not 0 < value < 1:
        raise _fail(where, value, "a number in (0, 1)")
    return float(value)


def _bool(value: Any, where: str) -> bool:
    """Return ``value`` if it is True or False."""
    if type(value) is not bool:
        raise _fail(where, value, "True or False")
    return value


def _image_size(value: Any, where: str) -> list[int]:
    """Return ``value`` if it is [height, width], whole numbers >= 1."""
    size = _wholes(value, where, 1)
    if len(size) != 2:
        raise _fail(where, value, "[height, width]")
    return size


def _counts_by_name(value: Any, where: str) -> dict:
    """Return ``value`` if it is a dict {name: whole number >= 0}."""
    for key, count in _dict(value, where, "{name: count}").items():
        _text(key, f"{where} key")
        _whole(count, f"{where}[{key!r:.40}]")
    return value


def _text_map(value: Any, where: str) -> dict:
    """Return ``value`` if it is a dict {str: str}."""
    for key, text in _dict(value, where, "{str: str}").items():
        _text(key, f"{where} key")
        _text(text, f"{where}[{key!r:.40}]")
    return value


#: How each known meta key is checked: (value, where) -> value.
_META_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "step": lambda v, w: _text(v, w, 8),
    "network": _text,
    "model_path": _optional_text,
    "model_sha256": _optional_text,
    "weights": _optional_text,
    "framework": _text,
    "network_arg": _text,
    "weights_path": _optional_text,
    "weights_sha256": _optional_text,
    "layers_rule": _text,
    "layer_names": lambda v, w: _texts(v, w, MAX_TEXT, distinct=False),
    "filters_per_layer": lambda v, w: _wholes(v, w, 1),
    "image_size": _image_size,
    "color_mode": _text,
    "preprocess": _text,
    "interpolation": _text,
    "images_dir": _text,
    "split": _fraction,
    "seed_rn": _whole,
    "split_sha256": _text,
    "class_names": lambda v, w: _names(v, w, distinct=False),
    "batch_size": lambda v, w: _whole(v, w, 1),
    "mixed_precision": _bool,
    "run_id": _text,
    "created_utc": _text,
    "images_per_class": _counts_by_name,
    "skipped_broken": _whole,
    "skipped_not_images": _text_map,
    "skipped_hidden": _whole,
    "versions": _text_map,
    "activations_file": _text,
    "k_q": _wholes,
    "filtags_file": _text,
    "classes": lambda v, w: _names(v, w, distinct=False),
    "images_evaluated": _whole,
    "images_skipped": _whole,
    "eval_file": _text,
    "m": lambda v, w: _wholes(v, w, 1),
    "classes_img": lambda v, w: _names(v, w, distinct=False),
    "images": _whole,
    "decoded_from": _text,
    "mapping_file": _text,
    "label_mapping": _text_map,
    "unknown_labels": lambda v, w: _names(v, w, distinct=False),
}

#: The keys every meta of a step holds.
_META_REQUIRED = {
    "QFA": ("step", "network"),
    "TF": ("step", "network", "k_q", "class_names"),
    "E": ("step", "network"),
    "HR": ("step",),
}

#: The key under which a step's meta holds the previous step's, and its tag.
_EARLIER = {"TF": ("step1", "QFA"), "E": ("step2", "TF"), "HR": ("step3", "E")}


def _meta(meta: Any, tag: str, where: str) -> dict:
    """Check a step's ``meta``: str keys, the known keys' types, earlier metas.

    Args:
        meta: the value.
        tag: the step that wrote it.
        where: its name in messages (``meta``, ``meta['step1']``, ...).
    """
    _dict(meta, where, "{str: value}")
    keys = list(meta)
    if keys and set(map(type, keys)) != {str}:
        raise _fail(
            f"{where} key", next(k for k in keys if type(k) is not str), "a str"
        )
    for key in _META_REQUIRED[tag]:
        if key not in meta:
            raise _Wrong(f"{where} lacks {key!r}")
    if meta["step"] != tag:
        raise _fail(f"{where}['step']", meta["step"], repr(tag))
    for key, check in _META_FIELDS.items():
        if key in meta:
            check(meta[key], f"{where}[{key!r}]")
    key, earlier = _EARLIER.get(tag, (None, None))
    if meta.get(key) is not None:  # step 2 of a file without meta: step1 None
        _meta(meta[key], earlier, f"{where}[{key!r}]")
    if tag == "TF" and meta.get("step1") is not None:
        missing = [key for key in TAGS_RUN_KEYS if key not in meta["step1"]]
        if missing:
            raise _Wrong(f"{where}['step1'] lacks {missing[0]!r}")
    return meta


def _meta_of(variables: Mapping[str, Any], tag: str) -> dict | None:
    """Return the file's checked ``meta``, or None when it has none."""
    if "meta" not in variables:
        return None
    return _meta(variables["meta"], tag, "meta")


# --------------------------------------------------------------------- step 1


def _labels_id(value: Any) -> list[str]:
    """Return the class names of ``labels_id`` {0..n-1: name}, by index."""
    labels = _dict(value, "labels_id", "{class index: class name}")
    if not labels or set(labels) != set(range(len(labels))):
        keys = sorted(labels, key=repr)[:5]
        raise _Wrong(f"labels_id has keys {keys}...; expected 0..n-1 (n >= 1)")
    return _names([labels[i] for i in range(len(labels))], "labels_id")


def _filter_act(value: Any, where: str, sizes: list[int] | None) -> list[int]:
    """Check one class's filter activations; return its layer sizes."""
    layers = _list(value, where, "arrays, one per layer")
    for a, array in enumerate(layers):
        if not isinstance(array, np.ndarray) or array.ndim != 1 or array.size < 1:
            raise _fail(f"{where}[{a}]", array, "a 1-D float array")
        if array.dtype.kind != "f" or np.isinf(array).any():
            raise _fail(f"{where}[{a}]", array, "floats, finite or NaN")
    found = [array.size for array in layers]
    if not found:
        raise _fail(where, value, "one array per layer")
    return _same(found, sizes, where, "layer sizes")


def _step1(variables: Mapping[str, Any]) -> None:
    """Check a step-1 file."""
    meta = _meta_of(variables, "QFA")
    names = _labels_id(_required(variables, "labels_id"))
    sizes = None
    for i in range(len(names)):
        name = f"filter_act_{i}"
        sizes = _filter_act(_required(variables, name), name, sizes)
    for name in variables:
        match = re.fullmatch(r"filter_act_(\d+)", name)
        if match and int(match[1]) >= len(names):
            raise _Wrong(f"{name} has no class in labels_id ({len(names)} classes)")
    for name in ("train_filenames", "test_filenames"):
        if name in variables:
            _paths(variables[name], name)
    if meta is not None and meta.get("filters_per_layer", sizes) != sizes:
        raise _Wrong(
            f"meta['filters_per_layer'] is {meta['filters_per_layer']!r:.80} but "
            f"filter_act_0 has layers of {sizes!r:.80} filters"
        )
    if meta is not None and len(meta.get("layer_names", sizes)) != len(sizes):
        raise _Wrong(
            f"meta['layer_names'] names {len(meta['layer_names'])} layers but "
            f"filter_act_0 has {len(sizes)}"
        )
    if "exemplar_images" in variables or "exemplar_values" in variables:
        _exemplars(
            _required(variables, "exemplar_images"),
            _required(variables, "exemplar_values"),
            sizes or [],
        )


def _exemplars(images: Any, values: Any, sizes: list[int]) -> None:
    """Check step 1's exemplars: per layer, per filter, n paths and their values."""
    layers = _list(values, "exemplar_values", "one array per layer")
    _same(len(layers), len(sizes), "exemplar_values", "length (one per layer)")
    n = None
    for a, array in enumerate(layers):
        where = f"exemplar_values[{a}]"
        if not (isinstance(array, np.ndarray) and array.ndim == 2):
            raise _fail(where, array, "a 2-D float array (filters, n)")
        if array.dtype.kind != "f" or array.shape[0] != sizes[a]:
            raise _fail(where, array, f"a float array of {sizes[a]} rows")
        n = array.shape[1] if n is None else _same(array.shape[1], n, where, "columns")
    per_layer = _list(images, "exemplar_images", "one list per layer")
    _same(len(per_layer), len(sizes), "exemplar_images", "length (one per layer)")
    for a, filters in enumerate(per_layer):
        where = f"exemplar_images[{a}]"
        _same(len(_list(filters, where, "one list per filter")), sizes[a], where,
              "length (one per filter)")  # fmt: skip
        for f, paths in enumerate(filters):
            _same(len(_paths(paths, f"{where}[{f}]")), n, f"{where}[{f}]",
                  "length (one per exemplar value)")  # fmt: skip


# --------------------------------------------------------------------- step 2


def _tag_layer(layer: Any, where: str, classes: set[str] | None) -> int:
    """Check one layer's tags (a list of lists of class names); return its filters.

    C-speed passes over the whole layer; the slow search runs only to name the
    filter that is wrong.
    """
    filters = _list(layer, where, "filters' tag lists")
    if not (
        filters
        and set(map(type, filters)) == {list}
        and _known_names(chain.from_iterable(filters), classes)
        and sum(map(len, filters)) == sum(map(len, map(set, filters)))
    ):
        _explain_tag_layer(filters, where, classes)
    return len(filters)


def _known_names(names: Iterable[Any], classes: set[str] | None) -> bool:
    """Tell whether all ``names`` are class names (or, without those, short str).

    A set of str holds only str: membership also checks the type.
    """
    if classes is None:
        names = list(names)
        return (
            set(map(type, names)) <= {str}
            and max(map(len, names), default=0) <= MAX_NAME
        )
    try:
        return classes.issuperset(names)
    except TypeError:  # an unhashable name
        return False


def _explain_tag_layer(filters: list, where: str, classes: set[str] | None) -> None:
    """Raise the error of the first wrong filter of a layer's tags."""
    if not filters:
        raise _fail(where, filters, "one tag list per filter")
    for f, tags in enumerate(filters):
        _names(tags, f"{where}[{f}]", distinct=False)
        seen: set[str] = set()
        for t, tag in enumerate(tags):
            if tag in seen:
                raise _Wrong(f"{where}[{f}][{t}] repeats class {tag!r}")
            if classes is not None and tag not in classes:
                raise _Wrong(f"{where}[{f}][{t}] is {tag!r:.60}, not a class name")
            seen.add(tag)
    raise _fail(where, filters, "lists of distinct class names")


def _tags(value: Any, name: str, classes: set[str] | None, shape: list | None):
    """Check ``filTags_k`` or ``filTags_q``; return its filters per layer."""
    by_value = _dict(value, name, "{value: tags per layer}")
    if not by_value:
        raise _fail(name, by_value, "tags for at least one value")
    for key, layers in by_value.items():
        where = f"{name}[{_whole(key, f'{name} key')}]"
        _list(layers, where, "layers")
        found = [
            _tag_layer(layer, f"{where}[{a}]", classes)
            for a, layer in enumerate(layers)
        ]
        if not found:
            raise _fail(where, layers, "one list per layer")
        shape = _same(found, shape, where, "filters per layer")
    return shape


def _step2(variables: Mapping[str, Any]) -> None:
    """Check a step-2 file."""
    meta = _meta_of(variables, "TF")
    classes = set(meta["class_names"]) if meta is not None else None
    tags_k = _required(variables, "filTags_k")
    tags_q = _required(variables, "filTags_q")
    shape = _tags(tags_k, "filTags_k", classes, None)
    _tags(tags_q, "filTags_q", classes, shape)
    _same(sorted(tags_q), sorted(tags_k), "filTags_q", "values")


# --------------------------------------------------------------------- step 3


def _file_names(value: Any, where: str) -> list[str]:
    """Return ``value`` if it is a list of file names (no folders)."""
    names = _texts(value, where, MAX_NAME, distinct=False)
    for i, name in enumerate(names):
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise _fail(f"{where}[{i}]", name, "a file name beside this file")
    return names


def _step3_index(variables: Mapping[str, Any]) -> None:
    """Check a step-3 index file."""
    _meta_of(variables, "E")
    files = _file_names(_required(variables, "eval_files"), "eval_files")
    _wholes(_required(variables, "k_q"), "k_q")
    classes = _names(_required(variables, "classes"), "classes", distinct=False)
    _same(len(files), len(classes), "eval_files", "length (one per class)")


def _pair_error(pair: Any, where: str, second: str) -> _Wrong:
    """The error of a ``(class name, <second>)`` pair that is none."""
    return _fail(where, pair, f"a (class name, {second}) pair")


def _top_predictions(value: Any, where: str) -> int:
    """Check ``y``: per image, its (class name, probability) pairs."""
    for i, pairs in enumerate(_list(value, where, "images' top predictions")):
        _list(pairs, f"{where}[{i}]", "(class name, probability) pairs")
        if not pairs:
            raise _fail(f"{where}[{i}]", pairs, "at least one prediction")
        for j, pair in enumerate(pairs):
            ok = type(pair) in (tuple, list) and len(pair) == 2
            if not ok or not _is_text(pair[0], MAX_NAME):
                raise _pair_error(pair, f"{where}[{i}][{j}]", "probability")
            _rate(pair[1], f"{where}[{i}][{j}][1]", 1 + PROBABILITY_SLACK)
    return len(value)


def _rankings_ok(rankings: list) -> bool:
    """Tell, with C-speed passes, whether every ranking of a list is valid."""
    if set(map(type, rankings)) - {list}:
        return False
    pairs = list(chain.from_iterable(rankings))
    if set(map(type, pairs)) - {tuple, list}:
        return False
    try:  # a pair of another length fails; a class twice makes a shorter dict
        if sum(map(len, map(dict, rankings))) != len(pairs):
            return False
    except (TypeError, ValueError):
        return False
    names = list(map(itemgetter(0), pairs))
    counts = list(map(itemgetter(1), pairs))
    return not pairs or (
        set(map(type, names)) == {str}
        and max(map(len, names)) <= MAX_NAME
        and set(map(type, counts)) <= _INT_TYPES
        and min(counts) >= 1
    )


def _explain_ranking(ranking: Any, where: str) -> None:
    """Raise the error of ``ranking`` if it is wrong."""
    seen: set[str] = set()
    for j, pair in enumerate(_list(ranking, where, "(class name, count) pairs")):
        ok = type(pair) in (tuple, list) and len(pair) == 2
        if not ok or not _is_text(pair[0], MAX_NAME):
            raise _pair_error(pair, f"{where}[{j}]", "count")
        _whole(pair[1], f"{where}[{j}][1]", 1)
        if pair[0] in seen:
            raise _Wrong(f"{where}[{j}] repeats class {pair[0]!r}")
        seen.add(pair[0])


def _rankings(value: Any, where: str, images: int | None) -> list[int]:
    """Check ``y_k``-like rankings {value: per image a ranking}; return the values."""
    by_value = _dict(value, where, "{value: rankings per image}")
    for key, per_image in by_value.items():
        at = f"{where}[{_whole(key, f'{where} key')}]"
        _list(per_image, at, "rankings, one per image")
        _same(len(per_image), images, at, "length (one ranking per image)")
        if not _rankings_ok(per_image):
            for i, ranking in enumerate(per_image):
                _explain_ranking(ranking, f"{at}[{i}]")
            raise _fail(at, per_image, "rankings of (class name, count) pairs")
    return sorted(by_value)


#: The rankings of a step-3 class file: all layers and last layer, k and q.
RANKING_VARIABLES = ("y_k", "y_k_ll", "y_q", "y_q_ll")


def _class_results(y: Any, rankings: Mapping[str, Any], where: str) -> int:
    """Check a class's ``y`` and rankings; return its number of images.

    Args:
        y: the top predictions.
        rankings: ``y_k``, ``y_k_ll``, ``y_q``, ``y_q_ll`` by name.
        where: what holds them, as a prefix of messages ("" for a class file).
    """
    images = _top_predictions(y, f"{where}y")
    values = None
    for name in RANKING_VARIABLES:
        found = _rankings(_required(rankings, name), f"{where}{name}", images)
        values = _same(found, values, f"{where}{name}", "values")
    return images


def _class_file(variables: Mapping[str, Any]) -> None:
    """Check a step-3 per-class file."""
    images = _class_results(_required(variables, "y"), variables, "")
    files = _dict(
        _required(variables, "class_images_dict"), "class_images_dict", "{class: paths}"
    )
    if len(files) != 1:
        raise _fail("class_images_dict", files, "one class")
    ((name, paths),) = files.items()
    where = f"class_images_dict[{_text(name, 'class_images_dict key', MAX_NAME)!r}]"
    _same(len(_paths(paths, where)), images, where, "length (one path per image)")


# --------------------------------------------------------------------- step 4

HIT_VARIANTS = ("k", "q", "k_ll", "q_ll")


def _rates_by_value(value: Any, where: str, keys: dict[str, list | None]) -> None:
    """Check {k: {m: rate}}; ``keys`` holds the k and m values seen so far."""
    by_k = _dict(value, where, "{k: {m: rate}}")
    for k, by_m in by_k.items():
        at = f"{where}[{_whole(k, f'{where} key')}]"
        _dict(by_m, at, "{m: rate}")
        for m, rate in by_m.items():
            _rate(rate, f"{at}[{_whole(m, f'{at} key', 1)}]")
        keys["m"] = _same(sorted(by_m), keys["m"], at, "m values")
    keys["k"] = _same(sorted(by_k), keys["k"], where, "k values")


def _step4(variables: Mapping[str, Any]) -> None:
    """Check a step-4 file."""
    _meta_of(variables, "HR")
    keys: dict[str, list | None] = {"k": None, "m": None}
    for variant in HIT_VARIANTS:
        name = f"hit_{variant}"
        by_class = _dict(_required(variables, name), name, "{class: {k: {m: rate}}}")
        for class_name, rates in by_class.items():
            _text(class_name, f"{name} key", MAX_NAME)
            _rates_by_value(rates, f"{name}[{class_name!r}]", keys)
    for prefix in ("totalhit", "meanhit"):
        for variant in HIT_VARIANTS:
            name = f"{prefix}_{variant}"
            if name in variables:
                _rates_by_value(variables[name], name, keys)


# -------------------------------------------------------------------- journals


def _exact_keys(value: Any, where: str, keys: tuple[str, ...]) -> dict:
    """Return ``value`` if it is a dict with exactly ``keys``."""
    found = _dict(value, where, "{" + ", ".join(keys) + "}")
    if set(found) != set(keys):
        names = sorted(map(str, found))
        raise _Wrong(f"{where} has the keys {names!r:.80}; expected {list(keys)}")
    return found


def _journal_header(header: Any) -> None:
    """Check a journal's first record: the run's inputs."""
    _dict(_exact_keys(header, "the journal header", ("inputs",))["inputs"],
          "inputs", "{input: value}")  # fmt: skip


def _step1_record(record: Any) -> None:
    """Check a step-1 journal record: a finished class's float64 sums and count."""
    where = "a journal record"
    found = _dict(record, where, "{class, sums, count, ...}")
    _exact_keys({k: v for k, v in found.items() if k in _STEP1_RECORD}, where,
                _STEP1_RECORD)  # fmt: skip
    _whole(found["class"], "class")
    sums = found["sums"]
    if not (
        isinstance(sums, np.ndarray) and sums.ndim == 1 and sums.dtype == np.float64
    ):
        raise _fail("sums", sums, "a 1-D float64 array")
    _whole(found["count"], "count")
    delta = [found.get(key) for key in _EXEMPLAR_DELTA]
    if any(part is not None for part in delta):
        for key, part in zip(_EXEMPLAR_DELTA, delta, strict=True):
            if not (isinstance(part, np.ndarray) and part.ndim == 1):
                raise _fail(key, part, "a 1-D array")
            _same(len(part), len(delta[0]), key, "length")


_STEP1_RECORD = ("class", "sums", "count")
_EXEMPLAR_DELTA = ("exemplar_filters", "exemplar_values", "exemplar_positions")


def _step3_record(record: Any) -> None:
    """Check a step-3 journal record: the class file written for a row."""
    found = _exact_keys(record, "a journal record", ("row", "file", "evaluated"))
    _whole(found["row"], "row")
    _file_names([found["file"]], "file")
    _whole(found["evaluated"], "evaluated")


# ------------------------------------------------------------------- validate

_CHECKS: dict[str, Callable[[Any], None]] = {
    "QFA": _step1,
    "TF": _step2,
    "E": _step3_index,
    "HR": _step4,
    CLASS_FILE: _class_file,
    JOURNAL + "header": _journal_header,
    JOURNAL + "QFA": _step1_record,
    JOURNAL + "E": _step3_record,
}


def _advice(kind: str) -> str:
    """What to do with a file of ``kind`` that is refused."""
    if kind.startswith(JOURNAL):
        return "start a new run without --resume"
    if kind == CLASS_FILE:
        return f"pass the class files that {STEP_TAGS['E']} wrote beside its index"
    return f"pass the -vars.pkl that {STEP_TAGS[kind]} wrote"


def validate(variables: Any, kind: str, path: object) -> None:
    """Check a loaded file against the schema of its kind.

    Args:
        variables: name -> value, as :func:`filtag.artifacts.load_vars`
            returns them (a journal record: the record).
        kind: a step tag (``QFA``, ``TF``, ``E``, ``HR``), :data:`CLASS_FILE`,
            or :data:`JOURNAL` + ``header``, ``QFA`` or ``E``.
        path: the file, for the message.

    Raises:
        ArtifactError: one line, ``<path> is not a filtag file (<what is
            wrong, and where>); <what to pass instead>.``
        KeyError: ``kind`` is none of these.
    """
    check = _CHECKS[kind]
    try:
        check(variables)
    except _Wrong as exc:
        raise ArtifactError(
            f"{path} is not a filtag file ({exc}); {_advice(kind)}."
        ) from None
