"""``gridmap cases stats`` and ``gridmap cases workload``, run as a user types them."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from clirun import gridmap

TICKETS = Path(__file__).resolve().parents[2] / "data" / "sample_tickets.csv"
NOW = "2026-12-01 09:00"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cases-stats-cli")
    out = gridmap("run", cwd=path)
    assert out.returncode == 0, out.stderr
    out = gridmap("cases", "import", TICKETS, cwd=path)
    assert out.returncode == 0 and "200 cases created" in out.stdout, out.stderr
    return path


def test_stats_json_table_and_csv(folder: Path) -> None:
    out = gridmap(
        "cases",
        "stats",
        "--by",
        "community",
        "--month",
        "2026-11",
        "--now",
        NOW,
        "--json",
        cwd=folder,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["by"] == "community" and data["from"].startswith("2026-11-01")
    rows = data["data"]
    # the 200 tickets of the sample file, all received in November 2026, none handled yet
    assert sum(r["received"] for r in rows) == 200
    assert all(r["open"] == r["received"] and r["on_time"] == 0 for r in rows)
    assert all(r["overdue"] == r["due"] for r in rows)  # due and not replied = overdue now
    assert all(r["per_1000_households"] > 0 for r in rows)
    same = json.loads(
        gridmap(
            "cases",
            "stats",
            "--by",
            "community",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--now",
            NOW,
            "--json",
            cwd=folder,
        ).stdout
    )
    assert same["data"] == rows
    table = gridmap("cases", "stats", "--by", "community", "--month", "2026-11", cwd=folder)
    assert table.returncode == 0 and "C0001" in table.stdout
    target = folder / "stats.csv"
    out = gridmap("cases", "stats", "--month", "2026-11", "--csv", target, cwd=folder)
    assert out.returncode == 0 and target.read_bytes().startswith(b"\xef\xbb\xbf")
    with target.open(encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh))
    assert header[0] == "单位" and "按时办结率" in header


def test_stats_after_a_reply(folder: Path) -> None:
    listed = json.loads(gridmap("cases", "list", "--limit", "1", "--json", cwd=folder).stdout)
    case = listed["data"][0]
    received = case["received_at"][:16]
    for action, extra in (
        ("accept", []),
        ("dispatch", ["--handler", f"grid:{case['grid_code']}"]),
        ("start", []),
        ("reply", ["--note", "已处理"]),
    ):
        out = gridmap("cases", "act", case["id"], action, *extra, "--at", received, cwd=folder)
        assert out.returncode == 0, out.stderr
    out = gridmap(
        "cases", "stats", "--by", "grid", "--month", "2026-11", "--now", NOW, "--json", cwd=folder
    )
    row = next(r for r in json.loads(out.stdout)["data"] if r["unit"] == case["grid_code"])
    assert row["on_time"] == 1 and row["resolved"] == 1 and row["resolve_days_median"] == 0.0


def test_workload_and_bad_input(folder: Path) -> None:
    out = gridmap("cases", "workload", "--month", "2026-11", "--json", cwd=folder)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    with sqlite3.connect(folder / "gridmap.db") as con:  # one row per grid of the published plan
        (n_grids,) = con.execute("SELECT n_grids FROM plans WHERE status = 'published'").fetchone()
    assert n_grids >= 60
    assert sum(r["cases"] for r in data["data"]) == 200 and len(data["data"]) == n_grids
    assert data["far_above"] == [r["grid_code"] for r in data["data"] if r["far_above"]]
    for r in data["data"]:
        if r["far_above"]:
            assert r["cases_per_worker_month"] > 1.5 * r["community_median"]
    strict = json.loads(
        gridmap(
            "cases", "workload", "--month", "2026-11", "--factor", "3", "--json", cwd=folder
        ).stdout
    )
    assert set(strict["far_above"]) <= set(data["far_above"])
    bad = gridmap("cases", "stats", "--by", "street", cwd=folder)
    assert bad.returncode == 1 and "by='street' is not one of" in bad.stderr
    bad = gridmap("cases", "stats", "--month", "2026-13", cwd=folder)
    assert bad.returncode == 1 and "is not a month" in bad.stderr
    bad = gridmap("cases", "workload", "--month", "2026-11", "--factor", "0", cwd=folder)
    assert bad.returncode == 1 and "factor must be a positive number" in bad.stderr
