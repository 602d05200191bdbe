"""Vectorised intake (gridmap.cases.batch) gives what intake() gives, row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from casefixtures import grids, locator

from gridmap.cases import Placement, frame_cases, intake, intake_frame, synth_cases
from gridmap.tables import read_table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    t = synth_cases(grids(), n=400, seed=5)
    t = t.drop(columns=["true_grid", "resolve_due", "replied_at", "late"]).astype(object)
    t["received_at"] = [str(v) for v in t["received_at"]]
    t.loc[3, "category"] = "zzz"
    t.loc[4, "lon"] = None
    t.loc[5, "lat"] = "abc"
    t.loc[6, "crs"] = "foo"
    t.loc[7, "lon"], t.loc[7, "lat"] = t.loc[7, "lat"], t.loc[7, "lon"]
    t.loc[8, "hard"] = "否"
    t.loc[9, "description"] = " "
    t.loc[10, "received_at"] = "2026-01-05T10:00:00+00:00"
    t.loc[11, "urgency"] = "紧急"
    t.loc[12, "received_at"] = "2026/01/05"
    return t


def test_same_cases_and_messages_as_intake(table: pd.DataFrame) -> None:
    loc = locator()

    def many(lon, lat):
        found = [loc(x, y) for x, y in zip(lon, lat, strict=True)]
        return found, [None] * len(found)

    ids = [f"C{i}" for i in range(len(table))]
    cases, errors = intake_frame(table, ids=ids, locate_many=many)
    got = {c.id: c for c in frame_cases(cases)}
    messages = dict(errors)
    for i, rec in enumerate(table.to_dict("records")):
        try:
            want = intake(rec, case_id=ids[i], locate=loc)
        except Exception as exc:  # noqa: BLE001
            assert messages[i] == str(exc)
            continue
        assert got[ids[i]] == want
    assert sorted(messages) == [3, 4, 5, 6, 7, 9, 12]


def test_hard_text_is_read_as_yes_or_no() -> None:
    place = Placement("G", "C", "S")
    base = {
        "source": "online",
        "category": "road",
        "description": "坑",
        "address": "x",
        "received_at": "2026-09-18 10:00",
    }
    assert intake({**base, "hard": "否"}, case_id="1", locate=place).hard is False
    assert intake({**base, "hard": "是"}, case_id="1", locate=place).hard is True


def test_reader_encodings_aliases_and_lines(tmp_path) -> None:
    text = '\ufeff经度,纬度,备注\n118.1,32.1,"多\n行"\n\n118.2,32.2,x\n'
    for enc in ("utf-8", "gb18030"):
        path = tmp_path / f"t-{enc}.csv"
        path.write_bytes(text.encode(enc) if enc == "utf-8" else text[1:].encode(enc))
        t = read_table(path, aliases={"经度": "lon", "纬度": "lat"})
        assert t.frame.columns.tolist() == ["lon", "lat", "备注"]
        assert t.lines.tolist() == [2, 5]
    with pytest.raises(ValueError, match="both mean 'lon'"):
        read_table(b"lon,lng\n1,2\n", aliases={"lon": "lon", "lng": "lon"})
    with pytest.raises(ValueError, match="no column 'X'"):
        read_table(b"a\n1\n", mapping=["lon=X"])
    assert np.array_equal(read_table(b"a\n1\n2\n").lines, [2, 3])
