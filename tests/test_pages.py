"""filtag.pages: one page template, a shared plotly.js, images, notebook output."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import plotly.graph_objects as go
from PIL import Image
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from filtag import pages


def test_page_escapes_its_title_and_loads_plotly_only_when_asked() -> None:
    text = pages.page("A <b> & c", "<p>body</p>")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>A &lt;b&gt; &amp; c</title>" in text
    assert "<h1>A &lt;b&gt; &amp; c</h1>\n<p>body</p>" in text
    assert "<script" not in text and text.count("<style>") == 1
    with_js = pages.page("t", "", "plotly-x.min.js")
    assert '<script src="plotly-x.min.js" charset="utf-8"></script>' in with_js
    assert pages.paragraphs(["x < y", "z"], "lead") == (
        '<p class="lead">x &lt; y</p>\n<p class="lead">z</p>'
    )


def test_plotly_js_is_written_once_per_folder(tmp_path: Path) -> None:
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    sizes = [
        pages.write_page(tmp_path / f"{n}.html", "t", pages.figure_html(fig), True)
        for n in ("a", "b")
    ]
    script = tmp_path / f"plotly-{get_plotlyjs_version()}.min.js"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html",
                                                          script.name]  # fmt: skip
    assert script.read_text(encoding="utf-8") == get_plotlyjs()
    written = script.stat().st_mtime_ns
    pages.write_page(tmp_path / "c.html", "t", pages.figure_html(fig), True)
    assert script.stat().st_mtime_ns == written  # not written again
    for name, size in zip(("a", "b"), sizes, strict=True):
        text = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
        assert size == len(text.encode()) < 20_000
        assert text.count("Plotly.newPlot") == 1 and script.name in text
    script.write_text("half a scr")  # a damaged copy is replaced
    pages.write_page(tmp_path / "d.html", "t", "", plotly=True)
    assert script.read_text(encoding="utf-8") == get_plotlyjs()
    pages.write_page(tmp_path / "e.html", "t", "<p>no figure</p>")
    assert "<script" not in (tmp_path / "e.html").read_text()


def test_table_marks_rows_and_aligns_names_left() -> None:
    text = pages.table(["class", "n"], [["<b>a</b>", "1"], ["b", "2"]], ["", "x"], (0,))
    assert text == (
        '<table><thead><tr><th class="name">class</th><th>n</th></tr></thead>'
        '<tbody><tr><td class="name"><b>a</b></td><td>1</td></tr>'
        '<tr class="x"><td class="name">b</td><td>2</td></tr></tbody></table>'
    )


def _png(width: int, height: int, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buffer, "PNG")
    return buffer.getvalue()


def _embedded(tag: str) -> Image.Image:
    data = re.search(r'src="data:image/\w+;base64,([^"]+)"', tag)[1]
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_image_tag_keeps_small_images_and_shrinks_big_ones() -> None:
    small = pages.image_tag(_png(28, 28), 224, 'a "b"')
    assert small.startswith('<img src="data:image/png;base64,')
    assert (
        'width="224" alt="a &quot;b&quot;" style="image-rendering:pixelated">' in small
    )
    assert _embedded(small).size == (28, 28)
    big = pages.image_tag(_png(2000, 1000, "RGB"), 120, "x", "thumb")
    assert big.startswith('<img src="data:image/jpeg;base64,')
    assert big.endswith('class="thumb">')
    assert _embedded(big).size == (240, 120)


def test_notebook_bundle_has_the_figure_as_json_and_as_html() -> None:
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout={"title": "T"})
    bundle = pages.notebook_bundle(fig)
    figure = json.loads(json.dumps(bundle["application/vnd.plotly.v1+json"]))
    assert figure["data"][0]["type"] == "scatter"
    assert figure["config"] == pages.PLOTLY_CONFIG
    html = bundle["text/html"]
    cdn = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    assert f'src="{cdn}"' in html and "Plotly.newPlot" in html
    assert bundle["text/plain"] == "<plotly figure: T>"
