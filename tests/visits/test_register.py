import pandas as pd
import pytest

from gridmap.errors import InputError
from gridmap.visits.examples import G1, G2, _example
from gridmap.visits.register import register_labels, visit_register


@pytest.fixture(scope="module")
def ex():
    return _example()


def test_register_counts(ex):
    cases = pd.DataFrame(
        {
            "grid_code": [G1, G1, G2, G2],
            "category": ["fire", "dispute", "noise", "fire"],
            "status": ["received", "in_progress", "closed", "dispatched"],
        }
    )
    records = pd.concat(
        [
            ex.records,
            pd.DataFrame(
                {
                    "household_id": ["H09", "H03", "H10"],
                    "visited_at": ["2026-09-29", "2026-08-01", "2026-09-20"],
                    "outcome": ["visited", "visited", "refused"],
                }
            ),
        ]
    )
    reg = visit_register(
        ex.plan,
        ex.households,
        ex.buildings,
        cases=cases,
        records=records,
        as_of="2026-09-30",
        header="code",
    ).set_index("grid_code")
    assert reg.loc[G1, "households"] == 8 and reg.loc[G2, "households"] == 6
    assert reg.loc[G1, "persons"] == 19
    assert reg.loc[
        G1, ["n_elderly_alone", "n_migrant", "n_unemployed", "n_hardship_disabled"]
    ].tolist() == [1, 1, 1, 1]
    assert reg.loc[G1, "must_visit"] == 3 and reg.loc[G2, "must_visit"] == 3
    assert reg.loc[G1, "n_organisation"] == 1 and reg.loc[G1, "use_commercial"] == 1
    assert reg.loc[G1, ["open_hazards", "open_disputes"]].tolist() == [1, 1]
    assert reg.loc[G2, ["open_hazards", "open_disputes"]].tolist() == [1, 0]
    assert reg.loc[G1, "visited"] == 1 and reg.loc[G2, "visited"] == 1  # H03 too old, H10 refused
    assert reg.loc[G1, "share_visited"] == pytest.approx(1 / 8, abs=1e-4)
    assert reg.loc[G2, "share_must_visit_visited"] == pytest.approx(1 / 3, abs=1e-4)


def test_headers_and_guards(ex):
    both = visit_register(ex.plan, ex.households, ex.buildings)
    assert "独居老人 Elderly living alone" in both.columns
    assert both["未结隐患 Open hazards"].isna().all()  # no cases given: unknown, not 0
    zh = visit_register(ex.plan, ex.households, ex.buildings, header="zh")
    assert zh.columns[0] == "网格编码"
    assert set(register_labels()) >= {"n_organisation", "share_visited"}
    with pytest.raises(InputError, match="as_of"):
        visit_register(ex.plan, ex.households, ex.buildings, records=ex.records)
    with pytest.raises(InputError, match="header"):
        visit_register(ex.plan, ex.households, ex.buildings, header="fr")
