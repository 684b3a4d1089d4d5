"""Class labels: the names of a model's outputs, and ImageNet wnids.

``decoding_wnids.txt`` (package data of filtag) lists the 1000 ImageNet classes
in Keras output order, one ``wnid, name`` per line, e.g. ``n01440764, tench``;
torchvision and timm use the same order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from filtag.errors import FiltagError
from filtag.text import printable

#: The ImageNet wnid -> name file shipped with filtag (inside the package).
WNIDS_FILE = Path(str(resources.files("filtag").joinpath("decoding_wnids.txt")))

#: Number of outputs of an ImageNet classifier.
IMAGENET_CLASSES = 1000


def read_names(path: Path, flag: str = "--class-names") -> list[str]:
    """Read one class name per line (blank lines and surrounding spaces dropped).

    Raises:
        FiltagError: the file cannot be read.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FiltagError(
            f"{flag} {path} cannot be read ({exc}); pass a UTF-8 text file."
        ) from None
    return [line.strip() for line in lines if line.strip()]


def read_mapping(path: Path = WNIDS_FILE, flag: str = "--mapping") -> dict[str, str]:
    """Read a two-column ``label, name`` file (comma or tab separated).

    Returns:
        dict label -> name, in file order.

    Raises:
        FiltagError: the file cannot be read or a line has no second column.
    """
    mapping = {}
    for number, line in enumerate(read_names(path, flag), start=1):
        parts = line.split("\t", 1) if "\t" in line else line.split(",", 1)
        if len(parts) != 2:
            raise FiltagError(
                f"{flag} {path} line {number} is {line!r}; expected 'label, name'."
            )
        mapping[parts[0].strip()] = parts[1].strip()
    return mapping


@functools.cache
def imagenet_names() -> dict[str, str]:
    """Return {wnid: name} of the 1000 ImageNet classes, in Keras output order."""
    return read_mapping(WNIDS_FILE)


def imagenet_wnids() -> list[str]:
    """Return the 1000 ImageNet wnids in Keras output order."""
    return list(imagenet_names())


def display(label: str) -> str:
    """Return a label for people: an ImageNet wnid with its name, others unchanged.

    E.g. ``n02088364`` -> ``n02088364 beagle``; names that are not UTF-8 are
    escaped (:func:`filtag.text.printable`).
    """
    name = imagenet_names().get(label)
    return printable(f"{label} {name}" if name else label)


def mismatch_message(output_names: Sequence[str], folders: Sequence[str]) -> str | None:
    """Return why hit rates would be 0, or None when they can mean something.

    A hit needs the network's top-1 class to be a class folder's name; when no
    folder name is among the network's output names, no image can be a hit.

    Args:
        output_names: the name of each network output.
        folders: the class folder names.
    """
    if set(output_names) & set(folders):
        return None
    wnids = set(output_names) <= set(imagenet_names())
    outputs = "ImageNet wnids" if wnids else "named"
    return (
        f"the network's outputs are {outputs} ({_examples(output_names)}) and the "
        f"class folders are {_examples(folders)}: none is the other's, so hit rates "
        "will be 0; pass --class-names or use a network trained on these classes"
    )


def _examples(names: Sequence[str], n: int = 3) -> str:
    """Return the first ``n`` names joined, with ', ...' when there are more."""
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def output_class_names(
    n_outputs: int, folder_classes: Sequence[str], class_names_file: Path | None = None
) -> list[str]:
    """Return the class name of each model output, in output order.

    The first rule that applies: the lines of ``class_names_file``; the ImageNet
    wnids for a 1000-way model; the sorted folder names when the model has one
    output per class folder.

    Raises:
        FiltagError: no rule applies, or the file has the wrong number of names.
    """
    if class_names_file is not None:
        names = read_names(class_names_file)
        if len(names) != n_outputs:
            raise FiltagError(
                f"--class-names {class_names_file} has {len(names)} names but the "
                f"model has {n_outputs} outputs; give one name per output, in order."
            )
        return names
    if n_outputs == IMAGENET_CLASSES:
        return imagenet_wnids()
    if n_outputs == len(folder_classes):
        return list(folder_classes)
    raise FiltagError(
        f"the model has {n_outputs} outputs but there are {len(folder_classes)} class "
        "folders; pass --class-names FILE with one name per output, in output order."
    )


# ---------------------------------------------------------------- decoding labels

#: The top-level ``meta`` entries of steps 1-4 that list class labels.
META_LABEL_KEYS = ("class_names", "classes", "classes_img")

#: The ``meta`` entries that hold the meta of the step before.
EARLIER_META_KEYS = ("step1", "step2", "step3")


def _rename_tags(tags: dict, rename: Callable[[str], str]) -> dict:
    """``{value: [[label] per filter] per layer}`` with every label renamed."""
    return {
        value: [
            [[rename(label) for label in on_filter] for on_filter in layer]
            for layer in layers
        ]
        for value, layers in tags.items()
    }


def _rename_pairs(per_image: list, rename: Callable[[str], str]) -> list:
    """``[[(label, number)] per image]`` with every label renamed."""
    return [[(rename(label), number) for label, number in pairs] for pairs in per_image]


def _rename_rankings(rankings: dict, rename: Callable[[str], str]) -> dict:
    """``{value: [[(label, count)] per image]}`` with every label renamed."""
    return {value: _rename_pairs(images, rename) for value, images in rankings.items()}


def _rename_keys(by_label: dict, rename: Callable[[str], str]) -> dict:
    """``{label: x}`` with every key renamed, in the same order."""
    return {rename(label): value for label, value in by_label.items()}


def _rename_list(label_list: list, rename: Callable[[str], str]) -> list:
    """``[label]`` with every label renamed."""
    return [rename(label) for label in label_list]


def _rename_meta(meta: Any, rename: Callable[[str], str]) -> Any:
    """A copy of ``meta`` with its top-level label lists renamed.

    The metas of earlier steps inside it stay as those steps wrote them.
    """
    if not isinstance(meta, dict):
        return meta
    return {
        key: _rename_list(value, rename) if key in META_LABEL_KEYS else value
        for key, value in meta.items()
    }


#: How each variable of steps 2-4 holds class labels (see README, "Variables").
_RENAMERS: dict[str, Callable[[Any, Callable[[str], str]], Any]] = {
    "filTags_k": _rename_tags,
    "filTags_q": _rename_tags,
    "y": _rename_pairs,
    **dict.fromkeys(("y_k", "y_k_ll", "y_q", "y_q_ll"), _rename_rankings),
    "class_images_dict": _rename_keys,
    "classes": _rename_list,
    **dict.fromkeys(("hit_k", "hit_q", "hit_k_ll", "hit_q_ll"), _rename_keys),
    "meta": _rename_meta,
}


def rename_labels(
    variables: Mapping[str, Any], rename: Callable[[str], str]
) -> dict[str, Any]:
    """Return a step file's variables with every class label passed through ``rename``.

    Labels are renamed in step 2's ``filTags_k``/``filTags_q``; step 3's ``y``,
    ``y_k``, ``y_k_ll``, ``y_q``, ``y_q_ll``, ``class_images_dict`` keys (a
    per-class file) and ``classes`` (the index); step 4's ``hit_*`` keys; and
    the top-level ``class_names``, ``classes`` and ``classes_img`` of ``meta``.
    Other variables, probabilities, counts, paths and order stay as they are.

    Args:
        variables: name -> value, as :func:`filtag.artifacts.load_vars` returns.
        rename: label -> new label.

    Returns:
        name -> value, same names in the same order (containers are new, the
        other values shared with ``variables``).
    """
    return {
        name: _RENAMERS[name](value, rename) if name in _RENAMERS else value
        for name, value in variables.items()
    }


def meta_labels(meta: Any) -> list[str]:
    """Return every label that a step's ``meta`` (and the metas inside it) lists.

    A meta that holds a ``label_mapping`` (a decoded file) lists its own labels
    decoded but keeps its earlier steps' metas as written; their labels are
    translated through that mapping, so all labels are in the meta's naming.

    Args:
        meta: a ``meta`` dict of steps 1-4 (anything else lists no label).

    Returns:
        labels in first-seen order, repeats possible: the meta's
        :data:`META_LABEL_KEYS` lists, then its earlier steps' labels.
    """
    if not isinstance(meta, dict):
        return []
    found = [
        label
        for key in META_LABEL_KEYS
        if isinstance(meta.get(key), list)
        for label in meta[key]
    ]
    translate = meta.get("label_mapping") or {}
    for key in EARLIER_META_KEYS:
        found += [translate.get(label, label) for label in meta_labels(meta.get(key))]
    return found


def file_labels(variables: Mapping[str, Any]) -> list[str]:
    """Return every class label of a step 2-4 file, in first-seen order, unique.

    The labels of its variables (as :func:`rename_labels` sees them) and of its
    meta chain (:func:`meta_labels`): for step 2-4 files of filtag these are all
    the class folders and all the model's output names, so one decoding of them
    serves every file of a run, and step 3's per-class files too.
    """
    seen: dict[str, None] = {}

    def record(label: str) -> str:
        seen[label] = None
        return label

    rename_labels(variables, record)
    for label in meta_labels(variables.get("meta")):
        record(label)
    return list(seen)


def decode_names(
    labels: Iterable[str], mapping: Mapping[str, str]
) -> tuple[dict[str, str], set[str]]:
    """Return a one-to-one decoding of ``labels`` through ``mapping``.

    Each label becomes ``mapping[label]``; a label the mapping lacks stays as it
    is. When several labels would get the same name, each of them whose name is
    not its own label is named ``"<name> (<label>)"`` instead (the ImageNet file
    ``decoding_wnids.txt`` names n02012849 and n03126707 both ``crane``: they
    become ``crane (n02012849)`` and ``crane (n03126707)``), so rankings never
    hold two classes of the same name.

    Args:
        labels: the labels to decode (repeats are ignored).
        mapping: label -> name, e.g. :func:`read_mapping`.

    Returns:
        ``(table, unknown)``: table = {label: name} for every label, one to one,
        in first-seen order; unknown = the labels ``mapping`` lacks.

    Raises:
        FiltagError: two labels still share a name, e.g. ``a`` and ``b`` both
            mapped to ``x`` while ``c`` is mapped to ``x (a)``.
    """
    table = {label: mapping.get(label, label) for label in labels}
    unknown = {label for label in table if label not in mapping}
    by_name: dict[str, list[str]] = {}
    for label, name in table.items():
        by_name.setdefault(name, []).append(label)
    for name, sharing in by_name.items():
        if len(sharing) > 1:
            for label in sharing:
                if label != name:
                    table[label] = f"{name} ({label})"
    owner: dict[str, str] = {}
    for label, name in table.items():
        if owner.setdefault(name, label) != label:
            raise FiltagError(
                f"labels {owner[name]!r} and {label!r} would both be named {name!r}; "
                "expected one name per label; give them different names."
            )
    return table, unknown


def decode_step_vars(
    variables: Mapping[str, Any], table: Mapping[str, str]
) -> dict[str, Any]:
    """Return a step file's variables with every label replaced by ``table[label]``.

    Args:
        variables: name -> value of a step 2-4 file (or a step-3 per-class file).
        table: label -> name, from :func:`decode_names`, holding every label of
            ``variables``.

    Returns:
        As :func:`rename_labels`.

    Raises:
        FiltagError: a label of ``variables`` is not in ``table`` (a step-3
            per-class file naming a class that its index does not know).
    """

    def rename(label: str) -> str:
        if label not in table:
            raise FiltagError(
                f"label {label!r} is not among the {len(table)} labels of the run; "
                "expected files of one run; pass a complete, unaltered file set."
            )
        return table[label]

    return rename_labels(variables, rename)


def compose_label_mapping(
    previous: Mapping[str, str], table: Mapping[str, str]
) -> dict[str, str]:
    """Return {original label: current name} after one more decoding.

    Args:
        previous: the file's own ``meta["label_mapping"]`` ({original label:
            name} of an earlier decoding; empty for a file never decoded).
        table: this decoding, {label in the file: new name}.

    Returns:
        {original label: new name} for every original label whose name is not
        the label itself, so the original class folders and output names
        always translate to the current names in one lookup.
    """
    composed = {label: table.get(name, name) for label, name in previous.items()}
    renamed_before = set(previous.values())
    composed.update(
        (label, name)
        for label, name in table.items()
        if label not in renamed_before and label != name
    )
    return {label: name for label, name in composed.items() if label != name}
