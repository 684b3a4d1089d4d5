"""filtag.plots, filTagsvis.py and hitrates-plots.py on the chains' real step files.

Every expected number is counted here again, straight from the step files'
lists (sets and loops), never with filtag.plots' own helpers.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from filtag import plots
from filtag.artifacts import load_vars
from filtag.errors import FiltagError
from tests.conftest import run_script

filtagsvis = importlib.import_module("filTagsvis")
hitrates_plots = importlib.import_module("hitrates-plots")

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module", params=["default_chain", "lite0_chain"])
def chain(request) -> dict[str, Path]:
    """Steps 1-4 of the Fashion-MNIST CNN, then of EfficientNet-Lite0."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def v2(chain) -> dict:
    """The chain's step-2 variables."""
    return load_vars(chain["step2"])


@pytest.fixture(scope="module")
def v4(chain) -> dict:
    """The chain's step-4 variables."""
    return load_vars(chain["step4"])


def shown_layers(v2: dict) -> list[int]:
    """The layers the pages show by default: the last 4."""
    n = len(v2["meta"]["step1"]["layer_names"])
    return list(range(max(0, n - 4), n))


def call_main(script, *argv: object) -> tuple[int, str, str]:
    """Run a script's ``main``; return its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = script.main([str(a) for a in argv])
        except SystemExit as exc:  # a flag refused by the parser
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_offline_page(page: Path) -> str:
    """Check that ``page`` loads plotly.js from the file beside it, nothing else.

    The script is plotly's own bundle, written once per folder; the page names
    no other address (the bundle itself names a map server, for geo plots only).
    """
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", text)
    assert sources == [f"plotly-{get_plotlyjs_version()}.min.js"]
    assert (page.parent / sources[0]).read_text(encoding="utf-8") == get_plotlyjs()
    assert "Plotly.newPlot" in text and "plotly.js v" not in text
    assert not re.search(r"https?://|cdn\.", text)
    return text


# --------------------------------------------------------------- names, choices


def test_names_come_from_the_meta(v2) -> None:
    meta = v2["meta"]
    n_layers = len(v2["filTags_k"][5])
    assert plots.layer_names(meta, n_layers) == meta["step1"]["layer_names"]
    assert plots.class_names(meta, v2["filTags_k"]) == meta["class_names"]
    # A file of the original FilTag scripts has no meta.
    assert plots.layer_names(None, 2) == ["layer 0", "layer 1"]
    tagged = {name for layer in v2["filTags_k"][0] for tags in layer for name in tags}
    assert plots.class_names(None, v2["filTags_k"]) == sorted(tagged)


def test_choose_layers(v2) -> None:
    names = v2["meta"]["step1"]["layer_names"]
    assert plots.choose_layers(None, names) == shown_layers(v2)
    assert plots.choose_layers([names[-1], "0", names[-1]], names) == [
        len(names) - 1,
        0,
    ]
    for bad in ("no_such_layer", str(len(names)), "-1"):
        with pytest.raises(FiltagError, match=r"^--layers '.*' is neither"):
            plots.choose_layers([bad], names)


def test_rule_text_names_the_mean_rule_where_step_2_used_it() -> None:
    assert plots.rule_text("k", 5) == "k = 5: the 5 most active filters of the layer"
    assert plots.rule_text("q", 25, 16).startswith("q = 25: the 25 % most active")
    for kind, value, filters in (
        ("k", 0, 9),
        ("k", 17, 16),
        ("q", 0, 9),
        ("q", 101, 9),
    ):
        assert plots.rule_text(kind, value, filters).endswith(
            "above the layer's mean activation"
        )
    assert "most active" in plots.rule_text("k", 16, 16)


# -------------------------------------------------------------------- tag views


@pytest.mark.parametrize("kind", ["k", "q"])
def test_tag_map_shows_each_filters_tags(v2, kind) -> None:
    classes = v2["meta"]["class_names"]
    names = v2["meta"]["step1"]["layer_names"]
    for value, layers in v2[f"filTags_{kind}"].items():
        for a in shown_layers(v2):
            tags = layers[a]
            fig = plots.tag_map_figure(
                tags, classes, names[a], f"{kind}={value}", hover_chars=10**9
            )
            line, heat = fig.data
            expected = [[int(c in set(t)) for t in tags] for c in classes]
            assert heat.z.tolist() == expected
            assert list(heat.y) == classes and list(heat.x) == list(range(len(tags)))
            assert line.y.tolist() == [len(t) for t in tags]
            assert line.type == ("bar" if len(tags) <= plots.BAR_FILTERS else "scatter")
            for c, f in [(c, f) for f, t in enumerate(tags) for c in t][:3]:
                cell = heat.text[classes.index(c)][f]
                assert cell.startswith("tagged with this class")
                assert all(name in cell for name in tags[f][: plots.HOVER_TAGS])
            untagged = [
                (c, f)
                for c, row in enumerate(expected)
                for f, v in enumerate(row)
                if not v
            ]
            for c, f in untagged[:3]:
                assert heat.text[c][f].startswith("not tagged with it")
            assert names[a] in heat.hovertemplate


def test_tag_map_of_a_big_layer_hovers_without_cell_text(v2) -> None:
    classes = v2["meta"]["class_names"]
    tags = v2["filTags_k"][0][-1]
    fig = plots.tag_map_figure(tags, classes, "last", "k=0", hover_chars=0)
    assert fig.data[1].text is None and "%{z}" in fig.data[1].hovertemplate
    for f, names in enumerate(tags):  # the bars still list each filter's tags
        assert all(name in fig.data[0].customdata[f] for name in names[:20])


def test_tags_histogram_counts_filters(v2, monkeypatch) -> None:
    names = v2["meta"]["step1"]["layer_names"]
    shown = shown_layers(v2)
    for value, layers in v2["filTags_q"].items():
        fig = plots.tags_histogram_figure(
            [layers[a] for a in shown], [names[a] for a in shown], "rule"
        )
        assert [bar.name for bar in fig.data] == [names[a] for a in shown]
        for bar, a in zip(fig.data, shown, strict=True):
            per_number = Counter(len(tags) for tags in layers[a])
            assert dict(zip(bar.x, bar.y, strict=True)) == {
                n: per_number.get(n, 0) for n in bar.x
            }, value
            assert bar.y.sum() == len(layers[a])
    # Few bars: each bar counts a range of numbers of tags.
    monkeypatch.setattr(plots, "HISTOGRAM_BINS", 3)
    layers = v2["filTags_k"][0]
    fig = plots.tags_histogram_figure([layers[a] for a in shown], ["a"] * 4, "")
    most = max(len(t) for a in shown for t in layers[a])
    width = -(-(most + 1) // 3)
    for bar, a in zip(fig.data, shown, strict=True):
        assert len(bar.y) <= 3 and bar.y.sum() == len(layers[a])
        for b, (count, (text, _)) in enumerate(zip(bar.y, bar.customdata, strict=True)):
            low = b * width
            assert text == (str(low) if width == 1 else f"{low}-{low + width - 1}")
            assert count == sum(low <= len(t) < low + width for t in layers[a])


def test_cotag_counts_shared_filters(v2) -> None:
    classes = v2["meta"]["class_names"]
    names = v2["meta"]["step1"]["layer_names"]
    for value, layers in v2["filTags_k"].items():
        for a in shown_layers(v2):
            sets = [set(tags) for tags in layers[a]]
            heat = plots.cotag_figure(layers[a], classes, names[a], "").data[0]
            expected = [
                [sum(x in s and y in s for s in sets) for x in classes] for y in classes
            ]
            assert heat.z.tolist() == expected, (value, a)
            diagonal = [sum(c in s for s in sets) for c in classes]
            assert np.diag(heat.z).tolist() == diagonal
            assert heat.z.dtype.kind == "u" and heat.z.dtype.itemsize <= 2


# --------------------------------------------------------------- hit-rate views


@pytest.mark.parametrize("prefix", ["totalhit", "meanhit"])
def test_hitrate_lines_are_the_rates_in_percent(v4, prefix) -> None:
    variants = ("k", "k_ll", "q", "q_ll")
    rates = {variant: v4[f"{prefix}_{variant}"] for variant in variants}
    n_classes = v4["meta"]["n_classes"]
    fig = plots.hitrate_figure(rates, "title", "subtitle", n_classes)
    values = v4["meta"]["k_q"]
    lines = [line for line in fig.data if line.name != f"chance (m / {n_classes})"]
    assert len(lines) == 4 * len(values)
    by_axis = {"x": "k", "x2": "k_ll", "x3": "q", "x4": "q_ll"}
    seen = set()
    for line in lines:
        variant = by_axis[line.xaxis]
        kind, value = line.legendgroup[0], int(line.legendgroup[1:])
        assert variant.startswith(kind) and line.name.startswith(f"{kind} = {value}")
        by_m = v4[f"{prefix}_{variant}"][value]
        assert list(line.x) == sorted(by_m) == v4["meta"]["m"]
        assert list(line.y) == [100 * by_m[m] for m in line.x]
        assert line.showlegend == (variant in ("k", "q"))
        seen.add((variant, value))
    assert seen == {(variant, value) for variant in variants for value in values}
    # one chance line per subplot: 100 m / classes, in the legend once
    chance = [line for line in fig.data if line not in lines]
    assert sorted(line.xaxis for line in chance) == sorted(by_axis)
    for line in chance:
        assert list(line.x) == v4["meta"]["m"]
        assert list(line.y) == [100 * min(1, m / n_classes) for m in line.x]
        assert line.line.dash == "dot"
    assert [line.showlegend for line in chance].count(True) == 1
    assert len(plots.hitrate_figure(rates, "t", "s").data) == len(lines)


def test_class_hitrates_heatmap(v4) -> None:
    m = v4["meta"]["m"][0]
    n_classes = v4["meta"]["n_classes"]
    fig = plots.class_hitrate_figure({"k": v4["hit_k"], "q": v4["hit_q"]}, m, n_classes)
    for heat, kind in zip(fig.data, ("k", "q"), strict=True):
        hit = v4[f"hit_{kind}"]
        assert list(heat.y) == list(hit) and list(heat.x) == [
            str(v) for v in v4["meta"]["k_q"]
        ]
        expected = [[100 * hit[c][v][m] for v in v4["meta"]["k_q"]] for c in hit]
        assert heat.z.tolist() == expected
        # white at chance (m / classes), red below, blue above
        (low, _), (middle, white), (high, _) = heat.colorscale
        assert (low, middle, high) == (0, min(1, m / n_classes), 1)
        assert white == "#f7f7f7"
    assert f"Chance: {100 * m / n_classes:.1f} %" in fig.layout.title.text


# ----------------------------------------------------------------------- scripts


def test_filtagsvis_writes_an_offline_page(chain, v2, tmp_path) -> None:
    page, printed = run_script(
        filtagsvis, "--filtags-file", chain["step2"], "--save-dir", tmp_path
    )
    assert page.parent == tmp_path and page.is_file()
    network = v2["meta"]["network"]
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d-\d{{4}}-VIS-{network}-k5\.html", page.name)
    text = assert_offline_page(page)
    names = v2["meta"]["step1"]["layer_names"]
    for a in shown_layers(v2):
        assert f"Layer {names[a]}: which filters carry" in text
    assert text.count("Plotly.newPlot") == 1 + 2 * len(shown_layers(v2))
    assert printed.strip().splitlines()[-1] == str(page)

    q_page, _ = run_script(
        filtagsvis, "--filtags-file", chain["step2"], "--kind", "q", "--value", 0,
        "--layers", f"0,{names[1]}", "--save-dir", tmp_path,
    )  # fmt: skip
    text = assert_offline_page(q_page)
    assert q_page.name.endswith("-q0.html") and q_page != page
    assert text.count("Plotly.newPlot") == 1 + 2 * 2
    assert f"Layer {names[0]}:" in text and f"Layer {names[-1]}:" not in text


def test_hitrates_plots_writes_page_and_pngs(chain, v4, tmp_path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} absent (make setup-dev installs it)")
    page, printed = run_script(
        hitrates_plots, "--hitrates-file", chain["step4"], "--save-dir", tmp_path
    )
    assert page.name.endswith(f"-HRP-{v4['meta']['network']}-hitrates.html")
    text = assert_offline_page(page)
    assert text.count("Plotly.newPlot") == 3
    assert printed.strip().splitlines()[-1] == str(page)
    prefix = page.name.removesuffix("hitrates.html")
    for suffix in ("total", "mean", "classes"):
        png = page.with_name(f"{prefix}hitrates-{suffix}.png")
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width == plots.PNG_WIDTH
            assert len(image.convert("RGB").getcolors(1 << 20)) > 50
    assert (tmp_path / f"{prefix}warnings.log").read_text() == ""


def test_hitrates_plots_without_browser_writes_the_page_and_warns(
    default_chain, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    code, out, err = call_main(
        hitrates_plots, "--hitrates-file", default_chain["step4"],
        "--save-dir", tmp_path,
    )  # fmt: skip
    assert code == 0
    page = Path(out.strip().splitlines()[-1])
    assert_offline_page(page)
    assert not list(tmp_path.glob("*.png"))
    warning = (
        tmp_path / page.name.replace("hitrates.html", "warnings.log")
    ).read_text()
    assert "PNG images not written: no working Chrome/Chromium" in warning
    assert "BROWSER_PATH" in err


# --------------------------------------------------------------------- bad input


def assert_refused(script, tmp_path: Path, *argv: object) -> str:
    """Run ``script`` on bad input: exit 2, one stderr line, no file written."""
    code, out, err = call_main(script, *argv, "--save-dir", tmp_path / "out")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    return err


def test_filtagsvis_refuses_bad_input(default_chain, tmp_path) -> None:
    step2 = default_chain["step2"]
    err = assert_refused(filtagsvis, tmp_path, "--filtags-file", step2, "--value", 7)
    assert "--value 7 is not in" in err and "(k values: 0, 1, 2, 5, 17, 25)" in err
    err = assert_refused(filtagsvis, tmp_path, "--filtags-file", default_chain["step1"])
    assert "--filtags-file" in err and "step2filtertags.py wrote" in err
    err = assert_refused(filtagsvis, tmp_path, "--filtags-file", step2, "--layers", "x")
    assert "--layers 'x' is neither a layer name nor an index 0-3" in err
    err = assert_refused(filtagsvis, tmp_path, "--filtags-file", step2, "--kind", "p")
    assert "--kind: expected one of k, q; Received: 'p'" in err
    err = assert_refused(filtagsvis, tmp_path)
    assert "--filtags-file is required" in err


def test_hitrates_plots_refuses_bad_input(default_chain, tmp_path) -> None:
    step2 = default_chain["step2"]
    err = assert_refused(hitrates_plots, tmp_path, "--hitrates-file", step2)
    assert "--hitrates-file" in err and "step4hitrates.py wrote" in err
    err = assert_refused(hitrates_plots, tmp_path, "--hitrates-file", tmp_path / "x")
    assert "not found" in err
