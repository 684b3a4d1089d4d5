"""The command-line edge: flags from :mod:`filtag.params`, console logging, exit codes.

A script keeps its inputs as plain variables at the top and passes them to
:func:`parse` as defaults; flags given on the command line win. Every value,
default or flag, goes through the same validator, so an edited Inputs block is
checked exactly like a flag. :func:`run` calls the step and turns its errors
into one line and an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from filtag.errors import FiltagError
from filtag.params import PARAMS
from filtag.text import printable

logger = logging.getLogger("filtag")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: the problem and a hint."""

    def error(self, message: str) -> NoReturn:
        # an argument such as "\n" must not break the one line
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")
        self.exit(2, f"{self.prog}: error: {one_line} (see --help)\n")


def add_arguments(
    parser: argparse.ArgumentParser, defaults: dict[str, Any]
) -> argparse.ArgumentParser:
    """Add a flag for each input of ``defaults`` ({name: default}) and ``-v``."""
    for name, default in defaults.items():
        param = PARAMS[name]
        options = {"action": argparse.BooleanOptionalAction} if param.switch else {}
        parser.add_argument(
            param.flag(name),
            dest=name,
            default=default,
            metavar=None if param.switch else param.metavar,
            help=f"{param.help} (default: %(default)s)",
            **options,
        )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print details (and TensorFlow's)"
    )
    return parser


def new_parser(doc: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """Return an empty parser whose help shows ``doc`` as written."""
    return _Parser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def parse(
    doc: str | None,
    argv: Sequence[str] | None,
    required: Sequence[str] = (),
    prog: str | None = None,
    **defaults: Any,
) -> argparse.Namespace:
    """Parse a command line.

    Args:
        doc: the command's description, shown by ``--help``.
        argv: the arguments (None: ``sys.argv[1:]``).
        required: inputs whose value must not be None (an Inputs value or a flag).
        prog: the program name in messages (None: the script's).
        **defaults: one keyword per input of :data:`filtag.params.PARAMS`,
            with the script's Inputs value as default.

    Returns:
        The validated values, one attribute per keyword, and ``verbose``.
    """
    parser = add_arguments(new_parser(doc, prog), defaults)
    return validate(parser, parser.parse_args(argv), defaults, required)


def validate(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    names: Sequence[str],
    required: Sequence[str] = (),
) -> argparse.Namespace:
    """Validate the inputs ``names`` of ``args`` in place; exit 2 if one is bad."""
    for name in names:
        value = getattr(args, name)
        if value is None:
            if name in required:
                parser.error(
                    f"argument {PARAMS[name].flag(name)} is required; pass it or set "
                    f"{name.upper()} in the script's Inputs block"
                )
            continue
        try:
            setattr(args, name, PARAMS[name].convert(value))
        except ValueError as exc:
            parser.error(f"argument {PARAMS[name].flag(name)}: {exc}")
    return args


# ------------------------------------------------------------------- the console


class _Console(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a message comes."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Once(logging.Filter):
    """Let each warning through once: a repeat of one shown before is dropped.

    The run's ``-warnings.log`` files still get every warning.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def setup_logging(verbose: bool = False) -> None:
    """Show filtag's messages on the console (stderr), once.

    INFO and above, DEBUG too when ``verbose``; each warning once from here on
    (a command's steps may repeat one); the records do not propagate to the
    root logger, so nothing prints them twice.
    """
    handler = next((h for h in logger.handlers if isinstance(h, _Console)), None)
    if handler is None:
        handler = _Console()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
    handler.filters = [_Once()]
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


#: TensorFlow's C++ log lines (glog format) and absl's notice before them.
_TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\])"
)


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Catch what is written to file descriptor 2 (C++ libraries too) in the body.

    Yields a list that holds the captured lines once the body is done.
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode("utf-8", "replace").splitlines(keepends=True)


def quiet_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow without its start-up lines on the terminal.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless set already) and imports TensorFlow
    and its devices with stderr caught; the lines TensorFlow's C++ core writes
    before its log level applies (oneDNN, CUDA driver notices) are dropped and
    anything else is written on. Call it before anything imports TensorFlow,
    as the command line does; with ``verbose``, nothing is hidden.
    """
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_captured() as lines:
        import tensorflow as tf

        tf.config.list_logical_devices()
    tf.get_logger().setLevel(logging.ERROR)  # e.g. retracing notices
    sys.stderr.write("".join(line for line in lines if not _TF_NOISE.match(line)))


def run(
    step: Callable[..., Any],
    args: argparse.Namespace,
    show: Callable[[Any], None] | None = None,
    tensorflow: bool = True,
) -> int:
    """Run a step with the inputs of ``args``; print the path it wrote last.

    Args:
        step: a function of the API (keyword inputs, returns a result with a
            ``path``) taking the inputs of ``args``.
        args: the parsed command line (``verbose`` is the command line's own).
        show: prints the asked-for output of the result, before its path.
        tensorflow: import TensorFlow quietly first (the step runs a network).

    Returns:
        The exit code: 0; 2 for bad input or an operating-system error (one
        log line, no traceback); 130 when interrupted.
    """
    inputs = {name: value for name, value in vars(args).items() if name != "verbose"}
    setup_logging(args.verbose)
    try:
        if tensorflow:
            quiet_tensorflow(args.verbose)
        result = step(**inputs)
    except FiltagError as exc:
        if not getattr(exc, "logged", False):
            logger.error("%s", exc)
        return 2
    except OSError as exc:
        logger.error("%s", describe_os_error(exc))
        return 2
    except KeyboardInterrupt as exc:
        logger.error(
            "interrupted; %s", exc.args[0] if exc.args else "nothing half-written"
        )
        return 130
    if show is not None:
        show(result)
    print(printable(str(result.path)))
    return 0


def describe_os_error(exc: OSError) -> str:
    """Return an operating-system error as one line: the path and the cause."""
    where = exc.filename or "a file"
    cause = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {cause}; free space or fix the permissions, then run again."
