from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
from casefixtures import COMMUNITY, SUBDISTRICT, grids, locator

from gridmap.cases import Placement, check_unique_tickets, intake, intake_many
from gridmap.crs import gcj02_to_wgs84
from gridmap.errors import CaseError, ConflictError, CoordinateError, CRSError, PolicyError

# a point inside the fixture's first grid, as a phone would report it (GCJ-02)
WGS = (121.43066, 31.26850)


def inside_gcj() -> tuple[float, float]:
    from gridmap.crs import wgs84_to_gcj02

    return wgs84_to_gcj02(*WGS)


def ticket(**over):
    lon, lat = inside_gcj()
    t = {
        "source": "12345",
        "ticket_no": "GD2026091800001",
        "category": "噪音扰民",
        "description": "夜间施工噪音",
        "reporter_name": "王伟",
        "reporter_phone": "13912345678",
        "lon": lon,
        "lat": lat,
        "crs": "GCJ-02",
        "received_at": "2026-09-18 10:00",
    }
    t.update(over)
    return t


def test_intake_locates_and_freezes_the_placement():
    c = intake(ticket(), case_id="C1", locate=locator())
    assert c.status == "received" and c.version == 1
    assert (c.community_id, c.subdistrict, c.plan_id, c.plan_version) == (
        COMMUNITY,
        SUBDISTRICT,
        "plan-1",
        2,
    )
    assert c.grid_code.startswith(COMMUNITY)
    assert (c.source, c.category, c.urgency, c.policy) == ("hotline", "noise", "ordinary", "12345")
    assert c.crs_given == "gcj02" and c.lon_given == ticket()["lon"]
    assert c.lon == pytest.approx(WGS[0], abs=1e-7) and c.lat == pytest.approx(WGS[1], abs=1e-7)
    assert c.deadlines["resolve"].due.isoformat() == "2026-09-22T23:59:59+08:00"  # noise: 3
    assert "answer" not in c.deadlines  # ordinary 12345 ticket: no same-day clock
    with pytest.raises(FrozenInstanceError):
        c.status = "closed"  # type: ignore[misc]


def test_policy_and_urgency_choices():
    urgent = intake(ticket(category="fire"), case_id="C1", locate=locator())
    assert urgent.urgency == "urgent"
    assert urgent.deadlines["answer"].due.isoformat() == "2026-09-18T23:59:59+08:00"
    online = intake(ticket(source="网上居委会", hard=True), case_id="C2", locate=locator())
    assert online.policy == "357"
    assert online.deadlines["answer"].due.isoformat() == "2026-09-18T13:00:00+08:00"
    assert online.deadlines["resolve"].due.isoformat() == "2026-09-29T23:59:59+08:00"  # 7 wd
    late = intake(ticket(received_at="2026-12-29 09:00"), case_id="C3", locate=locator())
    assert late.provisional and late.deadlines["resolve"].provisional


def test_unlocated_cases():
    outside = intake(ticket(lon=121.6, lat=31.2, crs="wgs84"), case_id="C1", locate=locator())
    assert outside.status == "unlocated" and outside.grid_code is None
    address_only = intake(
        ticket(lon=None, lat=None, crs=None, address="幸福路8号"), case_id="C2", locate=locator()
    )
    assert address_only.status == "unlocated" and address_only.address == "幸福路8号"
    fixed = intake(ticket(), case_id="C3", locate=Placement("G", "C", "S"))
    assert fixed.grid_code == "G"


@pytest.mark.parametrize(
    ("over", "error", "match"),
    [
        ({"category": "外星人"}, CaseError, "unknown category '外星人'; use one of noise"),
        ({"source": "pigeon"}, CaseError, "unknown source 'pigeon'; use one of hotline"),
        ({"description": "   "}, CaseError, "description is empty"),
        ({"lon": 31.27, "lat": 121.43, "crs": "wgs84"}, CoordinateError, "swapped"),
        ({"lon": 31.27, "lat": 88.0, "crs": "wgs84"}, CoordinateError, "swapped"),
        ({"lon": 2.35, "lat": 48.85, "crs": "wgs84"}, CoordinateError, "outside China"),
        ({"lon": float("nan"), "lat": 31.2}, CoordinateError, "give both lon and lat"),
        ({"lon": "abc"}, CoordinateError, "'abc' is not a number"),
        ({"crs": "mars2000"}, CRSError, "mars2000"),
        ({"crs": None}, CRSError, "has no crs; say which system"),
        ({"lon": None, "lat": None}, CaseError, "neither a coordinate"),
        ({"urgency": "whenever"}, CaseError, "urgency 'whenever'"),
        ({"policy": "999"}, PolicyError, "unknown policy '999'"),
    ],
)
def test_intake_errors(over, error, match):
    with pytest.raises(error, match=match):
        intake(ticket(**over), case_id="C1", locate=locator())


def test_batch_intake_names_rows_and_checks_ticket_numbers():
    rows = [ticket(), ticket(ticket_no="GD2"), ticket(category="nope")]
    with pytest.raises(CaseError, match="ticket row 2: unknown category 'nope'"):
        intake_many(rows, locate=locator())
    with pytest.raises(ConflictError, match="ticket number 'GD2' of source 'hotline'"):
        intake_many([ticket(ticket_no="GD2"), ticket(ticket_no="GD2")], locate=locator())
    same_no_other_source = [ticket(ticket_no="GD2"), ticket(ticket_no="GD2", source="app")]
    cases = intake_many(same_no_other_source, ids=["A", "B"], locate=locator())
    check_unique_tickets(cases)
    assert [c.id for c in cases] == ["A", "B"]


def test_personal_data_is_redacted():
    c = intake(ticket(), case_id="C1", locate=locator())
    r = c.redacted()
    assert (r.reporter_name, r.reporter_phone) == ("王*", "139****5678")
    assert c.reporter_phone == "13912345678"


def test_fixture_point_is_where_we_think():
    lon, lat = gcj02_to_wgs84(*inside_gcj())
    assert locator(grids())(lon, lat) is not None
