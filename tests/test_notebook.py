"""filTagsDEMO.ipynb runs top to bottom offline (the embedded default) and teaches.

The notebook is executed in a fresh kernel in a temporary folder; its outputs
must show the images, the four steps, a hit and a miss explained, and figures in
a form that renders outside JupyterLab too (an HTML snippet with plotly.js, not
only plotly's JSON), with no TensorFlow start-up line anywhere. The snippets are
then opened in headless Chromium, with plotly.js from the disk instead of the
CDN, and must draw their figures.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from tests.test_browser import CHROMIUM, open_in_chromium
from tests.test_quiet import TF_NOISE

REPO = Path(__file__).resolve().parent.parent
PLOTLY = "application/vnd.plotly.v1+json"


@pytest.fixture(scope="module")
def notebook(default_files, tmp_path_factory) -> nbformat.NotebookNode:
    """The notebook, executed offline in a temporary folder."""
    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(REPO / "filTagsDEMO.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=900, kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )  # fmt: skip
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved]))
    try:
        client.execute()  # raises CellExecutionError on any error
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return notebook


def _outputs(notebook) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code"
            for o in cell.get("outputs", [])]  # fmt: skip


def test_the_repository_address_is_one_variable_on_top(notebook) -> None:
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    code = [line for line in first.source.splitlines() if not line.startswith("#")]
    assert code == ['REPO_URL = "https://github.com/<owner>/filtag"']
    setup = [cell.source for cell in notebook.cells if cell.cell_type == "code"][1]
    assert "quiet_tensorflow()" in setup and "is_file()" in setup  # clones once


def test_notebook_runs_the_steps_and_explains_a_hit_and_a_miss(notebook) -> None:
    outputs = _outputs(notebook)
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert "filters per layer: [16, 32, 64, 64]" in text
    for step in range(1, 5):
        assert f"INFO step {step}: " in text  # one line per step
    assert re.search(r"best rule .*: hit rate [\d.]+ % at m = 1, chance 10\.0 %", text)
    assert "| filter | tags (k = 5)" in re.sub(r" +", " ", text)
    assert "Hit at m = 1 (all layers): " in text
    assert "Miss at m = 1 (all layers): " in text
    assert text.count("Classes ranked by the tags of the active filters") == 2
    # no TensorFlow start-up line, in any text output
    shown = text + "".join(
        str(o.get("data", {}).get("text/plain", "")) + "".join(o.get("traceback", []))
        for o in outputs
    )
    noise = [line for line in shown.splitlines() if TF_NOISE.search(line)]
    assert not noise, noise[:5]
    # the images: 4 of each class, then the hit and the miss
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    grids = [h for h in html if "<figure" in h]
    assert [g.count('<img src="data:image/png;base64,') for g in grids] == [40, 2]
    assert "hit: " in grids[1] and "miss: " in grids[1]


def test_figures_carry_html_that_draws_them(notebook, tmp_path) -> None:
    figures = [o for o in _outputs(notebook) if PLOTLY in o.get("data", {})]
    assert len(figures) == 2
    hitrates, tag_map = (f["data"][PLOTLY]["data"] for f in figures)
    assert any(trace.get("name") == "chance (m / 10)" for trace in hitrates)
    assert tag_map[1]["type"] == "heatmap"
    cdn = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    snippets = [f["data"]["text/html"] for f in figures]
    for snippet in snippets:
        assert f'src="{cdn}"' in snippet and snippet.count("Plotly.newPlot") == 1
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} absent: the snippets are not drawn here")
    # as in an exported notebook, with plotly.js from the disk (no internet here)
    script = tmp_path / "plotly.min.js"
    script.write_text(get_plotlyjs(), encoding="utf-8")
    page = tmp_path / "exported.html"
    local = re.compile(rf'src="{re.escape(cdn)}"[^>]*>')  # no CORS check on files
    body = "\n".join(local.sub(f'src="{script.name}">', s) for s in snippets)
    page.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>")
    dom, log = open_in_chromium(page, tmp_path / "shot.png", tmp_path / "profile")
    assert dom.count("js-plotly-plot") == 2  # both drawn
    assert not [line for line in log.splitlines() if "CONSOLE" in line]
