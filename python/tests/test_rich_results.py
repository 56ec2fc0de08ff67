"""Rich results (issue 16) through the Python client: display() bundles as RichResult objects with
decoded accessors, the same outputs the TypeScript interfaces give (test/rich-results.test.ts)."""

from __future__ import annotations

import zlib
from pathlib import Path

from wasmbox import RichResult, Sandbox

# The program test/rich-results.test.ts runs too: every interface is checked against the same outputs.
CHART = (Path(__file__).resolve().parents[2] / "test" / "fixtures" / "rich-chart.py").read_text("utf-8")
TABLE_HTML = "<table><tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></table>"


def test_a_displayed_png_comes_back_as_bytes_and_the_html_table_as_the_main_result(sandbox: Sandbox) -> None:
    result = sandbox.run(CHART)
    assert result.ok and result.stdout == "drawn\n"
    chart, table = result.results
    assert isinstance(chart, RichResult) and not chart.is_main_result
    assert chart.formats() == ["image/png", "text/plain"] and chart.text == "Chart()"
    assert chart.png is not None and chart.png.startswith(b"\x89PNG\r\n\x1a\n")
    # The IDAT chunk inflates to the two red rows the guest drew.
    idat = chart.png[chart.png.index(b"IDAT") + 4 : chart.png.index(b"IEND") - 8]
    assert zlib.decompress(idat) == (b"\x00" + b"\xff\x00\x00" * 2) * 2
    assert table.is_main_result and table.html == TABLE_HTML and table.png is None
    assert table.text == "Table([('a', 1), ('b', 2)])"


def test_svg_markdown_latex_and_json_accessors_and_an_error_entry(sandbox: Sandbox) -> None:
    code = """
class Many:
    def _repr_svg_(self): return '<svg xmlns="http://www.w3.org/2000/svg"/>'
    def _repr_markdown_(self): return "**b**"
    def _repr_latex_(self): return "$x$"
    def _repr_json_(self): return {"n": [1, 2]}
    def _repr_html_(self): raise ValueError("no html")
display(Many())
"""
    result = sandbox.run(code)
    assert result.ok
    [many] = result.results
    assert many.svg == '<svg xmlns="http://www.w3.org/2000/svg"/>' and many.markdown == "**b**" and many.latex == "$x$"
    assert many.json == {"n": [1, 2]} and many.html is None
    assert many.error is not None and "_repr_html_: ValueError: no html" in many.error


def test_a_run_without_rich_results_has_an_empty_tuple_and_sessions_carry_them(sandbox: Sandbox) -> None:
    assert sandbox.run("1 + 1").results == ()
    with sandbox.session() as session:
        session.run("class T:\n    def _repr_markdown_(self): return '*t*'")
        [t] = session.run("T()").results
        assert t.markdown == "*t*" and t.is_main_result


def test_rich_results_past_max_output_bytes_end_the_run_as_output_limit(sandbox: Sandbox) -> None:
    result = sandbox.run("class H:\n    def _repr_html_(self): return 'h' * 3000\nfor i in range(10):\n    display(H())", max_output_bytes=10_000)
    assert result.status == "output_limit" and len(result.results) == 3
