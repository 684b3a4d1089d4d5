"""filTagsDEMO.ipynb runs top to bottom offline (the embedded default) without error."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent


def test_demo_notebook_runs(default_files, tmp_path: Path) -> None:
    notebook = nbformat.read(REPO / "filTagsDEMO.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=900, kernel_name="python3",
        resources={"metadata": {"path": str(REPO)}},
    )  # fmt: skip
    client.execute()  # raises CellExecutionError on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]  # fmt: skip
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert "filters per layer: [16, 32, 64, 64]" in text
    assert "| filter | tags (k = 5)" in text.replace("   ", " ").replace("  ", " ")
    assert "Classes ranked by the tags of the active filters" in text
    figures = [
        o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figures) == 1
    heatmap = figures[0]["data"]["application/vnd.plotly.v1+json"]["data"][1]
    assert heatmap["type"] == "heatmap"
