"""Class labels: the names of a model's outputs, and ImageNet wnids.

``decoding_wnids.txt`` (in the repository root) lists the 1000 ImageNet classes
in Keras output order, one ``wnid, name`` per line, e.g. ``n01440764, tench``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from filtag.errors import FiltagError

#: The ImageNet wnid -> name file shipped with filtag.
WNIDS_FILE = Path(__file__).resolve().parent.parent / "decoding_wnids.txt"

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


def imagenet_wnids() -> list[str]:
    """Return the 1000 ImageNet wnids in Keras output order."""
    return list(read_mapping(WNIDS_FILE))


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
