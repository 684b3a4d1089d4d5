"""filtag's pages, opened in a real headless Chromium.

The pages of filTagsvis.py and hitrates-plots.py on both chains, and the demo's
report, tag page and an explanation page, from a copy of the demo's results
folder elsewhere (a folder moved whole keeps working). Chromium loads each page
from its file (no network), runs the plotly.js beside it and returns the
rendered DOM and a screenshot: every figure must be drawn, the console must
stay silent (no script error), and the screenshot must show a picture, not a
blank page.

The filter cards and the maps are used as a person would: a copy of the page
beside it gets a script that types into the search box, submits it, clicks a
tag-map cell with mouse events at the cell's place, and writes what the page
then shows (visible and opened cards, loaded pictures) into the DOM.
"""

from __future__ import annotations

import html
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from filtag import cards, quickstart
from filtag.artifacts import load_vars
from tests.conftest import run_script

filtagsvis = importlib.import_module("filTagsvis")
hitrates_plots = importlib.import_module("hitrates-plots")

CHROMIUM = Path("/usr/bin/chromium")
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
    "--enable-logging=stderr",  # the page's console messages go to stderr
    "--v=0",
]
PAGES = [
    "default-tags", "default-hitrates", "lite0-tags", "lite0-hitrates",
    "demo-report", "demo-tags", "demo-explanation",
]  # fmt: skip


@pytest.fixture(scope="module")
def pages(
    default_files, default_chain, lite0_chain, tmp_path_factory
) -> dict[str, tuple[Path, int, int]]:
    """The pages: {name: (page, number of figures, least number of heatmaps)}."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} absent (make setup-dev installs Debian's chromium)")
    out = tmp_path_factory.mktemp("pages")
    found = {}
    for name, chain in (("default", default_chain), ("lite0", lite0_chain)):
        layers = load_vars(chain["step2"])["meta"]["step1"]["layer_names"]
        page, _ = run_script(
            filtagsvis, "--filtags-file", chain["step2"], "--save-dir", out
        )
        found[f"{name}-tags"] = (page, 1 + 2 * min(4, len(layers)), 1)
        page, _ = run_script(
            hitrates_plots, "--hitrates-file", chain["step4"], "--save-dir", out
        )
        found[f"{name}-hitrates"] = (page, 3, 1)
    demo = quickstart.demo(save_dir=tmp_path_factory.mktemp("demo"))
    moved = tmp_path_factory.mktemp("moved") / "results"
    shutil.copytree(demo.path.parent, moved)
    found["demo-report"] = (moved / demo.path.name, 1, 0)
    found["demo-tags"] = (moved / demo.runs["vis"].path.name, 9, 1)
    (explained,) = moved.glob("*-2-SI-*-explanation.html")
    found["demo-explanation"] = (explained, 0, 0)
    shutil.rmtree(demo.path.parent)  # the moved copy must stand alone
    return found


@pytest.fixture(scope="module")
def demo_cards(pages) -> dict[str, list[str]]:
    """The demo tag page's cards: {class: ids of the cards tagged with it}."""
    page = pages["demo-tags"][0]
    kind, value = re.search(r"-([kq])(\d+)\.html$", page.name).groups()
    v2 = load_vars(next(page.parent.glob("*-TF-*-vars.pkl")))
    names = v2["meta"]["step1"]["layer_names"]
    tags = v2[f"filTags_{kind}"][int(value)]
    return {
        c: [f"{names[a]}-{b}" for a, layer in enumerate(tags)
            for b, filter_tags in enumerate(layer) if c in filter_tags]
        for c in v2["meta"]["class_names"]
    }  # fmt: skip


def open_in_chromium(page: Path, screenshot: Path, profile: Path) -> tuple[str, str]:
    """Load ``page`` in headless Chromium; return the rendered DOM and the log."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            *HEADLESS,
            f"--user-data-dir={profile}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, result.stderr


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_in_chromium(pages, name, tmp_path) -> None:
    page, figures, heatmaps = pages[name]
    shot = tmp_path / "screenshot.png"
    dom, log = open_in_chromium(page, shot, tmp_path / "profile")

    markup = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S)
    assert markup.count('class="plotly-graph-div') == figures
    assert markup.count("js-plotly-plot") == figures  # set once plotly drew it
    assert markup.count('class="main-svg"') >= figures
    assert len(re.findall(r'class="[^"]*\bheatmaplayer\b', markup)) >= heatmaps
    if figures:
        assert re.search(r'<script src="plotly-[\d.]+\.min\.js"', dom)
    text = re.sub(r"<[^>]+>", " ", markup)
    assert not re.search(r"\berror\b|undefined|\bNaN\b", text, re.I)
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert not console, console

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (900, 1200, 3)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50
    inked = (pixels.min(axis=2) < 235).mean()  # text, axes, bars, lines, cells
    assert 0.03 < inked < 0.9, inked


def run_in_chromium(
    page: Path, script: str, profile: Path, fragment: str = ""
) -> tuple[dict, str]:
    """Open a copy of ``page`` (beside it) with ``script`` run after its own.

    ``script`` calls ``report(result)`` once; the result comes back as JSON.
    ``fragment``: the address's ``#...`` part (none when "").

    Returns:
        (the result, Chromium's log).
    """
    done = (
        "function report(result) { var pre = document.createElement('pre'); "
        "pre.id = 'test-result'; pre.textContent = JSON.stringify(result); "
        "document.body.appendChild(pre); }"
    )
    probe = page.with_name(f"probe-{page.name}")
    text = page.read_text(encoding="utf-8")
    probe.write_text(
        text.replace("</body>", f"<script>{done}\n{script}</script></body>"),
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(CHROMIUM), *HEADLESS, f"--user-data-dir={profile}",
         "--virtual-time-budget=15000", "--dump-dom",
         probe.as_uri() + (f"#{fragment}" if fragment else "")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    probe.unlink()
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r'<pre id="test-result">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-3000:]
    return json.loads(html.unescape(found.group(1))), result.stderr


#: Types into the search box, submits layer:filter, clicks a tag-map cell.
CARDS_SCRIPT = """
var out = {};
function ids(selector) {
  return Array.prototype.map.call(document.querySelectorAll(selector),
                                  function (e) { return e.id; });
}
var input = document.getElementById("finder");
var form = document.getElementById("finder-form");
function type(text) { input.value = text; input.dispatchEvent(new Event("input")); }
function submit(text) {
  input.value = text;
  form.dispatchEvent(new Event("submit", {cancelable: true}));
}
out.cards = ids(".card").length;
type("Sandal");
out.sandal = ids(".card:not([hidden])");
out.sandalStatus = document.getElementById("finder-status").textContent;
out.sandalLinks = document.querySelectorAll("#finder-found a").length;
type("");
out.all = ids(".card:not([hidden])").length;
submit("conv4:53");
out.byName = ids(".card.focus");
submit("3 : 7");
out.byIndex = ids(".card.focus");
submit("conv9:1");
out.unknown = document.getElementById("finder-status").textContent;
var box = document.querySelector('.tagmap[data-layer="conv3"]');
box.scrollIntoView({block: "start"});
var graph = box.querySelector(".plotly-graph-div");
var heat = graph._fullData.filter(function (d) { return d.type === "heatmap"; })[0];
var xa = graph._fullLayout[heat.xaxis.replace("x", "xaxis")];
var ya = graph._fullLayout[heat.yaxis.replace("y", "yaxis")];
var place = graph.getBoundingClientRect();
var x = place.left + xa._offset + xa.l2p(12), y = place.top + ya._offset + ya.l2p(2);
var target = document.elementFromPoint(x, y);
var mouse = {bubbles: true, cancelable: true, clientX: x, clientY: y, button: 0,
             view: window};
["mousemove", "mousedown", "mouseup", "click"].forEach(function (kind) {
  target.dispatchEvent(new MouseEvent(kind, mouse));
});
setTimeout(function () {
  out.clicked = ids(".card.focus");
  out.hash = window.location.hash;
  var picture = document.querySelector(".card.focus img");
  out.picture = picture && [picture.complete, picture.naturalWidth,
                            picture.naturalHeight];
  report(out);
}, 2000);
"""


def test_tag_page_cards_search_and_clicks(pages, demo_cards, tmp_path) -> None:
    page = pages["demo-tags"][0]
    out, log = run_in_chromium(page, CARDS_SCRIPT, tmp_path / "profile")
    assert out["cards"] == 176 and out["all"] == 176
    assert out["sandal"] == demo_cards["Sandal"] and out["sandal"]
    n = len(demo_cards["Sandal"])
    assert out["sandalStatus"] == (
        f"{n} filters on this page carry the class \u201cSandal\u201d:"
    )
    assert out["sandalLinks"] == n
    assert out["byName"] == ["conv4-53"] and out["byIndex"] == ["conv4-7"]
    assert out["unknown"] == "No layer conv9 (layers: conv1, conv2, conv3, conv4)."
    assert out["clicked"] == ["conv3-12"] and out["hash"] == "#conv3-12"
    assert out["picture"] == [True, 9 * 84, 84]  # loaded when scrolled to
    assert not [line for line in log.splitlines() if "CONSOLE" in line]


#: Reads the explanation page: groups, their pictures, the links to the cards.
MAPS_SCRIPT = """
window.addEventListener("load", function () {
  var groups = Array.prototype.map.call(document.querySelectorAll(".group"),
    function (group) {
      var images = Array.prototype.slice.call(group.querySelectorAll("img"));
      return {
        title: group.querySelector("h3").textContent,
        images: images.length,
        drawn: images.filter(function (i) {
          return i.complete && i.naturalWidth > 0; }).length,
        summed: group.querySelectorAll("figure.summed").length,
        links: Array.prototype.map.call(group.querySelectorAll("a"),
          function (a) { return a.getAttribute("href"); })
      };
    });
  report({groups: groups});
});
"""


def test_explanation_page_shows_maps_by_tag_linked_to_cards(pages, tmp_path) -> None:
    page = pages["demo-explanation"][0]
    out, _ = run_in_chromium(page, MAPS_SCRIPT, tmp_path / "profile")
    groups = out["groups"]
    assert len(groups) >= 3
    for group in groups[:3]:
        assert re.fullmatch(
            r"These filters, tagged [\w-]+( \(the network's class\))?, fire here "
            r"\(rank \d of the tags, \d+ active filters?\)",
            group["title"],
        ), group["title"]
        assert group["summed"] == 1 and group["images"] == len(group["links"]) + 1
        assert group["drawn"] == group["images"]  # every overlay is drawn
    assert any("(the network's class)" in g["title"] for g in groups)
    # a filter's link opens its card on the tag page
    href = groups[0]["links"][0]
    tag_page, fragment = href.split("#")
    assert tag_page == pages["demo-tags"][0].name
    out, _ = run_in_chromium(
        page.parent / tag_page, FOCUS_SCRIPT, tmp_path / "p2", fragment
    )
    assert out["focus"] == [unquote(fragment)]
    assert out["picture"] == [True, 9 * 84, 84]


#: Reports the opened card and its picture, once the page has settled.
FOCUS_SCRIPT = """
window.addEventListener("load", function () {
  setTimeout(function () {
    var img = document.querySelector(".card.focus img");
    report({
      cards: document.querySelectorAll(".card").length,
      focus: Array.prototype.map.call(document.querySelectorAll(".card.focus"),
                                      function (c) { return c.id; }),
      picture: img && [img.complete, img.naturalWidth, img.naturalHeight]
    });
  }, 2000);
});
"""


def test_lite0_tag_page_has_cards_with_pictures(pages, lite0_chain, tmp_path) -> None:
    page = pages["lite0-tags"][0]
    v2 = load_vars(lite0_chain["step2"])
    names = v2["meta"]["step1"]["layer_names"]
    filters = v2["meta"]["filters_per_layer"]
    last = names[-1]
    out, _ = run_in_chromium(page, FOCUS_SCRIPT, tmp_path / "profile", f"{last}-5")
    assert out["cards"] == sum(filters[-4:]) > cards.LAZY_CARDS
    # past LAZY_CARDS the details wait in templates; opening a card fills it
    assert page.read_text().count("<template>") == out["cards"]
    assert out["focus"] == [f"{last}-5"]
    n = len(load_vars(lite0_chain["step1"])["exemplar_images"][-1][5])
    assert out["picture"] == [True, n * 96, 96]
