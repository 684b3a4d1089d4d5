"""The command line shared by the step scripts: flags, validation, logging, exit codes.

A script keeps its inputs as plain variables at the top and passes them to
:func:`parse` as defaults; flags given on the command line win. Every value,
default or flag, goes through the same validator, so an edited Inputs block is
checked exactly like a flag.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from filtag.artifacts import Run
from filtag.errors import FiltagError

logger = logging.getLogger("filtag")

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


# ---------------------------------------------------------------------- validators


def _number(value: Any, kind: type, what: str) -> Any:
    """Convert ``value`` to ``kind`` (int or float), refusing bools and fractions."""
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected {what}; Received: {value!r}")
    try:
        number = kind(value) if kind is float else int(str(value).strip())
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected {what}; Received: {value!r}"
        ) from None
    return number


def whole_number(value: Any, minimum: int = 0) -> int:
    """A whole number >= ``minimum``."""
    what = f"a whole number >= {minimum}"
    number = _number(value, int, what)
    if number < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}; Received: {value!r}")
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
        raise argparse.ArgumentTypeError(
            f"expected hours in [-24, 24]; Received: {value!r}"
        )
    return number


def test_fraction(value: Any) -> float:
    """The fraction of each class kept for testing: 0 < split < 1."""
    number = _number(value, float, "a fraction between 0 and 1, e.g. 0.2")
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction between 0 and 1 (exclusive); Received: {value!r}"
        )
    return number


def path(value: Any) -> Path:
    """A file or folder path (``~`` and ``~user`` expanded)."""
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise argparse.ArgumentTypeError(f"expected a path; Received: {value!r}")
    try:
        return Path(value).expanduser()
    except (RuntimeError, ValueError):  # an unknown ~user, a NUL byte
        raise argparse.ArgumentTypeError(
            f"expected a path whose ~user exists; Received: {value!r}"
        ) from None


def text(value: Any) -> str:
    """A non-empty string."""
    if not str(value).strip():
        raise argparse.ArgumentTypeError("expected a non-empty value")
    return str(value).strip()


def whole_numbers(value: Any, minimum: int = 0) -> list[int]:
    """Whole numbers >= ``minimum`` as a sorted list without repeats.

    Accepts a list of numbers, or text such as ``"1,5,25"``, ``"0-100"`` or
    ``"0-10,25,50"`` (ranges include both ends).
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
                raise argparse.ArgumentTypeError(f"range {item!r} runs backwards")
            numbers.update(range(low, high + 1))
        elif item != "":
            number = _number(item, int, f"whole numbers >= {minimum}")
            if number < minimum:
                raise argparse.ArgumentTypeError(
                    f"expected whole numbers >= {minimum}; Received: {item!r}"
                )
            numbers.add(number)
    if not numbers:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers >= {minimum}; Received: {value!r}"
        )
    return sorted(numbers)


def boolean(value: Any) -> bool:
    """True or False (also 1/0, yes/no, true/false as text)."""
    if isinstance(value, bool):
        return value
    answer = {"1": True, "yes": True, "true": True, "0": False, "no": False}
    answer["false"] = False
    if str(value).strip().lower() not in answer:
        raise argparse.ArgumentTypeError(f"expected True or False; Received: {value!r}")
    return answer[str(value).strip().lower()]


def rule_kind(value: Any) -> str:
    """A rule kind: k or q."""
    if str(value) not in ("k", "q"):
        raise argparse.ArgumentTypeError(f"expected k or q; Received: {value!r}")
    return str(value)


def names(value: Any) -> list[str]:
    """A list of names: a list, or text separated by commas."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


# -------------------------------------------------------------------------- flags


@dataclass(frozen=True)
class Flag:
    """One command-line flag: its help text and the validator of its value."""

    help: str
    convert: Callable[[Any], Any] = text
    metavar: str | None = None
    option: str | None = None  # the flag, when not --<name with dashes>
    switch: bool = False  # an on/off flag: --name / --no-name

    def flag(self, name: str) -> str:
        """Return the command-line option of the value ``name``."""
        return self.option or "--" + name.replace("_", "-")


FLAGS: dict[str, Flag] = {
    "network": Flag(
        "a keras.applications name (VGG16, ResNet50, InceptionV3, ...) or the path of "
        "a saved .keras/.h5 model",
        metavar="NAME_OR_FILE",
    ),
    "weights": Flag(
        "for an application: imagenet, none (random) or a weights file; for a model "
        "file: a weights file to load on top (None: the file's own)",
    ),
    "images_dir": Flag("folder with one sub-folder of images per class", path, "DIR"),
    "save_dir": Flag("folder the run's files are written to", path, "DIR"),
    "split": Flag("fraction of each class's images kept for testing", test_fraction),
    "seed_rn": Flag("seed of the train/test split", nonnegative_int, "N"),
    "time_delta": Flag("hours from UTC for the run id (e.g. 1 for CET)", hours, "H"),
    "batch_size": Flag("images per batch", positive_int, "N"),
    "preprocess": Flag(
        "auto (the application's own preprocess_input; none for a model file), "
        "none (raw 0..255 pixels), caffe, tf, torch, or an application name",
    ),
    "interpolation": Flag(
        "resampling when images are resized: nearest, bilinear, bicubic, hamming, "
        "box, lanczos",
    ),
    "class_names": Flag(
        "text file with the name of each model output, one per line, in output order",
        path,
        "FILE",
    ),
    "layers": Flag(
        "which layers count: conv (every 2-D convolution), name ('conv' in the "
        "layer name), a comma list of layer names, or a regular expression",
    ),
    "activations_file": Flag("step 1's -vars.pkl (QFA)", path, "FILE"),
    "filtags_file": Flag("step 2's -vars.pkl (TF)", path, "FILE"),
    "eval_file": Flag("step 3's -vars.pkl (E)", path, "FILE"),
    "k_q": Flag(
        "k and q values, whole numbers >= 0: a list and/or ranges, e.g. 1,5,25 or "
        "0-25 (k: the k most active filters; q: the q %% most active; 0: the "
        "filters above the mean)",
        whole_numbers,
        "LIST",
    ),
    "m": Flag(
        "m values, whole numbers >= 1: a hit is the network's class among the "
        "first m classes of the ranking",
        lambda value: whole_numbers(value, minimum=1),
        "LIST",
    ),
    "classes": Flag("class names to evaluate, comma separated (None: all)", names),
    "class_name": Flag("the class whose test images are explained"),
    "image": Flag("an image file to explain instead of a class", path, "FILE"),
    "html": Flag("also write the explanation as an HTML page", boolean, switch=True),
    "vars_file": Flag("a step 2, 3 or 4 -vars.pkl", path, "FILE"),
    "mapping": Flag(
        "two-column file 'label, name' (comma or tab separated), e.g. "
        "decoding_wnids.txt",
        path,
        "FILE",
    ),
    "kind": Flag(
        "the rule: k (k most active filters) or q (q %% most active)", rule_kind
    ),
    "value": Flag("the k or q value", nonnegative_int, "N"),
    "view_layers": Flag(
        "layers to show: comma list of layer names or indices (None: the last 4)",
        names,
        option="--layers",
    ),
    "hitrates_file": Flag("step 4's -vars.pkl (HR)", path, "FILE"),
    "export": Flag(
        "also write the results as CSV/JSON beside the pickles (for ImageNet, "
        "hundreds of MB and tens of seconds)",
        boolean,
        switch=True,
    ),
    "mixed_precision": Flag(
        "compute the network in float16 (mixed_float16 policy; for GPUs), "
        "statistics stay float32/float64",
        boolean,
        switch=True,
    ),
    "resume": Flag(
        "continue an interrupted run: its run id (e.g. 2026-11-21-2130) or the "
        "path of one of its files",
        metavar="RUN_ID_OR_FILE",
    ),
    "classes_img": Flag(
        "class names whose images count, comma separated (None: all evaluated)", names
    ),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: the problem and a hint."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse(
    doc: str | None,
    argv: Sequence[str] | None,
    required: Sequence[str] = (),
    **defaults: Any,
) -> argparse.Namespace:
    """Parse the command line of a step script.

    Args:
        doc: the script's docstring, shown by ``--help``.
        argv: the arguments (None: ``sys.argv[1:]``).
        required: flags whose value must not be None (an Inputs value or a flag).
        **defaults: one keyword per flag of :data:`FLAGS` that the script takes,
            with the script's Inputs value as default.

    Returns:
        The validated values, one attribute per keyword.
    """
    parser = _Parser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, default in defaults.items():
        flag = FLAGS[name]
        options = {"action": argparse.BooleanOptionalAction} if flag.switch else {}
        parser.add_argument(
            flag.flag(name),
            dest=name,
            default=default,
            metavar=None if flag.switch else flag.metavar,
            help=f"{flag.help} (default: %(default)s)",
            **options,
        )
    args = parser.parse_args(argv)
    for name in defaults:
        value = getattr(args, name)
        if value is None:
            if name in required:
                parser.error(
                    f"argument {FLAGS[name].flag(name)} is required; pass it or set "
                    f"{name.upper()} in the script's Inputs block"
                )
            continue
        try:
            setattr(args, name, FLAGS[name].convert(value))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument {FLAGS[name].flag(name)}: {exc}")
    setup_logging()
    return args


# ------------------------------------------------------------------------ logging


class _Console(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a message comes."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging() -> None:
    """Send filtag's INFO messages to the console (stderr), once."""
    if not any(isinstance(h, _Console) for h in logger.handlers):
        handler = _Console()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler.setLevel(logging.INFO)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


@contextlib.contextmanager
def run_logs(run: Run) -> Iterator[None]:
    """Log everything to the run's ``-info.log``, warnings to ``-warnings.log``."""
    handlers = []
    for suffix, level in (
        ("info.log", logging.DEBUG),
        ("warnings.log", logging.WARNING),
    ):
        handler = logging.FileHandler(
            run.path(suffix), encoding="utf-8", errors="backslashreplace"
        )
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        handlers.append(handler)
    try:
        yield
    except FiltagError as exc:
        logger.error("%s", exc)
        exc.logged = True  # type: ignore[attr-defined]
        raise
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


def run(step: Callable[[argparse.Namespace], Path], args: argparse.Namespace) -> int:
    """Run a step; print the path it wrote as the last stdout line.

    Returns:
        The exit code: 0, 2 for bad input (one log line, no traceback), 130
        when interrupted.
    """
    try:
        written = step(args)
    except FiltagError as exc:
        if not getattr(exc, "logged", False):
            logger.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        logger.error(
            "interrupted; nothing was half-written (steps 1 and 3 continue from "
            "their last finished class with --resume RUN_ID)"
        )
        return 130
    print(written)
    return 0
