"""Filter cards (filTagsvis.py) and where filters fire (si-eval.py --html).

The overlay is checked on known maps; the cards against step 1's and step 2's
own files on the default CNN; the maps against the network's own feature maps
(whose means are step 1's exemplar values); the pages' scripts in
tests/test_browser.py.
"""

from __future__ import annotations

import html
import importlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import filtag
from filtag import cards, data, explanation, overlays, steps, views
from filtag.artifacts import load_vars
from filtag.results import TagPageResult
from tests.conftest import refused, run_script

filtagsvis = importlib.import_module("filTagsvis")
si_eval = importlib.import_module("si-eval")


# ----------------------------------------------------------------- overlays


def test_overlay_colours_where_a_known_map_is_high() -> None:
    """A map hot in its top-left cell: full colour there, the image elsewhere."""
    fmap = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    black = np.zeros((4, 4, 1), np.uint8)
    white = np.full((4, 4, 3), 255, np.uint8)
    on_black = overlays.overlay(black, fmap, (8, 8))
    on_white = overlays.overlay(white, fmap, (8, 8))
    assert on_black.shape == (8, 8, 3) and on_black.dtype == np.uint8
    strongest = overlays.RAMP[-1]
    a = overlays.MAX_OPACITY
    np.testing.assert_array_equal(on_black[0, 0], np.rint(a * strongest))
    np.testing.assert_array_equal(
        on_white[0, 0], np.rint((1 - a) * 255 + a * strongest)
    )
    # bilinear, pixel centres aligned: the hot cell covers the top-left quarter
    # and fades over the next two pixels; from pixel 6 on the image is unchanged
    fade = np.array([1, 1, 0.875, 0.625, 0.375, 0.125, 0, 0])
    values = np.outer(fade, fade)
    np.testing.assert_allclose(overlays.upsampled(fmap, (8, 8)), values, atol=1e-6)
    # the blend uses the value rounded to a step of 1/255 (a table of 256 levels)
    level = np.rint(values * 255) / 255
    expected = np.rint(a * level[..., None] * overlays.colours(level))
    np.testing.assert_array_equal(on_black, expected)
    assert not on_black[:, 6:].any() and not on_black[6:].any()
    assert (on_white[:, 6:] == 255).all() and (on_white[6:] == 255).all()
    # an image smaller than the picture is enlarged by nearest neighbour
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 10
    plain = overlays.overlay(grey, np.zeros((2, 2)), (8, 8))
    np.testing.assert_array_equal(plain[::2, ::2, 0], grey[..., 0])
    np.testing.assert_array_equal(plain[1::2, 1::2, 1], grey[..., 0])


def test_colours_scaling_and_sizes() -> None:
    np.testing.assert_array_equal(overlays.colours(np.float32(0)), overlays.RAMP[0])
    np.testing.assert_array_equal(overlays.colours(np.float32(1)), overlays.RAMP[-1])
    half = overlays.colours(np.float32(0.5 / (len(overlays.RAMP) - 1)))
    np.testing.assert_allclose(half, (overlays.RAMP[0] + overlays.RAMP[1]) / 2)
    maps = np.array([[[[1.0, 3.0]], [[5.0, 2.0]]], [[[4.0, 4.0]], [[4.0, 4.0]]]])
    scaled = overlays.scale_layer(maps)  # (2 images, 2 x 1 positions, 2 filters)
    np.testing.assert_allclose(scaled[0, :, 0, :], [[0, 0.5], [1, 0.25]])
    assert not scaled[1].any()  # a constant output scales to 0, as in step 1
    np.testing.assert_allclose(overlays.normalised(np.array([0.1, 0.4])), [0.25, 1])
    assert not overlays.normalised(np.zeros(3)).any()
    assert overlays.picture_size(28, 28) == (84, 84)
    assert overlays.picture_size(224, 224) == (96, 96)
    assert overlays.picture_size(300, 400) == (72, 96)
    assert overlays.picture_size(96, 96) == (96, 96)


# --------------------------------------------------------------------- cards


@pytest.fixture(scope="module")
def tag_page(default_chain, tmp_path_factory) -> TagPageResult:
    """The tag page of the default chain (k = 5), through the API."""
    out = tmp_path_factory.mktemp("tag_page")
    return views.tag_views(filtags_file=default_chain["step2"], save_dir=out)


def test_cards_show_step1s_activations_and_exemplars(default_chain, tag_page) -> None:
    v1 = load_vars(default_chain["step1"])
    v2 = load_vars(default_chain["step2"])
    names = v2["meta"]["step1"]["layer_names"]
    assert len(tag_page.cards) == sum(v2["meta"]["filters_per_layer"]) == 176
    assert tag_page.notes == () and list(tag_page.classes) == v2["meta"]["class_names"]
    text = tag_page.path.read_text()
    for card in tag_page.cards:
        a = names.index(card.layer)
        expected = [v1[f"filter_act_{i}"][a][card.filter] for i in range(10)]
        np.testing.assert_array_equal(card.activations, expected)
        assert card.exemplars == tuple(v1["exemplar_images"][a][card.filter])
        np.testing.assert_array_equal(
            card.values, v1["exemplar_values"][a][card.filter]
        )
        assert list(card.tags) == v2["filTags_k"][5][a][card.filter]
        assert card.picture == f"{tag_page.path.stem}-cards/{a}-{card.filter}.jpg"
        assert f'id="{card.layer}-{card.filter}"' in text
        assert f'<img src="{card.picture}" loading="lazy"' in text
    card = tag_page.cards[-1]
    for value in (*card.activations, *card.values):
        assert f"{value:.3f}" in text
    with Image.open(tag_page.path.parent / card.picture) as picture:
        assert picture.format == "JPEG" and picture.size == (9 * 84, 84)
    assert text.count('class="card"') == 176 and text.count('class="tagmap"') == 4
    assert tag_page.path.stat().st_size < 3_000_000


def test_exemplar_pictures_are_the_maps_step1_measured(default_chain, tag_page) -> None:
    """Each exemplar's scaled map averages to its step-1 value; the picture lays
    exactly those maps over the exemplars, in order."""
    network = steps.load_tags_run(default_chain["step2"], None, 32).network
    v1 = load_vars(default_chain["step1"])
    images_dir = Path(v1["meta"]["images_dir"])
    for card in (tag_page.cards[0], tag_page.cards[-1]):
        a = network.layer_names.index(card.layer)
        images = np.stack(
            [data.load_image(str(images_dir / p), network.spec) for p in card.exemplars]
        )
        maps = overlays.scale_layer(network.feature_maps(images, card.layer))
        maps = maps[..., card.filter]
        np.testing.assert_allclose(maps.mean(axis=(1, 2)), card.values, atol=2e-6)
        assert v1["exemplar_values"][a][card.filter][0] == card.values.max()
        size = overlays.picture_size(28, 28)
        peak = maps.max()
        expected = overlays.strip(
            [
                overlays.overlay(i, m / peak, size)
                for i, m in zip(images, maps, strict=True)
            ]
        )
        with Image.open(tag_page.path.parent / card.picture) as picture:
            drawn = np.asarray(picture.convert("RGB"), np.float64)
        assert np.abs(drawn - expected).mean() < 2.5  # JPEG's loss only


def _private_chain(default_files, small_images: Path, tmp_path: Path) -> dict:
    """Steps 1 and 2 on a copy of the small images (k = 5)."""
    images = tmp_path / "images"
    shutil.copytree(small_images, images)
    r1 = filtag.step1(network=str(default_files.model), images_dir=images,
                      save_dir=tmp_path / "runs", exemplars=3)  # fmt: skip
    r2 = filtag.step2(activations_file=r1.path, k_q=[5], save_dir=tmp_path / "runs")
    return {"images": images, "step1": r1.path, "step2": r2.path}


def test_images_elsewhere_need_images_dir_and_missing_ones_leave_a_note(
    default_files, small_images, tmp_path
) -> None:
    chain = _private_chain(default_files, small_images, tmp_path)
    moved = tmp_path / "moved"
    chain["images"].rename(moved)
    out = ("--save-dir", tmp_path / "out")
    page, _ = run_script(filtagsvis, "--filtags-file", chain["step2"], *out)
    text = page.read_text()
    note = (
        f"The cards show tags and activations only: the folder {chain['images']} is "
        "not there. Pass --images-dir with the folder step 1 read"
    )
    assert f'<p class="note">{html.escape(note)}' in text
    assert text.count('class="card"') == 176 and '<table class="acts">' in text
    assert "<img" not in text and not page.with_name(page.stem + "-cards").exists()
    warnings = page.with_name(page.name.replace("k5.html", "warnings.log"))
    assert note in warnings.read_text()

    page, _ = run_script(
        filtagsvis, "--filtags-file", chain["step2"], "--images-dir", moved, *out
    )
    text = page.read_text()
    assert 'class="note"' not in text and text.count('loading="lazy"') == 176
    with Image.open(page.with_name(page.stem + "-cards") / "3-0.jpg") as picture:
        assert picture.size == (3 * 84, 84)  # step 1 kept 3 exemplars

    (moved / next(iter(load_vars(chain["step1"])["exemplar_images"][3][0]))).unlink()
    page, _ = run_script(
        filtagsvis, "--filtags-file", chain["step2"], "--images-dir", moved, *out
    )
    assert re.search(r"1 of \d+ exemplar images are not in ", page.read_text())

    chain["step1"].unlink()
    page, _ = run_script(filtagsvis, "--filtags-file", chain["step2"], *out)
    text = page.read_text()
    assert f"Step 1&#x27;s file {chain['step1']} (named in " in text
    assert "the cards show the tags only" in text and '<table class="acts">' not in text
    assert text.count('class="card"') == 176


def test_vis_refuses_an_images_dir_that_is_no_folder(default_chain, tmp_path) -> None:
    text = refused(
        filtagsvis, "--filtags-file", default_chain["step2"], "--images-dir",
        tmp_path / "nowhere", "--save-dir", tmp_path / "out",
    )  # fmt: skip
    assert f"--images-dir {tmp_path / 'nowhere'} is not a folder" in text
    assert not (tmp_path / "out").exists()


def test_featured_card_stands_for_its_class(tag_page) -> None:
    card = cards.featured(tag_page.cards, "Sandal")
    tagged = [c for c in tag_page.cards if "Sandal" in c.tags]
    assert card in tagged and len(card.tags) == min(len(c.tags) for c in tagged)
    assert cards.featured(tag_page.cards, "no such class") is None


# ------------------------------------------------------------ where it fires


def test_explanation_maps_are_grouped_by_tag_and_link_the_cards(
    default_chain, small_images, tag_page, tmp_path
) -> None:
    image = next((small_images / "Sandal").iterdir())
    result = steps.explain(
        filtags_file=default_chain["step2"], image=image, kind="k", value=5,
        html=True, cards_page=tag_page.path, save_dir=tmp_path,
    )  # fmt: skip
    source = steps.load_tags_run(default_chain["step2"], None, 32)
    network = source.network
    pixels = data.load_image(str(image), network.spec)
    probe = network.probe(1)
    acts, outputs = probe(pixels[None])
    (e,) = explanation.explain_batch(
        [str(image)], [np.asarray(a, np.float64) for a in probe.split_layers(acts)],
        outputs, source.v2["filTags_k"][5], ("k", 5), source.meta2["class_names"],
        source.output_names, network.layer_names,
    )  # fmt: skip
    layer_outputs = {
        layer: network.feature_maps(pixels[None], layer)[0] for layer, _ in e.layers
    }
    maps = explanation.filter_maps(e, layer_outputs)
    assert len(maps) == 4 * 5  # k = 5 in each of the 4 layers
    for m in maps:
        scaled = overlays.scale_layer(layer_outputs[m.layer][None])[0, ..., m.filter]
        np.testing.assert_allclose(m.values, scaled / scaled.max(), rtol=1e-6)
        assert m.values.max() == 1
    groups = explanation.map_groups(e, maps)
    ranking = dict(e.ranking)
    for group in groups:
        if group.name is not None:
            # every active filter tagged with the class: the class's tag count
            assert len(group.maps) == ranking.get(group.name, 0)
            assert all(group.name in m.tags for m in group.maps)
    named = [g.name for g in groups if g.name is not None]
    network_class = e.top5[0][0]
    assert named[:3] == [name for name, _ in e.ranking[:3]] and network_class in named
    assert sorted(result.maps) == sorted(n for n in named if ranking.get(n))
    summed = explanation.summed_map(groups[0].maps, (224, 224))
    total = sum(overlays.upsampled(m.values, (224, 224)) for m in groups[0].maps)
    np.testing.assert_allclose(summed, total / total.max(), rtol=1e-6)

    page = result.page.read_text()
    assert "<h2>Where the active filters fire</h2>" in page
    words = re.sub(r"<[^>]+>", "", page)
    for group in groups[:3]:
        assert f"These filters, tagged {group.name}" in words
    assert f"tagged <mark>{network_class}</mark> (the network's class)" in page
    tag_page_text = tag_page.path.read_text()
    links = re.findall(r'href="([^"#]+)#([^"]+)"', page)
    assert len(links) == len(maps) + sum(len(g.maps) for g in groups)  # table, maps
    for href, anchor in links:
        assert (result.page.parent / href).resolve() == tag_page.path.resolve()
        assert f'id="{anchor}"' in tag_page_text


def test_si_eval_refuses_a_cards_page_that_is_not_there(default_chain, tmp_path):
    image = next((Path(load_vars(default_chain["step1"])["meta"]["images_dir"])
                  / "Bag").iterdir())  # fmt: skip
    text = refused(
        si_eval, "--filtags-file", default_chain["step2"], "--image", image,
        "--html", "--cards-page", tmp_path / "none.html", "--save-dir", tmp_path,
    )  # fmt: skip
    assert f"--cards-page {tmp_path / 'none.html'} is not a file" in text


def test_chunks_bound_the_images_held_at_once(monkeypatch) -> None:
    monkeypatch.setattr(cards, "IMAGES_AT_ONCE", 3)
    exemplars = [["a", "b"], [], ["b", "c"], ["d"], ["a", "e", "f", "g"], ["g"]]
    # filter 4 alone has more images than IMAGES_AT_ONCE: a run of its own
    assert cards._chunks(exemplars) == [[0, 2], [3], [4], [5]]
    assert cards._chunks([[], []]) == []


def test_lazy_card_keeps_its_detail_in_a_template(tag_page) -> None:
    card = tag_page.cards[-1]
    eager = cards.card_html(card, tag_page.classes)
    lazy = cards.card_html(card, tag_page.classes, lazy=True)
    head, detail = re.fullmatch(r"(<div .*?</p>)(.*)</div>", eager, re.S).groups()
    assert lazy == f"{head}<template>{detail}</template></div>"
    assert '<table class="acts">' in detail and "<img " in detail
    bare = cards.FilterCard(card.layer, card.filter, card.tags)
    assert cards.card_html(bare, tag_page.classes, lazy=True) == cards.card_html(
        bare, tag_page.classes
    )
