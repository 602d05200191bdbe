"""``gridmap cases`` and ``gridmap calendar``, run as a user types them (real entry point)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import gridmap

TICKETS = Path(__file__).resolve().parents[2] / "data" / "sample_tickets.csv"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cases-cli")
    out = gridmap("run", cwd=path)
    assert out.returncode == 0, out.stderr
    return path


def test_import_list_show_act_sweep(folder: Path) -> None:
    out = gridmap("cases", "import", TICKETS, cwd=folder)
    assert out.returncode == 0, out.stderr
    assert "200 cases created" in out.stdout
    again = gridmap("cases", "import", TICKETS, cwd=folder)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    out = gridmap("cases", "list", "--overdue", "--now", "2026-12-01 09:00", "--json", cwd=folder)
    data = json.loads(out.stdout)
    assert data["total"] > 0
    first = data["data"][0]
    for key in ("id", "ticket", "status", "grid_code", "received_at", "due_at", "provisional"):
        assert key in first
    assert first["overdue"] is True
    shown = json.loads(gridmap("cases", "show", first["id"], "--json", cwd=folder).stdout)
    assert shown["reporter_phone"] and shown["log"][0]["action"] == "intake"
    ok = gridmap("cases", "act", first["id"], "accept", cwd=folder)
    assert ok.returncode == 0 and "accepted" in ok.stdout
    bad = gridmap("cases", "act", first["id"], "close", cwd=folder)
    assert bad.returncode == 1 and "allowed: dispatch" in bad.stderr
    s1 = gridmap("cases", "sweep", "--now", "2026-12-01 09:00", cwd=folder)
    s2 = gridmap("cases", "sweep", "--now", "2026-12-01 09:00", cwd=folder)
    assert s1.returncode == 0 and " 0 new events" not in s1.stdout
    assert " 0 new events" in s2.stdout
    st = gridmap("calendar", "status", cwd=folder)
    assert st.returncode == 0 and "PROVISIONAL" in st.stdout


def test_bad_file_and_calendar_load(folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "工单编号,来电时间,诉求类别,诉求内容,来源,地址\n"
        "B1,2027-03-01 10:00,noise,吵,hotline,幸福路1号\n"
        "B2,2027-03-01 10:00,外星人,吵,hotline,幸福路2号\n",
        encoding="gbk",
    )
    out = gridmap("cases", "import", bad, cwd=folder)
    assert out.returncode == 1 and "line 3" in out.stderr
    rejects = tmp_path / "rejects.csv"
    out = gridmap("cases", "import", bad, "--skip-bad", "--rejects", rejects, cwd=folder)
    assert out.returncode == 0 and "1 cases created" in out.stdout
    assert "外星人" in rejects.read_text(encoding="utf-8-sig")
    notice = tmp_path / "2027.csv"
    notice.write_text("日期,类型,名称\n2027-01-01,休,元旦\n", encoding="utf-8")
    out = gridmap("calendar", "load", notice, cwd=folder)
    assert out.returncode == 0 and "2027 loaded" in out.stdout and "1 open cases" in out.stdout
    missing = gridmap("cases", "show", 99999, cwd=folder)
    assert missing.returncode == 1 and "no case 99999" in missing.stderr
