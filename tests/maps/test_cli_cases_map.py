"""``gridmap map --kind cases``: the store's cases over a plan, run as a user types it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from clirun import gridmap
from maphtml import cases_data, external

TICKETS = Path(__file__).resolve().parents[2] / "data" / "sample_tickets.csv"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample city run (plan published in ./gridmap.db) with the 200 sample tickets."""
    path = tmp_path_factory.mktemp("cases-map-cli")
    out = gridmap("run", cwd=path)
    assert out.returncode == 0, out.stderr
    out = gridmap("cases", "import", TICKETS, cwd=path)
    assert out.returncode == 0 and "200 cases created" in out.stdout, out.stderr
    return path


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    t = pd.read_csv(TICKETS, encoding="utf-8-sig", dtype=str)
    t["day"] = t["来电时间"].str[:10]
    return t


def test_map_kind_cases_from_the_store(folder: Path, tickets: pd.DataFrame) -> None:
    out = gridmap("map", "gridmap-out/plan.gpkg", "--kind", "cases", "-o", "cases.html", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert "wrote cases.html (200 cases on" in out.stdout
    html = (folder / "cases.html").read_text(encoding="utf-8")
    d = cases_data(html)
    assert d["n"] == 200 and external(html) == []  # --assets inline by default: offline
    assert sorted(d["C"][k][0] for k in d["c"]) == sorted(tickets["诉求类别"])
    # no personal data without --personal
    for col in ("联系人", "联系电话", "诉求内容", "工单编号"):
        assert tickets[col].iloc[0] not in html
    out = gridmap(
        "map", "gridmap-out/plan.gpkg", "--kind", "cases", "--personal", "-o", "p.html", cwd=folder
    )
    assert out.returncode == 0, out.stderr
    personal = (folder / "p.html").read_text(encoding="utf-8")
    assert str(tickets["联系电话"].iloc[0]) in personal and tickets["联系人"].iloc[0] in personal


def test_filters(folder: Path, tickets: pd.DataFrame) -> None:
    args = ["map", "gridmap-out/plan.gpkg", "--kind", "cases", "-o", "f.html"]
    out = gridmap(*args, "--from", "2026-11-10", "--to", "2026-11-15", cwd=folder)
    assert out.returncode == 0, out.stderr
    want = int(tickets["day"].between("2026-11-10", "2026-11-15").sum())
    assert 0 < want < 200
    assert cases_data((folder / "f.html").read_text(encoding="utf-8"))["n"] == want
    out = gridmap(*args, "--category", "噪音扰民", "--category", "water", cwd=folder)
    assert out.returncode == 0, out.stderr
    d = cases_data((folder / "f.html").read_text(encoding="utf-8"))
    assert d["n"] == int(tickets["诉求类别"].isin(["noise", "water"]).sum())
    out = gridmap(*args, "--month", "2026-12", cwd=folder)
    assert out.returncode == 0 and "wrote f.html (0 cases" in out.stdout


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--category", "外星人"], "unknown category '外星人'"),
        (["--status", "finished"], "unknown case status ['finished']"),
        (["--month", "2026-13"], "is not a month"),
        (["--month", "2026-11", "--from", "2026-11-01"], "either a month or from/to"),
        (["--from", "2026-11-20", "--to", "2026-11-01"], "the period is empty"),
    ],
)
def test_bad_options_exit_1_saying_what_to_fix(folder: Path, extra: list[str], words: str) -> None:
    out = gridmap(
        "map", "gridmap-out/plan.gpkg", "--kind", "cases", "-o", "bad.html", *extra, cwd=folder
    )
    assert out.returncode == 1 and words in out.stderr, out.stderr
    assert not (folder / "bad.html").exists()
