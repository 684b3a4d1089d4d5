"""Step 1's exemplars: the running top N against a brute-force sort and against
the slow per-image float64 reference on real models; ties, short lists, resume."""

from __future__ import annotations

import importlib
import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from filtag import activations, models
from filtag.artifacts import load_vars
from tests import reference
from tests.conftest import run_script

step1 = importlib.import_module("step1filteractivations")


# ------------------------------------------------------------- the accumulator

#: Class sizes of the synthetic train list: an empty class, a class of one image.
SIZES = [7, 0, 13, 1, 20, 19]
#: Positions that are not read (unreadable files): the last image of class 0
#: and the only image of class 3.
UNREAD = {6, 20, 40}


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(labels, values (images, 23 filters) of 6 levels with NaN and -0.0, read)."""
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(len(SIZES)), SIZES)
    values = (rng.integers(0, 6, (len(labels), 23)) / 5).astype(np.float32)
    values[5, :3] = np.nan
    values[10:14, 4] = -0.0
    read = [p for p in range(len(labels)) if p not in UNREAD]
    return labels, values, read


def _brute_force(values: np.ndarray, read: list[int], n: int) -> tuple:
    """Per filter, the n best read positions by a plain sort: (values, positions)."""

    def rank(value: float, p: int) -> tuple:
        return (True, 0.0, p) if math.isnan(value) else (False, -value, p)

    rows = [
        sorted(read, key=lambda p, column=column: rank(column[p], p))[:n]
        for column in values.T.tolist()
    ]
    positions = np.array(rows, np.int64).reshape(values.shape[1], -1)
    return np.take_along_axis(values.T, positions, axis=1), positions


def _stream(
    labels: np.ndarray,
    values: np.ndarray,
    read: list[int],
    n: int,
    batch_size: int,
    journal: dict | None = None,
    stop: int | None = None,
) -> tuple[activations.Exemplars | None, dict]:
    """Step 1's loop without a network: the positions ``read`` in batches; each
    class, once finished, journaled as {class: (sums, count, delta)}.

    Args:
        journal: the journal of an interrupted run to resume (kept unchanged).
        stop: interrupt before this batch (the result is then None).
    """
    journal = dict(journal or {})
    n_filters = values.shape[1]
    sums = activations.ClassSums(
        labels, len(SIZES), n_filters, {c: (s, k) for c, (s, k, _) in journal.items()}
    )
    top = activations.Exemplars(labels, n_filters, n, [d for *_, d in journal.values()])
    todo = [p for p in sums.positions.tolist() if p in read]

    def record(c: int) -> None:
        journal[c] = (sums.sums[c].copy(), int(sums.counts[c]), top.delta(c))

    for batch, start in enumerate(range(0, len(todo), batch_size)):
        if batch == stop:
            return None, journal
        index = np.array(todo[start : start + batch_size])
        finished = sums.add(values[index], index)
        top.add(values[index], index)
        for c in finished:
            record(c)
    for c in sums.finish():
        record(c)
    return top, journal


def _bits(values: np.ndarray) -> np.ndarray:
    return values.view(np.int32)


@pytest.mark.parametrize("n", [0, 1, 4, 9, 100])
@pytest.mark.parametrize("batch_size", [1, 5, 16, 64])
def test_running_top_n_equals_a_brute_force_sort(synthetic, n, batch_size) -> None:
    labels, values, read = synthetic
    top, _ = _stream(labels, values, read, n, batch_size)
    got_values, got_positions = top.result()
    expected_values, expected_positions = _brute_force(values, read, n)
    assert got_values.dtype == np.float32 and got_positions.dtype == np.int64
    assert got_positions.shape == (23, min(n, len(read)))
    np.testing.assert_array_equal(got_positions, expected_positions)
    np.testing.assert_array_equal(got_values, expected_values)  # NaN == NaN here
    if n > 1:  # there were ties to break
        assert (got_values[:, :-1] == got_values[:, 1:]).sum() > 23


@pytest.mark.parametrize("n", [1, 9, 100])
def test_resume_from_journaled_deltas_equals_the_whole_run(synthetic, n) -> None:
    """Interrupted before every batch (batches of 5 span classes), resumed in
    batches of 3, interrupted again and resumed in batches of 8: always the
    uninterrupted run's exemplars, bit for bit."""
    labels, values, read = synthetic
    whole, _ = _stream(labels, values, read, n, 5)
    for stop in range(len(read) // 5 + 1):
        _, journal = _stream(labels, values, read, n, 5, stop=stop)
        for second_stop in (1, None):
            top, again = _stream(labels, values, read, n, 3, journal, second_stop)
            if top is None:
                top, _ = _stream(labels, values, read, n, 8, again)
            for got, expected in zip(top.result(), whole.result(), strict=True):
                np.testing.assert_array_equal(got, expected)
            assert (_bits(top.result()[0]) == _bits(whole.result()[0])).all()


def test_deltas_are_compact_and_hold_only_their_class(synthetic) -> None:
    labels, values, read = synthetic
    top, journal = _stream(labels, values, read, 9, 5)
    kept = top.result()[1]
    for c, (_, _, delta) in journal.items():
        assert delta.filters.dtype == delta.positions.dtype == np.uint8
        assert delta.values.dtype == np.float32
        assert (labels[delta.positions] == c).all()
        # every final exemplar of class c is in its delta
        final = {(f, p) for f, row in enumerate(kept.tolist()) for p in row}
        of_c = {(f, p) for f, p in final if labels[p] == c}
        entries = zip(delta.filters.tolist(), delta.positions.tolist(), strict=True)
        assert of_c <= set(entries)
    assert len(journal[1][2].filters) == len(journal[3][2].filters) == 0


# ------------------------------------------------------------- real step-1 runs


def _flat(v: dict) -> tuple[np.ndarray, list[list[str]]]:
    """A step-1 file's exemplars, all layers side by side: (values, image lists)."""
    return (
        np.concatenate(v["exemplar_values"], axis=0),
        [row for layer in v["exemplar_images"] for row in layer],
    )


def _reference_values(model_file: Path, images_dir: Path, v: dict) -> np.ndarray:
    """The float64 reference value of every train image: shape (images, F)."""
    model = models.load_network(str(model_file))
    spec = models.image_spec(model)
    images = [
        reference.read_image(images_dir / p, (spec.height, spec.width), spec.color_mode)
        for p in v["train_filenames"]
    ]
    per_image = reference.image_values(
        model, v["meta"]["layer_names"], lambda x: x, images
    )
    return np.array([np.concatenate(layers) for layers in per_image])


def _assert_matches_reference(v: dict, ref: np.ndarray, n: int) -> int:
    """Assert a step-1 file's exemplars are the reference's; return the swaps.

    The lists must equal the reference's (value descending, ties by train
    order) but where two reference values are closer than twice the probe's
    largest float32 error, which may swap them (a swap).
    """
    filters_per_layer = v["meta"]["filters_per_layer"]
    assert [len(layer) for layer in v["exemplar_images"]] == filters_per_layer
    assert [a.shape[0] for a in v["exemplar_values"]] == filters_per_layer
    values, lists = _flat(v)
    position = {path: i for i, path in enumerate(v["train_filenames"])}
    got = np.array([[position[path] for path in row] for row in lists], np.int64)
    k = min(n, len(position))
    assert values.dtype == np.float32 and values.shape == got.shape == (len(ref.T), k)
    kept_ref = np.take_along_axis(ref.T, got, axis=1)
    np.testing.assert_allclose(values, kept_ref, rtol=1e-4, atol=1e-6)
    error = np.abs(values - kept_ref).max(initial=0)
    swaps = 0
    for f, expected in enumerate(reference.exemplars(ref, n)):
        assert len(set(got[f])) == k
        for (a, i), (b, j) in itertools.pairwise(zip(values[f], got[f], strict=True)):
            assert a > b or (a == b and i < j)  # descending, ties in train order
        for g, e in zip(got[f], expected, strict=True):
            if g != e:
                assert abs(ref[g, f] - ref[e, f]) <= 2 * error, (f, g, e)
                swaps += 1
    return swaps


@pytest.fixture(scope="module")
def small_run(default_files, small_images: Path, tmp_path_factory) -> dict:
    """Step 1 on the small folder with 9 exemplars, batch 7 (batches span classes)."""
    out = tmp_path_factory.mktemp("exemplars")
    args = ["--network", default_files.model, "--images-dir", small_images]
    path, _ = run_script(step1, *args, "--save-dir", out, "--batch-size", 7)
    return load_vars(path)


@pytest.fixture(scope="module")
def small_reference(default_files, small_images: Path, small_run: dict) -> np.ndarray:
    return _reference_values(default_files.model, small_images, small_run)


def test_exemplars_equal_the_reference_on_the_default_cnn(
    small_run: dict, small_reference: np.ndarray
) -> None:
    names = list(small_run)
    assert names[names.index("filter_act_9") + 1 :] == [
        "exemplar_images", "exemplar_values", "meta",
    ]  # fmt: skip
    assert small_run["meta"]["exemplars"] == 9
    swaps = _assert_matches_reference(small_run, small_reference, 9)
    assert swaps <= 176 * 9 // 100  # near-ties are rare


def test_more_exemplars_than_train_images_and_none(
    default_files, small_images: Path, small_run: dict, small_reference, tmp_path
) -> None:
    args = ["--network", default_files.model, "--images-dir", small_images,
            "--save-dir", tmp_path, "--batch-size", 7]  # fmt: skip
    many = load_vars(run_script(step1, *args, "--exemplars", 150)[0])
    _assert_matches_reference(many, small_reference, 150)
    values, lists = _flat(many)
    assert values.shape == (176, 100)  # every train image, once per filter
    assert all(sorted(row) == sorted(many["train_filenames"]) for row in lists)
    values9, lists9 = _flat(small_run)
    assert [row[:9] for row in lists] == lists9
    assert (_bits(np.ascontiguousarray(values[:, :9])) == _bits(values9)).all()
    none = load_vars(run_script(step1, *args, "--exemplars", 0)[0])
    assert none["meta"]["exemplars"] == 0
    assert [a.shape for a in none["exemplar_values"]] == [(16, 0), (32, 0), (64, 0),
                                                           (64, 0)]  # fmt: skip
    assert none["exemplar_images"] == [[[]] * w for w in (16, 32, 64, 64)]
    for i in range(10):  # the filter activations do not depend on N
        for a, b in zip(none[f"filter_act_{i}"], small_run[f"filter_act_{i}"],
                        strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)


def test_equal_values_keep_the_earlier_train_image(default_files, tmp_path) -> None:
    """Three classes holding the same six images: the copies of an image have
    equal values, and its earlier copy in train_filenames comes first (so do
    different images of equal value, e.g. 0 for a filter dead on all of them)."""
    sources = [
        sorted(d.iterdir())[0] for d in sorted(default_files.images_dir.iterdir())
    ]
    images = tmp_path / "images"
    for name in ("a", "b", "c"):
        (images / name).mkdir(parents=True)
        for s, source in enumerate(sources[:6]):
            shutil.copy(source, images / name / f"{s}.png")
    path, _ = run_script(step1, "--network", default_files.model, "--images-dir",
                         images, "--class-names", default_files.class_names,
                         "--save-dir", tmp_path, "--batch-size", 4)  # fmt: skip
    v = load_vars(path)
    _assert_matches_reference(v, _reference_values(default_files.model, images, v), 9)
    values, lists = _flat(v)
    ties = 0
    for f, row in enumerate(lists):
        copies: dict[str, list[int]] = {}
        for slot, image in enumerate(row):
            copies.setdefault(Path(image).name, []).append(slot)
        for slots in copies.values():
            assert [row[s] for s in slots] == sorted(row[s] for s in slots)
            assert len(set(_bits(values[f, slots]).tolist())) == 1  # bit-equal
            ties += len(slots) - 1
    assert ties >= 176 * 3  # 15 train images of 6 contents: >= 3 ties in 9


@pytest.mark.slow
def test_exemplars_equal_the_reference_on_efficientnet_lite0(
    lite0_model: Path, imagenet_images: Path, tmp_path: Path
) -> None:
    path, _ = run_script(step1, "--network", lite0_model, "--images-dir",
                         imagenet_images, "--save-dir", tmp_path, "--batch-size", 8,
                         "--exemplars", 5)  # fmt: skip
    v = load_vars(path)
    ref = _reference_values(lite0_model, imagenet_images, v)
    swaps = _assert_matches_reference(v, ref, 5)
    assert swaps <= ref.shape[1] * 5 // 100
