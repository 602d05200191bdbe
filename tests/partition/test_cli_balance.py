"""`gridmap partition --balance households,cases=0.2,care=2`: the real entry point (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import SAMPLE, gridmap

TICKETS = Path(__file__).resolve().parents[2] / "data" / "sample_tickets.csv"


def test_partition_balanced_on_workload(tmp_path: Path) -> None:
    out = gridmap(
        "partition", SAMPLE, "--balance", "households,cases=0.2,care=2", "--cases", TICKETS,
        "--out", "plan.gpkg", "--report", "report.json", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    # 200 tickets of November 2026: all within the year before the newest one
    assert "balancing on workload: 200 case(s) received since 2025-11-30" in text
    assert "Workload 工作量 (households=1,cases=0.2,care=2): CV" in text
    o = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["overall"]
    assert o["share_residential_in_band"] == 1.0  # the band still holds
    assert o["load_weights"] == "households=1,cases=0.2,care=2"
    assert o["load_cv"] < o["load_cv_before"]
    assert o["unlocated_cases"] < 10


def test_partition_balance_refuses_bad_input(tmp_path: Path) -> None:
    out = gridmap("partition", SAMPLE, "--balance", "cases=abc", "--out", "p.gpkg", cwd=tmp_path)
    assert out.returncode == 1
    assert "--balance: weight 'abc' of 'cases' is not a number; write e.g. cases=0.2" in out.stderr
    out = gridmap("partition", SAMPLE, "--cases", TICKETS, "--out", "p.gpkg", cwd=tmp_path)
    assert out.returncode == 1 and "--cases and --cases-since go with --balance" in out.stderr
    out = gridmap(
        "partition", SAMPLE, "--balance", "households,cases", "--cases", TICKETS,
        "--cases-since", "last year", "--out", "p.gpkg", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1 and "--cases-since 'last year' is not a date" in out.stderr
    out = gridmap("partition", SAMPLE, "--balance", "noise", "--out", "p.gpkg", cwd=tmp_path)
    assert out.returncode == 1 and "unknown load term 'noise'" in out.stderr
    assert not (tmp_path / "p.gpkg").exists()


def test_partition_balance_on_cases_of_an_empty_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    assert gridmap("db", "upgrade", "--db", db, cwd=tmp_path).returncode == 0
    out = gridmap(
        "partition", SAMPLE, "--community", "C0001", "--balance", "households,cases=0.2",
        "--db", db, "--out", "p.gpkg", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1
    assert "the store holds none; import them with `gridmap cases import FILE`" in out.stderr
