"""filtag's pages, opened in a real headless Chromium.

The pages of filTagsvis.py and hitrates-plots.py on both chains, and the demo's
report, tag page and an explanation page, from a copy of the demo's results
folder elsewhere (a folder moved whole keeps working). Chromium loads each page
from its file (no network), runs the plotly.js beside it and returns the
rendered DOM and a screenshot: every figure must be drawn, the console must
stay silent (no script error), and the screenshot must show a picture, not a
blank page.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from filtag import quickstart
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
    return found


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
