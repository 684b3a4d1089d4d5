"""The tag check's parts: the masked forward pass, the sets, the sums, the baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from filtag import ablation, evaluation, hitrates, models
from filtag.errors import FiltagError
from filtag.keras_ablation import ChannelAblator
from tests import reference


def _images(folder, n: int, size: tuple[int, int], mode: str) -> np.ndarray:
    paths = sorted(folder.glob("*/*"))[:: max(1, len(list(folder.glob("*/*"))) // n)]
    return np.stack([reference.read_image(p, size, mode) for p in paths[:n]])


def _check_against_copies(model, layer_names, images, seed, atol) -> None:
    """ChannelAblator on mixed per-image masks == zeroed copies, image by image."""
    ablator = ChannelAblator(model, layer_names, models.preprocess_function("none"))
    rng = np.random.default_rng(seed)
    masks = (rng.random((len(images), ablator.n_filters)) > 0.3).astype(np.float32)
    masks[0] = 1  # one image unablated
    outputs = ablator(images, masks)
    stops = np.cumsum(ablator.filters_per_layer)
    for image, mask, out in zip(images, masks, outputs, strict=True):
        zeroed = {
            name: np.flatnonzero(mask[stop - n : stop] == 0).tolist()
            for name, n, stop in zip(
                layer_names, ablator.filters_per_layer, stops, strict=True
            )
        }
        copy = reference.zeroed_copy(model, zeroed)
        expected = copy.predict(image[None].astype(np.float32), verbose=0)[0]
        np.testing.assert_allclose(out, expected, atol=atol)
    assert np.abs(outputs[1] - outputs[0]).max() > 1e-3  # the masks change something


def test_ablator_equals_zeroed_copies_on_default_cnn(default_files, small_images):
    model = models.load_network(str(default_files.model))
    images = _images(small_images, 6, (28, 28), "grayscale")
    _check_against_copies(model, ["conv1", "conv2", "conv4"], images, 0, 1e-6)


def test_ablator_equals_zeroed_copies_on_lite0(lite0_model, imagenet_images):
    model = models.load_network(str(lite0_model))
    depthwise = [layer.name for layer in model.layers if "dwconv" in layer.name]
    convs = [layer.name for layer in models.select_layers(model)]
    layers = [depthwise[-1], convs[-2], convs[-1]]
    images = _images(imagenet_images, 3, (224, 224), "rgb")
    _check_against_copies(model, layers, images, 1, 2e-5)


def test_ablator_pads_small_batches_to_one_graph(default_files, small_images) -> None:
    model = models.load_network(str(default_files.model))
    images = _images(small_images, 5, (28, 28), "grayscale")
    ablator = ChannelAblator(model, ["conv4"], models.preprocess_function("none"))
    masks = np.ones((5, 64), np.float32)
    masks[:, :10] = 0
    whole = ablator(images, masks)
    parts = np.concatenate(
        [ablator(images[:2], masks[:2]), ablator(images[2:], masks[2:])]
    )
    np.testing.assert_array_equal(parts, whole)
    with pytest.raises(ValueError, match="masks: expected shape"):
        ablator(images, masks[:, :5])


# ------------------------------------------------------------------ sets


def test_choose_layers() -> None:
    names = ["conv1", "conv2", "conv3"]
    assert ablation.choose_layers("last", names) == [2]
    assert ablation.choose_layers("all", names) == [0, 1, 2]
    assert ablation.choose_layers("conv3, conv1", names) == [0, 2]
    with pytest.raises(FiltagError, match=r"--layers 'conv9'.*\['conv9'\]"):
        ablation.choose_layers("conv9", names)


def test_random_draws_match_the_tagged_set_layer_by_layer() -> None:
    filters = [6, 10]
    tagged = np.zeros(16, bool)
    tagged[[1, 2, 8, 9, 15]] = True
    draws = ablation.random_draws(tagged, filters, 200, 7, 3)
    assert draws.shape == (200, 16)
    assert (draws.sum(axis=1) == 5).all()
    assert (draws[:, :6].sum(axis=1) == 2).all()  # as many as tagged, per layer
    assert not (draws & tagged).any()  # never a tagged filter
    assert (
        draws[:, ~tagged].all(axis=0).sum() == 0 and draws[:, ~tagged].any(axis=0).all()
    )
    again = ablation.random_draws(tagged, filters, 200, 7, 3)
    np.testing.assert_array_equal(draws, again)  # same seed, same draws
    assert (ablation.random_draws(tagged, filters, 200, 8, 3) != draws).any()
    assert (ablation.random_draws(tagged, filters, 200, 7, 4) != draws).any()
    # the first draws do not depend on how many are drawn
    np.testing.assert_array_equal(
        ablation.random_draws(tagged, filters, 3, 7, 3)[:1], draws[:1]
    )


def test_random_draws_refuse_a_layer_with_too_few_untagged_filters() -> None:
    tagged = np.array([True, True, False, False, False])
    assert ablation.random_draws(tagged, [3, 2], 4, 0, 0) is None


def test_plan_rows_by_loops() -> None:
    tagged = np.zeros((4, 6), bool)
    tagged[0, [0, 3]] = tagged[2, [1]] = tagged[3, [5]] = True
    plan = ablation.AblationPlan(tagged, [3, 3], [0, 2, 3], 2, 5)
    assert plan.sets.shape == (1 + 3 + 6, 6)
    assert not plan.sets[0].any()
    np.testing.assert_array_equal(plan.sets[1:4], tagged[[0, 2, 3]])
    assert plan.set_class.tolist() == [-1, 0, 2, 3, 0, 0, 2, 2, 3, 3]
    assert plan.set_draw.tolist() == [-1, -1, -1, -1, 0, 1, 0, 1, 0, 1]
    np.testing.assert_array_equal(plan.masks(np.array([1])), [[0, 1, 1, 0, 1, 1]])
    classes = np.array([0, 1, 2, 2, 3])
    others = np.array([True, False, True, False, True])
    image, sets = plan.rows(classes, others)
    expected = set()
    for i, c in enumerate(classes):
        for j, owner in enumerate([0, 2, 3]):
            if c == owner or others[i]:
                expected.add((i, 1 + j))
            if c == owner:
                expected |= {(i, 4 + 2 * j + d) for d in range(2)}
    assert sorted(zip(image.tolist(), sets.tolist(), strict=True)) == sorted(expected)


def test_drop_sums_by_loops() -> None:
    rng = np.random.default_rng(0)
    tagged = rng.random((3, 8)) < 0.3
    plan = ablation.AblationPlan(tagged, [8], [0, 1, 2], 3, 1)
    classes = rng.integers(0, 3, 40)
    image, sets = plan.rows(classes, np.ones(40, bool))
    drops = rng.normal(size=(len(image), 3))
    sums = ablation.DropSums(plan, 3)
    half = len(image) // 2
    sums.add(sets[:half], classes[image[:half]], drops[:half])
    sums.add(sets[half:], classes[image[half:]], drops[half:])
    means = sums.means()
    for c in range(3):
        owner = plan.set_class[sets] == c
        own = classes[image] == c
        tagged_rows = owner & own & (plan.set_draw[sets] < 0)
        np.testing.assert_allclose(means["tagged"][c], drops[tagged_rows].mean(axis=0))
        np.testing.assert_allclose(means["others"][c], drops[owner & ~own].mean(axis=0))
        per_draw = [
            drops[owner & (plan.set_draw[sets] == d)].mean(axis=0) for d in range(3)
        ]
        np.testing.assert_allclose(means["random_draws"][c], per_draw)
        np.testing.assert_allclose(means["random"][c], np.mean(per_draw, axis=0))


def test_own_class_scores() -> None:
    logits = np.array([[2.0, 1.0, -1.0], [0.0, 0.0, 3.0]])
    scores = ablation.own_class_scores(logits, np.array([0, 1]))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(scores[:, 0], [p[0, 0], p[1, 1]])
    np.testing.assert_allclose(scores[:, 1], np.log([p[0, 0], p[1, 1]]))
    assert scores[:, 2].tolist() == [1.0, 0.0]
    certain = ablation.own_class_scores(np.array([[1.0, 0.0]]), np.array([1]))
    assert certain[0, 1] == math.log(ablation.LOG_EPSILON)  # clipped, not -inf


# ------------------------------------------------------------ baselines


def test_shuffled_hits_equal_hits_of_relabelled_tags() -> None:
    rng = np.random.default_rng(3)
    names = [f"c{i}" for i in range(6)]
    tags = [rng.random((10, 6)) < 0.3, rng.random((8, 6)) < 0.3]
    acts = [rng.random((30, 10)), rng.random((30, 8))]
    top1 = [names[i] for i in rng.integers(0, 6, 30)]
    counts_all, counts_last = evaluation.tag_counts(tags, acts, "k", 3)
    hits = ablation.HitCounts(names, 4, 11)
    hits.add({"all": counts_all[:12], "last": counts_last[:12]}, top1[:12])
    hits.add({"all": counts_all[12:], "last": counts_last[12:]}, top1[12:])
    rates = hits.rates()
    m = list(ablation.M_VALUES)
    for scope, counts in (("all", counts_all), ("last", counts_last)):
        real = hitrates.hit_matrix(top1, evaluation.rankings(counts, names), m)
        np.testing.assert_allclose(
            list(rates["hit_rate"][scope].values()), real.mean(0)
        )
    shuffled = []
    for permutation in hits.permutations:
        relabelled = [t[:, np.argsort(permutation)] for t in tags]  # tag c -> pi(c)
        for t, original in zip(relabelled, tags, strict=True):
            for c in range(6):
                np.testing.assert_array_equal(t[:, permutation[c]], original[:, c])
        counts = evaluation.tag_counts(relabelled, acts, "k", 3)[0]
        shuffled.append(
            hitrates.hit_matrix(top1, evaluation.rankings(counts, names), m).mean(0)
        )
    for i, value in enumerate(m):
        np.testing.assert_allclose(
            rates["hit_shuffled_draws"]["all"][value], [s[i] for s in shuffled]
        )
        assert rates["hit_shuffled"]["all"][value] == pytest.approx(
            np.mean([s[i] for s in shuffled])
        )
    again = ablation.HitCounts(names, 4, 11)
    np.testing.assert_array_equal(again.permutations, hits.permutations)
    assert ablation.chance_rates(6) == {1: 1 / 6, 2: 2 / 6, 3: 0.5, 4: 4 / 6, 5: 5 / 6}


def test_normalised_entropy() -> None:
    acts = np.array(
        [[1.0, 0.2, 0.0, 0.5], [0.0, 0.2, 0.0, 0.5], [0.0, 0.2, 0.0, 0.5],
         [np.nan] * 4]
    )  # fmt: skip
    entropy = ablation.normalised_entropy(acts)
    assert entropy[0] == 0  # one class only
    assert entropy[1] == pytest.approx(1) and entropy[3] == pytest.approx(1)
    assert math.isnan(entropy[2])  # no activation at all
    skewed = ablation.normalised_entropy(np.array([[0.6], [0.3], [0.1]]))
    p = np.array([0.6, 0.3, 0.1])
    assert skewed[0] == pytest.approx(-(p * np.log(p)).sum() / math.log(3))


def test_specificity_counts_tags() -> None:
    matrices = [np.array([[True, False], [True, True], [False, False]])]
    n_tags, entropy = ablation.specificity([np.ones((2, 3))], matrices)
    assert n_tags[0].tolist() == [1, 2, 0]
    np.testing.assert_allclose(entropy[0], 1)
    with pytest.raises(FiltagError, match="filters per layer"):
        ablation.specificity([np.ones((2, 4))], matrices)


def test_summary_counts_classes_whose_tags_beat_every_draw() -> None:
    names = ["a", "b", "c"]
    variables = {
        "drop_tagged": dict(zip(names, [0.5, 0.1, math.nan], strict=True)),
        "drop_random": dict(zip(names, [0.1, 0.1, math.nan], strict=True)),
        "logp_drop_tagged": dict(zip(names, [2.0, 0.3, math.nan], strict=True)),
        "logp_drop_random": dict(zip(names, [0.2, 0.2, math.nan], strict=True)),
        "logp_drop_random_draws": {
            "a": np.array([0.1, 0.3]), "b": np.array([0.0, 0.4]), "c": np.array([])
        },
    }  # fmt: skip
    assert ablation.matters(variables, "a") and not ablation.matters(variables, "b")
    line = ablation.summary_line(variables, 2)
    assert line.startswith("tagged filters matter for 1 of 3 classes (1 with NaN")
    assert "p_c 0.300 vs 0.100" in line and "log p_c 1.150 vs 0.200" in line
    assert ablation.class_order(variables) == ["a", "b", "c"]  # NaN last
