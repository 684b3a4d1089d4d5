"""Class labels: the names of a model's outputs, ImageNet wnids."""

from __future__ import annotations

from pathlib import Path

import pytest

from filtag import labels
from filtag.errors import FiltagError


def test_wnids_are_the_1000_imagenet_classes_in_keras_order() -> None:
    wnids = labels.imagenet_wnids()
    assert len(wnids) == len(set(wnids)) == 1000
    assert wnids[0] == "n01440764" and wnids[999] == "n15075141"
    mapping = labels.read_mapping()
    assert mapping["n01440764"] == "tench" and mapping["n02088364"] == "beagle"


def test_output_class_names_rules(tmp_path: Path) -> None:
    folders = ["b", "a_not_sorted_here"]
    names = tmp_path / "names.txt"
    names.write_text("x\n\n y \n")
    assert labels.output_class_names(2, folders, names) == ["x", "y"]
    assert labels.output_class_names(1000, folders)[1] == "n01443537"
    assert labels.output_class_names(2, folders) == folders
    with pytest.raises(
        FiltagError, match=r"names\.txt has 2 names but the model has 3"
    ):
        labels.output_class_names(3, folders, names)
    with pytest.raises(FiltagError, match="pass --class-names FILE"):
        labels.output_class_names(3, folders)


def test_mapping_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "map.txt"
    bad.write_text("n1, one\nn2\n")
    with pytest.raises(FiltagError, match="line 2 is 'n2'"):
        labels.read_mapping(bad)
    with pytest.raises(FiltagError, match="cannot be read"):
        labels.read_mapping(tmp_path / "none.txt")
