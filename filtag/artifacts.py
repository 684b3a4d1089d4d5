"""Every file that filtag writes or reads: names, formats, safe loading.

A run writes, in its ``save_dir``, files that share one prefix
``<run id>-<tag>-<network>``, e.g. ``2026-11-21-2130-QFA-VGG16``:

- ``<prefix>-vars.pkl``: several pickles in a row, one per variable;
- ``<prefix>-vars-names.pkl``: ONE pickled list of the variable names, in order;
- ``<prefix>-vars-info.txt``: what each variable is and how to load them;
- ``<prefix>-info.log`` and ``<prefix>-warnings.log``: the run's logs.

Files are written to a temporary name and renamed into place, so a reader never
sees half a file, and a run never reuses the prefix of an earlier run.

Files are read by :mod:`filtag.safepickle`: its unpickler refuses every global
except builtin containers and numeric numpy arrays, scalars and dtypes, so that
loading never runs code (Python docs, ``pickle``, "Restricting Globals"), and
its checks before and after bound what a file can make filtag allocate or do
to a small multiple of the file's size. The steps then check each file against
the schema of its kind (:mod:`filtag.schema`) before they use it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from filtag import schema
from filtag.errors import ArtifactError, UnsafePickleError
from filtag.safepickle import ALLOWED_GLOBALS, PickleRefused, load_one, plain_dtype
from filtag.safepickle import safe_load as safe_load
from filtag.safepickle import safe_loads as safe_loads
from filtag.schema import CLASS_FILE as CLASS_FILE
from filtag.schema import STEP_TAGS as STEP_TAGS
from filtag.text import printable

logger = logging.getLogger(__name__)

PICKLE_PROTOCOL = 4

_UMASK = os.umask(0)
os.umask(_UMASK)

#: The tags in the file names of the original FilTag scripts, and filtag's.
ORIGINAL_TAGS = {"CA": "QFA", "LF": "TF"}

#: The original step 2's variables, and filtag's names of them.
ORIGINAL_NAMES = {"labels_filters": "filTags_k", "labels_filters_per": "filTags_q"}

#: What each variable holds, for the ``-vars-info.txt`` files. ``<i>`` stands
#: for a class index, ``<X>`` for a class index in step 3's per-class files.
VARIABLE_DOCS = {
    "labels_id": "dict {class index: class name}; classes are the sub-folders of "
    "images_dir in sorted() order.",
    "train_filenames": "list of str: the train images, paths relative to images_dir "
    "with '/' separators, by class then path.",
    "test_filenames": "list of str: the test images, same form as train_filenames.",
    "filter_act_<i>": "list with one float64 array per selected layer, shape "
    "(filters in layer,): filter_act_<i>[a][b] is the mean over the train images "
    "of class <i> of the [0, 1]-scaled mean activation of filter b of layer a "
    "(NaN when the class has no readable train image).",
    "exemplar_images": "list, per selected layer, per filter, of the list of its "
    "exemplars: the N train images (N = meta['exemplars']) with the largest value "
    "of the filter (the image's [0, 1]-scaled mean activation of the filter, the "
    "number filter_act_<i> averages), best first, paths as in train_filenames; "
    "fewer than N when fewer train images were read, none when N = 0.",
    "exemplar_values": "list, per selected layer, of a float32 array of shape "
    "(filters in layer, n), n = min(N, train images read): "
    "exemplar_values[a][b, j] is the value of exemplar_images[a][b][j], "
    "descending along j; equal values keep the earlier image of train_filenames.",
    "filTags_k": "dict {k: per layer, per filter, the list of class names the "
    "filter is tagged with}: filTags_k[k][layer][filter], class names in class "
    "index order; k = 0: tagged where above the layer's mean.",
    "filTags_q": "dict {q: ...} as filTags_k, with the q % most activated filters "
    "(p = max(1, floor(q / 100 * filters + 0.5))).",
    "y": "list, per test image, of the network's top-5 (class name, probability) "
    "pairs, best first.",
    "y_k": "dict {k: list, per test image, of the ranking: (class name, tag count) "
    "pairs with count > 0, by count descending, ties by class index}, all layers.",
    "y_k_ll": "as y_k, counting the tags of the last selected layer only.",
    "y_q": "as y_k, for the q values.",
    "y_q_ll": "as y_q, last selected layer only.",
    "class_images_dict": "dict {class name: [test image paths relative to "
    "images_dir]}, in the order of y, y_k, ...",
    "eval_files": "list of the per-class file names <prefix>-varsX.pkl (X = class "
    "index), beside this file; each holds y, y_k, y_k_ll, y_q, y_q_ll, "
    "class_images_dict.",
    "k_q": "list of the k and q values.",
    "classes": "list of the evaluated class names.",
    "hit_k": "dict {class name: {k: {m: rate}}}: the fraction of the class's test "
    "images whose network top-1 class is among the first m classes of the ranking "
    "(all layers).",
    "hit_q": "as hit_k, for the q values.",
    "hit_k_ll": "as hit_k, rankings of the last layer only.",
    "hit_q_ll": "as hit_q, rankings of the last layer only.",
    "totalhit_k": "dict {k: {m: rate}}, pooled over all evaluated images.",
    "totalhit_q": "as totalhit_k, for the q values.",
    "totalhit_k_ll": "as totalhit_k, last layer only.",
    "totalhit_q_ll": "as totalhit_q, last layer only.",
    "meanhit_k": "dict {k: {m: rate}}, the mean of the per-class rates.",
    "meanhit_q": "as meanhit_k, for the q values.",
    "meanhit_k_ll": "as meanhit_k, last layer only.",
    "meanhit_q_ll": "as meanhit_q, last layer only.",
    "drop_tagged": "dict {class name: float}: tagcheck.py's mean, over the class's "
    "test images x, of p_c(x) - p_c(x with T_c ablated); T_c = the filters of the "
    "chosen layers the rule tags with c, their channels of the layer outputs "
    "multiplied by 0; p_c = the network's probability of c. NaN: no tagged filter "
    "(or no readable test image).",
    "drop_random": "dict {class name: float}: as drop_tagged with, per layer, as "
    "many filters drawn uniformly without replacement from the layer's filters not "
    "tagged with c; the mean over the random draws (NaN: no tagged filter, or a "
    "layer with fewer untagged than tagged filters).",
    "drop_others": "dict {class name: float}: the mean, over the test images of the "
    "other classes, of p_c'(x) - p_c'(x with T_c ablated), c' the image's own class "
    "(the first meta['others_per_class'] images of each class when set).",
    "n_ablated": "dict {class name: int}: |T_c|, the filters ablated.",
    "acc_drop_tagged": "dict {class name: float}: as drop_tagged for the top-1 "
    "accuracy (1 where the network's top-1 output is the image's class).",
    "acc_drop_random": "dict {class name: float}: as drop_random for the top-1 "
    "accuracy.",
    "logp_drop_tagged": "dict {class name: float}: as drop_tagged for log p_c "
    "(natural log, p clipped at meta['log_epsilon']).",
    "logp_drop_random": "dict {class name: float}: as drop_random for log p_c.",
    "drop_random_draws": "dict {class name: float64 array (draws,)}: the drop of "
    "p_c of each random draw (drop_random is their mean).",
    "acc_drop_random_draws": "as drop_random_draws, for the top-1 accuracy.",
    "logp_drop_random_draws": "as drop_random_draws, for log p_c.",
    "hit_rate": "dict {'all' | 'last': {m: rate}}: the rule's hit rate over the "
    "test images (the network's top-1 among the first m classes ranked by the tag "
    "counts of all layers / of the last layer), m = 1..5.",
    "hit_shuffled": "as hit_rate with the tags' class labels permuted (one "
    "permutation of the classes per draw, for every filter); the mean over draws.",
    "hit_shuffled_draws": "dict {'all' | 'last': {m: float64 array (draws,)}}: "
    "hit_shuffled of each draw.",
    "hit_chance": "dict {m: rate}: a random ranking's hit rate, min(1, m / classes).",
    "filter_tags": "list, per selected layer, of int64 arrays (filters,): each "
    "filter's number of tags under the rule.",
    "filter_entropy": "list, per selected layer, of float64 arrays (filters,): the "
    "normalised entropy of each filter's step-1 class activations (0: one class "
    "only; 1: every class alike; NaN: all zero).",
    "meta": "dict: how the run was made. Step 1: step, network, model path, "
    "layer names, filters per layer, image size, colour mode, preprocessing, "
    "interpolation, split, seed, exemplars (N), images per class, class_names = "
    "the model's outputs in order, skipped files, package versions. Later steps: "
    "their own inputs, and the previous step's meta under 'step1', 'step2' or "
    "'step3'.",
}


# --------------------------------------------------------------------------- runs


def make_run_id(time_delta: float, now: dt.datetime | None = None) -> str:
    """Return the run id ``YYYY-mm-dd-HHMM`` for UTC plus ``time_delta`` hours.

    Args:
        time_delta: hours to add to UTC (e.g. 1 for Central European Time).
        now: the UTC time to use; the current time when None.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    return (now + dt.timedelta(hours=time_delta)).strftime("%Y-%m-%d-%H%M")


def safe_name(text: str) -> str:
    """Return ``text`` with every character outside ``[A-Za-z0-9._+-]`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


@dataclass(frozen=True)
class Run:
    """The files of one run: ``save_dir / f"{run_id}-{tag}-{network}-..."``."""

    save_dir: Path
    run_id: str
    tag: str
    network: str

    @property
    def prefix(self) -> str:
        """The common start of the run's file names."""
        return f"{self.run_id}-{self.tag}-{self.network}"

    def path(self, suffix: str) -> Path:
        """Return the path of the run's file ``<prefix>-<suffix>``."""
        return self.save_dir / f"{self.prefix}-{suffix}"

    @property
    def vars_path(self) -> Path:
        """The run's main ``-vars.pkl`` file."""
        return self.path("vars.pkl")


def reserve_run(save_dir: Path, tag: str, network: str, time_delta: float) -> Run:
    """Claim a new run in ``save_dir`` that no earlier run has used.

    The run id is :func:`make_run_id`; when a run with that id, tag and network
    exists already, ``-2``, ``-3``, ... is added to the id. The claim is the
    run's ``-info.log``, created exclusively, so two processes never share a run.

    Raises:
        ArtifactError: ``save_dir`` cannot be created or written.
    """
    if tag not in STEP_TAGS:
        raise ValueError(f"Unknown step tag {tag!r}; expected one of {list(STEP_TAGS)}")
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(
            f"--save-dir {save_dir} cannot be created ({exc.strerror}); "
            "choose a folder you can write to."
        ) from exc
    remove_stale_temp_files(save_dir)
    base = make_run_id(time_delta)
    for attempt in range(1, 1000):
        run_id = base if attempt == 1 else f"{base}-{attempt}"
        run = Run(save_dir, run_id, tag, safe_name(network))
        if run.vars_path.exists():
            continue
        try:
            flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
            os.close(os.open(run.path("info.log"), flags, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise ArtifactError(
                f"--save-dir {save_dir} is not writable ({exc.strerror}); "
                "choose a folder you can write to."
            ) from exc
        return run
    raise ArtifactError(f"--save-dir {save_dir} holds 999 runs of {base}; clean it up.")


#: A run's prefix: run id, tag and network.
PREFIX_PATTERN = re.compile(
    r"(?P<run_id>\d{4}-\d\d-\d\d-\d{4}(?:-\d+)?)-(?P<tag>[A-Z]+)-(?P<network>.+)"
)


def find_run(save_dir: Path, resume: str, tag: str, suffix: str) -> Run:
    """Return the interrupted run that ``--resume`` names, to continue it.

    Args:
        save_dir: where the run's files are (when ``resume`` is a run id).
        resume: the run id (``2026-11-21-2130`` or ``2026-11-21-2130-2``), or
            the path of any of the run's files.
        tag: the step's tag; the run must be of this step.
        suffix: the file an interrupted run leaves, e.g. ``journal.pkl``.

    Raises:
        ArtifactError: no interrupted run of that id, or the run is complete.
    """
    given = Path(resume)
    folder = given.parent if given.name != resume else save_dir
    run_id = given.name
    match = PREFIX_PATTERN.match(run_id)
    if match:
        run_id = match["run_id"]
    found = sorted(folder.glob(f"{run_id}-{tag}-*-{suffix}"))
    if len(found) != 1:
        raise ArtifactError(
            f"--resume {resume}: {len(found)} interrupted {STEP_TAGS[tag]} runs "
            f"{run_id} in {folder}; pass the run id of an interrupted run of this "
            f"step (its -{suffix} must exist)."
        )
    parts = PREFIX_PATTERN.fullmatch(found[0].name[: -len(suffix) - 1])
    run = Run(folder, parts["run_id"], parts["tag"], parts["network"])
    if run.vars_path.exists():
        raise ArtifactError(f"--resume {resume}: {run.vars_path} is complete already.")
    return run


def network_of(meta: Any, path: Path, tag: str) -> str:
    """Return the network a step file belongs to.

    Args:
        meta: the file's ``meta`` (None for a file of the original scripts).
        path: the file, named ``<run id>-<tag>-<network>-vars[.pkl]``.
        tag: the step's tag.

    Returns:
        ``meta["network"]``, else the network part of the file name (the
        original scripts' tags count: ``-CA-`` for step 1, ``-LF-`` for step
        2), else the file name without ``.pkl``.
    """
    if isinstance(meta, dict) and isinstance(meta.get("network"), str):
        return meta["network"]
    tags = "|".join([tag, *(o for o, t in ORIGINAL_TAGS.items() if t == tag)])
    match = re.search(rf"-(?:{tags})-(.+)-vars(?:\.pkl)?$", path.name)
    return match.group(1) if match else path.name.removesuffix(".pkl")


# ------------------------------------------------------------------ atomic writes


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file to write; rename it to ``path`` once the body is done.

    The temporary file lives in the same folder, so the rename is atomic: a
    reader sees either no file or the whole file. When the body raises, the
    temporary file is removed and ``path`` is left as it was.

    Yields:
        The temporary file, open for binary writing.
    """
    prefix = f".{path.name}.{os.getpid()}."  # a later run removes it if this dies
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` through a temporary file and a rename.

    See :func:`atomic_file`.
    """
    with atomic_file(path) as f:
        for chunk in chunks:
            f.write(chunk)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`atomic_write_bytes`.

    Names that are not UTF-8 are written escaped (:func:`filtag.text.printable`).
    """
    atomic_write_bytes(path, [printable(text).encode("utf-8")])


#: A temporary file of :func:`atomic_file`: its writer's process id.
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$")


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove the temporary files that killed filtag processes left in ``folder``.

    A temporary file names its writer's process id; it is removed only when
    no process of that id runs.

    Returns:
        The files removed.
    """
    removed = []
    for path in folder.glob(".*.tmp"):
        match = _TEMP.match(path.name)
        if match is None or _running(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    if removed:
        logger.debug("removed %d temporary files of killed runs", len(removed))
    return removed


def _running(pid: int) -> bool:
    """Tell whether a process of id ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------- safe pickles


def names_path(vars_path: Path) -> Path:
    """Return the names file of a vars file: ``x-vars.pkl`` -> ``x-vars-names.pkl``.

    The original FilTag scripts name them without ``.pkl``: ``x-vars`` ->
    ``x-vars-names``.
    """
    if not vars_path.name.endswith(".pkl"):
        return vars_path.with_name(vars_path.name + "-names")
    return vars_path.with_name(vars_path.name.removesuffix(".pkl") + "-names.pkl")


def info_path(vars_path: Path) -> Path:
    """Return the info file of a vars file: ``x-vars.pkl`` -> ``x-vars-info.txt``."""
    return vars_path.with_name(vars_path.name.removesuffix(".pkl") + "-info.txt")


class _PlainPickler(pickle.Pickler):
    """A pickler that refuses every object :mod:`filtag.safepickle` would refuse.

    Builtin containers, str and numbers never reach :meth:`reducer_override`;
    numpy arrays, scalars and dtypes do, and so do the globals they pickle.
    """

    def reducer_override(self, obj: Any) -> Any:
        """Let allowed objects pickle as usual; raise TypeError for any other."""
        if isinstance(obj, np.ndarray | np.generic | np.dtype):
            dtype = obj if isinstance(obj, np.dtype) else obj.dtype
            subclass = isinstance(obj, np.ndarray) and type(obj) is not np.ndarray
            if subclass or not plain_dtype(dtype):
                raise TypeError(f"{type(obj).__qualname__} of dtype {dtype}")
            return NotImplemented
        name = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
        if name in ALLOWED_GLOBALS or type(obj) in (complex, bytearray, slice):
            return NotImplemented
        raise TypeError(f"{type(obj).__module__}.{type(obj).__qualname__}")


@dataclass(frozen=True)
class PickleStream:
    """A variable given as the bytes of its pickle, produced while it is written.

    For a value too large to exist in memory at once (step 2's tags, see
    :mod:`filtag.tagpickle`). The chunks, concatenated, must be ONE pickle
    that :class:`SafeUnpickler` reads; :func:`write_vars` writes them as they
    come, once.
    """

    chunks: Iterable[bytes]


def dump_plain(f: BinaryIO, name: str, value: Any) -> None:
    """Pickle ``value`` into ``f``, refusing types that :class:`SafeUnpickler` refuses.

    A :class:`PickleStream` is written as its chunks.
    """
    if isinstance(value, PickleStream):
        for chunk in value.chunks:
            f.write(chunk)
        return
    try:
        _PlainPickler(f, protocol=PICKLE_PROTOCOL).dump(value)
    except TypeError as exc:
        raise TypeError(
            f"variable {name!r} holds a {exc}; filtag files hold only builtin "
            "containers, str, numbers and numeric numpy arrays"
        ) from None


def describe(name: str) -> str:
    """Return the :data:`VARIABLE_DOCS` text for ``name`` (``filter_act_3`` too)."""
    key = re.sub(r"_\d+$", "_<i>", name)
    return VARIABLE_DOCS.get(name) or VARIABLE_DOCS.get(key, "")


def vars_info_text(vars_path: Path, names: list[str], header: str) -> str:
    """Return the ``-vars-info.txt`` text for ``names`` saved in ``vars_path``."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(re.sub(r"_\d+$", "_<i>", name), []).append(name)
    lines = [header, "", "Variables, in the order they are pickled:"]
    for key, members in groups.items():
        label = key if len(members) == 1 else f"{key} ({members[0]} ... {members[-1]})"
        lines.append(f"- {label}: {describe(members[0])}")
    lines += [
        "",
        "Load them safely (no code in the file can run):",
        "    from filtag.artifacts import load_vars",
        f"    v = load_vars('{vars_path.name}')   # dict: name -> value",
        "",
        "or, with plain pickle, only for files you trust:",
        "    import pickle",
        f"    with open('{names_path(vars_path).name}', 'rb') as f:",
        "        names = pickle.load(f)",
        f"    with open('{vars_path.name}', 'rb') as f:",
        "        v = {name: pickle.load(f) for name in names}",
        "",
    ]
    return "\n".join(lines)


def write_vars(
    vars_path: Path, variables: dict[str, Any], header: str, info: bool = True
) -> Path:
    """Save ``variables`` as the seed's file set, each file atomically.

    Writes ``vars_path`` (one pickle per variable, in the dict's order), its
    ``-names.pkl`` (the list of names) and its ``-info.txt``. The pickles go
    straight into a temporary file, which is renamed to ``vars_path`` last, so
    its presence means the set is complete; when a value is refused, nothing
    is written.

    Args:
        vars_path: the ``...-vars.pkl`` path (or step 3's ``...-varsX.pkl``).
        variables: name -> value, holding only builtin containers, str, numbers
            and numpy arrays, or a :class:`PickleStream`.
        header: the first line(s) of the info text.
        info: write the ``-info.txt`` (step 3's per-class files share one).

    Returns:
        ``vars_path``.

    Raises:
        TypeError: a value holds a type outside the allowed ones.
    """
    names = list(variables)
    with atomic_file(vars_path) as f:
        for name in names:
            dump_plain(f, name, variables[name])
        names_pickle = pickle.dumps(names, PICKLE_PROTOCOL)
        atomic_write_bytes(names_path(vars_path), [names_pickle])
        if info:
            atomic_write_text(
                info_path(vars_path), vars_info_text(vars_path, names, header)
            )
    return vars_path


def _load_names(npath: Path) -> list[str]:
    """Load a ``-vars-names.pkl``: the distinct variable names, in order."""
    data = npath.read_bytes()
    names, end = load_one(data, 0, "the variable names")
    if (
        type(names) is not list
        or not all(type(name) is str for name in names)
        or len(set(names)) != len(names)
        or end != len(data)
    ):
        raise ArtifactError(f"{npath} does not hold a list of variable names.")
    return names


def load_vars(vars_path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load a ``-vars.pkl`` file (and its ``-names.pkl``) safely.

    Every variable is read by :func:`filtag.safepickle.load_one`: no code
    runs, and each is a tree of plain data no larger than its pickle.

    Args:
        vars_path: the file.
        kind: the schema the variables must follow (:func:`filtag.schema.validate`:
            a step tag or :data:`CLASS_FILE`); None: no schema.

    Returns:
        dict name -> value, in the saved order.

    Raises:
        ArtifactError: a file is missing, truncated or not a filtag file.
        UnsafePickleError: a file names a global outside the allowed ones.
    """
    vars_path = Path(vars_path)
    npath = names_path(vars_path)
    for path in (vars_path, npath):
        if not path.is_file():
            raise ArtifactError(
                f"{path} not found; pass the -vars.pkl path that the previous step "
                "printed (its -vars-names.pkl must lie beside it)."
            )
    try:
        # the original scripts write "filter_act_0: filter activations of class x"
        names = [name.split(":")[0] for name in _load_names(npath)]
        data = vars_path.read_bytes()
        values, position = {}, 0
        for name in names:
            values[name], position = load_one(data, position, name)
        if position != len(data):
            raise ArtifactError(
                f"{vars_path} holds more pickles than {npath} names; the two "
                "files are from different runs."
            )
    except UnsafePickleError as exc:
        raise UnsafePickleError(
            f"{vars_path}: {exc}; the file was not loaded."
        ) from None
    except ArtifactError:
        raise
    except PickleRefused as exc:
        raise ArtifactError(
            f"{vars_path} is not a filtag file ({exc}); pass a -vars.pkl written by "
            "a filtag step."
        ) from None
    except Exception as exc:  # malformed data raises anything; none of it runs code
        raise ArtifactError(
            f"{vars_path} is truncated or not a filtag file ({type(exc).__name__}: "
            f"{exc}); pass a -vars.pkl written by a filtag step."
        ) from None
    if kind is not None:
        schema.validate(values, kind, vars_path)
    return values


def _filtag_names(variables: dict[str, Any]) -> dict[str, Any]:
    """Return the variables of an original step-2 file under filtag's names.

    The original step 2 keys ``labels_filters`` (the k tags) by the position of
    k in its k list and ``labels_filters_per`` (the q tags) by the values of
    the same list, in order: position i stands for the i-th q key. Other files
    are returned unchanged.
    """
    k_tags, q_tags = (variables.get(name) for name in ORIGINAL_NAMES)
    if not (isinstance(k_tags, dict) and isinstance(q_tags, dict)):
        return variables
    values = list(q_tags)
    if sorted(k_tags) == list(range(len(values))):
        k_tags = {values[i]: tags for i, tags in k_tags.items()}
    renamed = {
        ORIGINAL_NAMES.get(name, name): value for name, value in variables.items()
    }
    return {**renamed, "filTags_k": k_tags}


def load_step_vars(
    vars_path: str | Path, tag: str, flag: str, required: Iterable[str] = ()
) -> dict[str, Any]:
    """Load a vars file, check that step ``tag`` wrote it and that it fits its schema.

    A file without ``meta`` (e.g. from the original FilTag scripts) is accepted
    when it holds every ``required`` variable and fits the schema.

    Args:
        vars_path: the file to load.
        tag: the expected step tag (a key of :data:`STEP_TAGS`).
        flag: the command-line flag the path came from, for error messages.
        required: variable names the caller needs.

    Raises:
        ArtifactError: the file is unreadable, from another step, incomplete or
            not what step ``tag`` writes (:func:`filtag.schema.validate`).
    """
    variables = _filtag_names(load_vars(vars_path))
    meta = variables.get("meta")
    found = meta.get("step") if isinstance(meta, dict) else None
    if found != tag and (found is not None or meta is not None):
        known = isinstance(found, str) and found in STEP_TAGS
        what = f"a {STEP_TAGS[found]} file" if known else "not a filtag file"
        raise ArtifactError(
            f"{flag} {vars_path} is {what}; it needs the -vars.pkl that "
            f"{STEP_TAGS[tag]} wrote."
        )
    missing = [name for name in required if name not in variables]
    if missing:
        raise ArtifactError(
            f"{flag} {vars_path} lacks {', '.join(missing)}; it needs the -vars.pkl "
            f"that {STEP_TAGS[tag]} wrote."
        )
    schema.validate(variables, tag, vars_path)
    return variables
