"""benchmarks/report.py: the results written side by side as JSON, markdown and the plot."""
from __future__ import annotations

import json

from benchmarks import report, report_markdown
from test_benchmark_report_markdown import results


def test_write_puts_json_markdown_and_plot_in_the_folder(tmp_path, monkeypatch):
    plotted = []
    monkeypatch.setattr(report, "plot", lambda data, path: plotted.append(path) or path.write_bytes(b"png"))
    data = results()
    paths = report.write(data, tmp_path / "out", "mine")
    assert [p.name for p in paths] == ["mine.json", "mine.md", "mine.png"]
    assert json.loads(paths[0].read_text()) == data
    assert paths[1].read_text() == report_markdown.markdown(data)
    assert plotted == [paths[2]] and paths[2].read_bytes() == b"png"
