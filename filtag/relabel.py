"""labdecode.py's work: a step 2, 3 or 4 file set with class labels renamed.

The pure renaming rules are in :mod:`filtag.labels`; this module loads the
file (and step 3's class files), renames, and writes the new file set.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from filtag import artifacts, export, labels, params, schema
from filtag.artifacts import (
    CLASS_FILE,
    STEP_TAGS,
    Run,
    load_vars,
    reserve_run,
    write_vars,
)
from filtag.errors import ArtifactError, FiltagError
from filtag.logs import plain, run_logs
from filtag.provenance import now_utc
from filtag.results import RunResult, result_of

logger = logging.getLogger(__name__)

#: The variables a decodable file needs, by its step tag.
REQUIRED = {
    "TF": ("filTags_k", "filTags_q"),
    "E": ("eval_files", "k_q", "classes"),
    "HR": ("hit_k", "hit_q", "hit_k_ll", "hit_q_ll"),
}

#: Added to the network part of the decoded run's file names.
NETWORK_SUFFIX = "-names"

#: How many labels a warning names.
EXAMPLES = 5


def step_of(variables: Mapping[str, Any], path: Path) -> str:
    """Return the step tag (TF, E or HR) of a loaded file.

    A file without ``meta`` (of the original FilTag scripts) is recognised by
    its variables.

    Raises:
        ArtifactError: a step-1 file, a foreign file, or one lacking variables.
    """
    meta = variables.get("meta")
    if meta is None:
        found = [tag for tag, names in REQUIRED.items() if set(names) <= set(variables)]
        tag = found[0] if found else None
    else:
        step = meta.get("step") if isinstance(meta, dict) else None
        tag = step if isinstance(step, str) else None
    if tag not in REQUIRED:
        what = f"a {STEP_TAGS[tag]} file" if tag in STEP_TAGS else "not a filtag file"
        raise ArtifactError(
            f"--vars-file {path} is {what}; pass a -vars.pkl of step 2, 3 or 4 "
            "(TF, E or HR)."
        )
    missing = [name for name in REQUIRED[tag] if name not in variables]
    if missing:
        raise ArtifactError(
            f"--vars-file {path} lacks {', '.join(missing)}; pass the complete "
            f"-vars.pkl that {STEP_TAGS[tag]} wrote."
        )
    return tag


@contextlib.contextmanager
def _content_of(path: Path) -> Iterator[None]:
    """Report unexpected content of the file ``path`` as one ArtifactError."""
    try:
        yield
    except ArtifactError:
        raise  # names the file already
    except FiltagError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise ArtifactError(
            f"{path} does not hold the variables of a filtag step file "
            f"({type(exc).__name__}: {exc}); pass a -vars.pkl written by filtag."
        ) from None


def network_of(variables: Mapping[str, Any], path: Path, tag: str) -> str:
    """Return the decoded run's network part: the input's network + ``-names``."""
    network = artifacts.network_of(variables.get("meta"), path, tag)
    return network if network.endswith(NETWORK_SUFFIX) else network + NETWORK_SUFFIX


def log_decoding(
    table: Mapping[str, str],
    unknown: set[str],
    mapping: Mapping[str, str],
    source: Path,
) -> None:
    """Log how many labels were decoded; warn of unknown and of shared names."""
    changed = sum(label != name for label, name in table.items())
    logger.info("%d of %d labels decoded by %s", changed, len(table), source)
    if unknown:
        examples = [repr(label) for label in table if label in unknown]
        logger.warning(
            "%d of %d labels are not in %s and stay as they are, e.g. %s",
            len(unknown),
            len(table),
            source,
            ", ".join(examples[:EXAMPLES]),
        )
    shared = [
        repr(name) for label, name in table.items() if name != mapping.get(label, label)
    ]
    if shared:
        logger.warning(
            "%d labels share a name in %s; each is named '<name> (<label>)': %s",
            len(shared),
            source,
            ", ".join(shared[:EXAMPLES]),
        )


def decoding_table(
    variables: Mapping[str, Any],
    path: Path,
    mapping: Mapping[str, str],
    source: Path,
) -> tuple[dict[str, str], set[str]]:
    """Return :func:`filtag.labels.decode_names` of every label of a loaded file.

    Args:
        variables: the file's variables.
        path: the file, for errors.
        mapping: label -> name, read from ``source``.
        source: the mapping file, for errors.

    Raises:
        ArtifactError: the variables are not those of a step file.
        FiltagError: two labels would share a name.
    """
    with _content_of(path):
        found = labels.file_labels(variables)
    try:
        return labels.decode_names(found, mapping)
    except FiltagError as exc:
        raise FiltagError(f"--mapping {source}: {exc}") from None


def decode_class_files(
    index: Path, eval_files: Sequence[str], table: Mapping[str, str], run: Run
) -> list[str]:
    """Decode step 3's per-class files, one at a time, into ``run``.

    Args:
        index: the input's index ``-vars.pkl``; the class files lie beside it.
        eval_files: their names, ``<prefix>-varsX.pkl`` (X = class index).
        table: label -> name for every label of the run.
        run: the new run; class X is written as ``run.path(f"vars{X}.pkl")``.

    Returns:
        The names of the files written, in the order of ``eval_files``.
    """
    written = []
    for name in eval_files:
        path = index.parent / name
        match = re.search(r"-vars(\d+)\.pkl$", name)
        if not match:
            raise ArtifactError(
                f"--vars-file {index} names {name!r} in eval_files; expected "
                "<prefix>-varsX.pkl; pass a step-3 index written by filtag."
            )
        with _content_of(path):
            variables = labels.decode_step_vars(load_vars(path, CLASS_FILE), table)
            (class_name,) = variables["class_images_dict"]
        new_path = run.path(f"vars{match.group(1)}.pkl")
        header = f"filtag step 3, class {class_name}"
        write_vars(new_path, variables, header, info=False)
        written.append(new_path.name)
    return written


def decode(
    vars_file: str | Path | None = None,
    *,
    mapping: str | Path | None = None,
    save_dir: str | Path = "results",
    time_delta: float = 0,
) -> RunResult:
    """Write a copy of a step 2, 3 or 4 file (and step 3's class files) with names.

    Args:
        vars_file: the ``-vars.pkl`` to decode (a step-3 index with its class
            files beside it).
        mapping: a ``label, name`` file (None: :data:`filtag.labels.WNIDS_FILE`).
        save_dir, time_delta: see :data:`filtag.params.PARAMS`.

    Returns:
        The new run; ``path`` is its ``-vars.pkl``. A run that fails leaves no
        file but its logs.
    """
    args = params.checked(
        {"vars_file": vars_file, "mapping": mapping, "save_dir": save_dir,
         "time_delta": time_delta},
        required=["vars_file"],
    )  # fmt: skip
    path = args["vars_file"]
    variables = load_vars(path)
    tag = step_of(variables, path)
    schema.validate(variables, tag, path)
    source = args["mapping"] or labels.WNIDS_FILE
    table, unknown = decoding_table(
        variables, path, labels.read_mapping(source), source
    )
    with _content_of(path):
        decoded = labels.decode_step_vars(variables, table)
    network = network_of(variables, path, tag)
    run = reserve_run(args["save_dir"], tag, network, args["time_delta"])
    with run_logs(run), _all_or_nothing(run):
        logger.debug("labdecode run %s: %s", run.prefix, plain(args))
        log_decoding(table, unknown, labels.read_mapping(source), source)
        meta = dict(decoded.get("meta") or {"step": tag})
        meta.update(
            run_id=run.run_id,
            created_utc=now_utc(),
            network=network,
            decoded_from=str(path.resolve()),
            mapping_file=str(source),
            label_mapping=labels.compose_label_mapping(
                meta.get("label_mapping") or {}, table
            ),
            unknown_labels=sorted(unknown),
        )
        decoded["meta"] = meta
        if tag == "E":
            decoded["eval_files"] = decode_class_files(
                path, variables["eval_files"], table, run
            )
        export.write_exports(run.vars_path, decoded)
        header = (
            f"filtag {STEP_TAGS[tag]} file with decoded labels ({source.name}), "
            f"run {run.prefix}"
        )
        write_vars(run.vars_path, decoded, header)
        logger.info("decoded %d labels -> %s", len(table), run.vars_path.name)
    return result_of(RunResult, run, run.vars_path)


@contextlib.contextmanager
def _all_or_nothing(run: Run) -> Iterator[None]:
    """Remove the run's files but its logs when the body fails."""
    try:
        yield
    except BaseException:
        for path in run.save_dir.glob(glob.escape(run.prefix) + "-*"):
            if not path.name.endswith(".log"):
                path.unlink(missing_ok=True)
        raise
