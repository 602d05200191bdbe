"""The analyst notebooks run top to bottom on bundled data and leave no files behind."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_four_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


def snapshot(repo: Path) -> set[Path]:
    """Files where a notebook could leave output: the repo's top level, notebooks/ and data/."""
    return {*repo.iterdir(), *(repo / "notebooks").rglob("*"), *(repo / "data").rglob("*")}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    repo = path.parents[1]
    before = snapshot(repo)
    book = nbformat.read(path, as_version=4)
    monkeypatch.chdir(tmp_path)
    env_home = os.environ.get("HOME")
    client = NotebookClient(
        book, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        out
        for cell in book.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    # maps work without the internet (政务外网): Leaflet is inside the page, no CDN link
    html = [
        str(out.get("data", {}).get("text/html", ""))
        for cell in book.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    ]
    maps = [h for h in html if "leaflet" in h.lower()]
    if path.stem != "03_staffing_and_workload":
        assert maps, "the notebook shows a map"
    for h in maps:
        assert "cdn.jsdelivr.net" not in h and "code.jquery.com" not in h
    # the last code cell of every notebook shows something (a table, a map or figures)
    assert book.cells[-1].get("outputs") or book.cells[-2].get("outputs")
    after = snapshot(repo)
    assert after == before, f"the notebook wrote {sorted(map(str, after - before))}"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [], f"the notebook left {left} in its working folder"
    assert os.environ.get("HOME") == env_home
