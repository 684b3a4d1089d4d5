"""The inputs of filtag's steps: one registry of names, help texts and validators.

The Python API (:mod:`filtag.steps`) and the command line (:mod:`filtag.cli`)
take the same inputs and check them with the same validators, so an edited
Inputs block, a flag and a keyword argument are refused with the same message.
A validator takes a value (text from the command line, or a Python value) and
returns it converted, or raises :class:`ValueError` saying what was expected.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filtag.errors import FiltagError

#: The largest k, q or m value accepted: far above any network's filters per
#: layer or any data set's classes, and small enough to refuse before
#: allocating anything.
MAX_RULE_VALUE = 100_000


# ---------------------------------------------------------------------- validators


def _number(value: Any, kind: type, what: str) -> Any:
    """Convert ``value`` to ``kind`` (int or float), refusing bools and fractions."""
    if isinstance(value, bool):
        raise ValueError(f"expected {what}; Received: {value!r}")
    try:
        return kind(value) if kind is float else int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"expected {what}; Received: {value!r}") from None


def whole_number(value: Any, minimum: int = 0) -> int:
    """Return ``value`` as a whole number >= ``minimum``."""
    what = f"a whole number >= {minimum}"
    number = _number(value, int, what)
    if number < minimum:
        raise ValueError(f"expected {what}; Received: {value!r}")
    return number


def positive_int(value: Any) -> int:
    """A whole number >= 1."""
    return whole_number(value, 1)


def nonnegative_int(value: Any) -> int:
    """A whole number >= 0."""
    return whole_number(value, 0)


def hours(value: Any) -> float:
    """Hours from UTC, between -24 and 24."""
    number = _number(value, float, "hours from UTC, e.g. 1 or -5")
    if not -24 <= number <= 24:
        raise ValueError(f"expected hours in [-24, 24]; Received: {value!r}")
    return number


def nonnegative_float(value: Any) -> float:
    """A number >= 0 (e.g. a fraction of a GPU)."""
    number = _number(value, float, "a number >= 0, e.g. 1 or 0.5")
    if not number >= 0:
        raise ValueError(f"expected a number >= 0; Received: {value!r}")
    return number


def test_fraction(value: Any) -> float:
    """The fraction of each class kept for testing: 0 < split < 1."""
    number = _number(value, float, "a fraction between 0 and 1, e.g. 0.2")
    if not 0 < number < 1:
        raise ValueError(
            f"expected a fraction between 0 and 1 (exclusive); Received: {value!r}"
        )
    return number


def path(value: Any) -> Path:
    """A file or folder path."""
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise ValueError(f"expected a path; Received: {value!r}")
    try:
        return Path(value).expanduser()
    except (RuntimeError, ValueError):  # an unknown ~user, a NUL byte
        raise ValueError(
            f"expected a path whose ~user exists; Received: {value!r}"
        ) from None


def text(value: Any) -> str:
    """A non-empty string."""
    if not str(value).strip():
        raise ValueError("expected a non-empty value")
    return str(value).strip()


def whole_numbers(value: Any, minimum: int = 0, useful: str = "") -> list[int]:
    """Whole numbers >= ``minimum`` as a sorted list without repeats.

    Accepts a list of numbers, or text such as ``"1,5,25"``, ``"0-100"`` or
    ``"0-10,25,50"`` (ranges include both ends). Values above
    :data:`MAX_RULE_VALUE` are refused before any range is built, with
    ``useful`` (the largest useful value) in the message.
    """
    items = (
        value
        if isinstance(value, list | tuple | range)
        else re.split(r"[,\s]+", str(value))
    )
    numbers: set[int] = set()
    for item in items:
        if isinstance(item, str) and re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", item):
            low, high = (int(part) for part in item.split("-"))
            if low > high:
                raise ValueError(f"range {item!r} runs backwards")
            if low < minimum:
                raise ValueError(
                    f"expected whole numbers >= {minimum}; Received: {item!r}"
                )
            _at_most(high, item, useful)
            numbers.update(range(low, high + 1))
        elif item != "":
            number = _number(item, int, f"whole numbers >= {minimum}")
            if number < minimum:
                raise ValueError(
                    f"expected whole numbers >= {minimum}; Received: {item!r}"
                )
            _at_most(number, item, useful)
            numbers.add(number)
    if not numbers:
        raise ValueError(f"expected whole numbers >= {minimum}; Received: {value!r}")
    return sorted(numbers)


def _at_most(number: int, item: Any, useful: str) -> None:
    """Refuse a value above :data:`MAX_RULE_VALUE`."""
    if number > MAX_RULE_VALUE:
        raise ValueError(
            f"expected values <= {MAX_RULE_VALUE:,} ({useful}); Received: {item!r}"
        )


def boolean(value: Any) -> bool:
    """True or False (also 1/0, yes/no, true/false as text)."""
    if isinstance(value, bool):
        return value
    answer = {"1": True, "yes": True, "true": True, "0": False, "no": False}
    answer["false"] = False
    if str(value).strip().lower() not in answer:
        raise ValueError(f"expected True or False; Received: {value!r}")
    return answer[str(value).strip().lower()]


def choice(*options: str) -> Callable[[Any], str]:
    """Return a validator that accepts one of ``options`` (as text)."""

    def convert(value: Any) -> str:
        if str(value) not in options:
            raise ValueError(
                f"expected one of {', '.join(options)}; Received: {value!r}"
            )
        return str(value)

    return convert


def image_size(value: Any) -> list[int]:
    """An image size: ``H`` or ``H,W`` (whole numbers >= 1), as [height, width]."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    if len(items) not in (1, 2):
        raise ValueError(f"expected H or H,W; Received: {value!r}")
    size = [whole_number(item, 1) for item in items]
    return size * 2 if len(size) == 1 else size


def numbers(value: Any) -> list[float]:
    """One number or several: a list, or text separated by commas."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    result = [_number(item, float, "numbers, e.g. 0.5 or 0.485,0.456,0.406")
              for item in items]  # fmt: skip
    if not result or not all(math.isfinite(number) for number in result):
        raise ValueError(f"expected finite numbers; Received: {value!r}")
    return result


def top_classes(value: Any) -> int | str:
    """A ranking length: a whole number >= 1, or ``all``."""
    if str(value).strip().lower() == "all":
        return "all"
    return whole_number(value, 1)


def names(value: Any) -> list[str]:
    """A list of names: a list, or text separated by commas."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


# ------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Param:
    """One input: its help text, its validator, how it looks on the command line.

    Attributes:
        help: what the value is (argparse help; ``%%`` for a literal %).
        convert: the validator.
        metavar: the value's placeholder in ``--help``.
        option: the flag, when not ``--<name with dashes>``.
        switch: an on/off flag: ``--name`` / ``--no-name``.
    """

    help: str
    convert: Callable[[Any], Any] = text
    metavar: str | None = None
    option: str | None = None
    switch: bool = False

    def flag(self, name: str) -> str:
        """Return the command-line option of the input ``name``."""
        return self.option or "--" + name.replace("_", "-")


PARAMS: dict[str, Param] = {
    "network": Param(
        "default (the embedded Fashion-MNIST CNN), a keras.applications name (VGG16, "
        "ResNet50, ...), the path of a saved .keras/.h5 model, or a PyTorch model: "
        "torchvision:NAME, timm:NAME, FILE.py:FACTORY or package.module:FACTORY (a "
        "function returning an nn.Module)",
        metavar="NAME_OR_FILE",
    ),
    "weights": Param(
        "for an application (Keras, torchvision, timm): imagenet, none (random) or "
        "a weights file (PyTorch: a state dict); for a model file or a PyTorch "
        "FACTORY: a weights file to load on top (None: its own)",
    ),
    "images_dir": Param(
        "folder with one sub-folder of images per class (None with --network "
        "default: the default's images)",
        path,
        "DIR",
    ),
    "save_dir": Param("folder the run's files are written to", path, "DIR"),
    "split": Param("fraction of each class's images kept for testing", test_fraction),
    "seed_rn": Param("seed of the train/test split", nonnegative_int, "N"),
    "time_delta": Param("hours from UTC for the run id (e.g. 1 for CET)", hours, "H"),
    "batch_size": Param("images per batch", positive_int, "N"),
    "preprocess": Param(
        "auto (the application's own preprocess_input; torchvision's or timm's "
        "own resize, crop and mean/std; none for a model file or FACTORY), none "
        "(raw 0..255 pixels), mean-std (with --mean and --std: pixels / 255, minus "
        "mean, divided by std), caffe, tf, torch, or an application name (Keras)",
    ),
    "interpolation": Param(
        "resampling when images are resized: auto (the model's own for torchvision "
        "and timm preprocessing, else nearest), nearest, bilinear, bicubic, "
        "hamming, box, lanczos",
    ),
    "image_size": Param(
        "read images at H or H,W pixels (None: the model's input size; for "
        "free dimensions, torchvision's or timm's own size, else 224)",
        image_size,
        "H[,W]",
    ),
    "mean": Param(
        "with --preprocess mean-std: the mean subtracted from pixels / 255, one "
        "value or one per channel, e.g. 0.485,0.456,0.406",
        numbers,
        "M",
    ),
    "std": Param(
        "with --preprocess mean-std: the standard deviation divided by, one value "
        "or one per channel, e.g. 0.229,0.224,0.225",
        numbers,
        "S",
    ),
    "class_names": Param(
        "text file with the name of each model output, one per line, in output order",
        path,
        "FILE",
    ),
    "layers": Param(
        "which layers count: conv (every 2-D convolution), name ('conv' in the "
        "layer name), a comma list of layer names, or a regular expression",
    ),
    "exemplars": Param(
        "per filter, keep the N train images with the largest value of the filter "
        "(its exemplars, best first; 0: none)",
        nonnegative_int,
        "N",
    ),
    "activations_file": Param("step 1's -vars.pkl (QFA)", path, "FILE"),
    "filtags_file": Param("step 2's -vars.pkl (TF)", path, "FILE"),
    "eval_file": Param("step 3's -vars.pkl (E)", path, "FILE"),
    "k_q": Param(
        "k and q values, whole numbers >= 0: a list and/or ranges, e.g. 1,5,25 or "
        "0-25 (k: the k most active filters; q: the q %% most active; 0: the "
        "filters above the mean)",
        lambda value: whole_numbers(
            value,
            useful="k is useful up to the largest layer's filter count, e.g. 512 "
            "for VGG16, 2048 for ResNet50; q up to 100",
        ),
        "LIST",
    ),
    "m": Param(
        "m values, whole numbers >= 1: a hit is the network's class among the "
        "first m classes of the ranking",
        lambda value: whole_numbers(
            value, minimum=1, useful="m is useful up to the number of classes"
        ),
        "LIST",
    ),
    "top": Param(
        "keep the first N classes of each ranking (all: whole rankings, as the "
        "original FilTag; the same when there are N classes or fewer)",
        top_classes,
        "N",
    ),
    "classes": Param("class names to evaluate, comma separated (None: all)", names),
    "class_name": Param("the class whose test images are explained"),
    "image": Param("an image file to explain instead of a class", path, "FILE"),
    "html": Param("also write the explanation as an HTML page", boolean, switch=True),
    "cards_page": Param(
        "with --html: a tag page of filtag vis (filTagsvis.py) whose filter cards "
        "the page links each active filter to (None: no links)",
        path,
        "FILE",
    ),
    "vars_file": Param("a step 2, 3 or 4 -vars.pkl", path, "FILE"),
    "mapping": Param(
        "two-column file 'label, name' (comma or tab separated); None: the ImageNet "
        "wnids shipped with filtag",
        path,
        "FILE",
    ),
    "kind": Param(
        "the rule: k (k most active filters) or q (q %% most active)", choice("k", "q")
    ),
    "value": Param("the k or q value", nonnegative_int, "N"),
    "view_layers": Param(
        "layers to show: comma list of layer names or indices (None: the last 4)",
        names,
        option="--layers",
    ),
    "check_layers": Param(
        "layers whose tagged filters are switched off: last (the last selected "
        "layer), all (every selected layer at once) or a comma list of layer names",
        option="--layers",
    ),
    "random_draws": Param(
        "random filter sets per class to compare the tagged ones with (and "
        "shuffles of the tags' class labels for the hit-rate baseline)",
        positive_int,
        "N",
    ),
    "others_per_class": Param(
        "drop_others counts at most the first N test images of each other class "
        "(None: all; its cost grows with classes x test images)",
        positive_int,
        "N",
    ),
    "hitrates_file": Param("step 4's -vars.pkl (HR)", path, "FILE"),
    "export": Param(
        "also write the results as CSV/JSON beside the pickles (for ImageNet, "
        "hundreds of MB and tens of seconds)",
        boolean,
        switch=True,
    ),
    "mixed_precision": Param(
        "compute the network in float16 (mixed_float16 policy; for GPUs), "
        "statistics stay float32/float64",
        boolean,
        switch=True,
    ),
    "xla": Param(
        "XLA compiles: on, the whole forward pass; off, only each layer's "
        "reductions (the network runs as a TensorFlow graph); auto, off on a CPU "
        "and for networks with depthwise or grouped convolutions (see "
        "filtag.activations.choose_xla); results differ only by float32 rounding",
        choice("auto", "on", "off"),
        "auto|on|off",
    ),
    "resume": Param(
        "continue an interrupted run: its run id (e.g. 2026-11-21-2130) or the "
        "path of one of its files",
        metavar="RUN_ID_OR_FILE",
    ),
    "engine": Param(
        "where the forward passes run: local (this process) or ray (a pool of Ray "
        "actors, on this machine or a cluster; pip install 'filtag[ray]'); the "
        "results are the same",
        choice("local", "ray"),
        "local|ray",
    ),
    "ray_address": Param(
        "with --engine ray: the Ray cluster to join (auto: the one this machine "
        "belongs to, or an address such as ray://head:10001); None: a local Ray "
        "that starts and stops with the run",
        metavar="auto|ADDRESS",
    ),
    "ray_actors": Param(
        "with --engine ray: actors holding the network (None: one per GPU, else "
        "one per 2 CPUs of the cluster)",
        positive_int,
        "N",
    ),
    "ray_gpus_per_actor": Param(
        "with --engine ray: GPUs each actor holds, e.g. 1 or 0.5 (None: 1 when the "
        "cluster has GPUs, else 0)",
        nonnegative_float,
        "G",
    ),
    "classes_img": Param(
        "class names whose images count, comma separated (None: all evaluated)", names
    ),
}


def check(name: str, value: Any) -> Any:
    """Return ``value`` validated as the input ``name`` (None stays None).

    Raises:
        FiltagError: the value is not valid; the message names the input.
    """
    if value is None:
        return None
    try:
        return PARAMS[name].convert(value)
    except ValueError as exc:
        raise FiltagError(f"{name}: {exc}") from None


def checked(values: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    """Return ``values`` ({input name: value}) each validated by :func:`check`.

    Raises:
        FiltagError: a value is invalid, or a ``required`` one is None.
    """
    for name in required:
        if values.get(name) is None:
            raise FiltagError(f"{name} is required; pass it.")
    return {name: check(name, value) for name, value in values.items()}
