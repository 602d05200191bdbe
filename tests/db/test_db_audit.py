"""Audit rows with the households they disclosed, written in one statement on PostGIS."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gridmap.db import Store, write_audit
from gridmap.db.audit import query_audit


def test_an_audit_row_keeps_every_household_it_disclosed(store: Store) -> None:
    ids = [f"H{k:04d}" for k in range(700, 0, -1)] + ["H0003"]  # unsorted, one repeated
    with store.session() as s:
        write_audit(
            s,
            actor="li",
            action="read_residents",
            entity="grid",
            entity_id="G1",
            grid_code="G1",
            households=ids,
            after={"households": 700},
        )
        write_audit(s, actor="li", action="note", entity="plan", entity_id=1, households=[])
        write_audit(
            s,
            actor="wang",
            action="read_residents",
            entity="grid",
            entity_id="G2",
            grid_code="G2",
            households=["H0005"],
        )
    page = query_audit(store, household="H0005")
    assert [r["actor"] for r in page.rows] == ["li", "wang"]
    first = query_audit(store, household="H0700").rows
    assert len(first) == 1 and first[0]["grid_code"] == "G1"
    assert sorted(first[0]["households"]) == sorted(set(ids))
    with store.session() as s:
        n = s.execute(sa.text("SELECT count(*) FROM audit_households")).scalar_one()
    assert n == 701  # 700 distinct for the first row, 1 for the third, none for the note


def test_audit_households_stay_append_only(store: Store) -> None:
    with store.session() as s:
        write_audit(
            s,
            actor="li",
            action="read_residents",
            entity="grid",
            entity_id="G1",
            households=["H1", "H2"],
        )
    with pytest.raises(sa.exc.DBAPIError), store.session() as s:
        s.execute(sa.text("UPDATE audit_households SET household_id = 'H9'"))
    assert [r["households"] for r in query_audit(store, household="H1").rows] == [["H1", "H2"]]
