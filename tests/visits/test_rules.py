import json

import pytest

from gridmap.errors import VisitRulesError
from gridmap.layers import SENSITIVE_FLAGS
from gridmap.visits.rules import CADENCES, default_rules, load_rules


def test_shipped_rules_cover_the_six_kinds_and_every_sensitive_flag():
    rules = default_rules()
    assert len(rules.codes) == 6
    flags = {f for c in rules.categories for f in c.flags}
    assert flags == set(SENSITIVE_FLAGS)
    assert all(c.cadence == "monthly" and c.responsible == "chief" for c in rules.categories)
    assert {t.code: t.cadence for t in rules.teams} == {
        "self_governance": "weekly",
        "basic": "monthly",
        "professional": "quarterly",
    }
    assert rules.hazard_categories and rules.dispute_categories


def test_team_cadence_and_overrides(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "teams": {"professional": {"cadence": "monthly"}},
                "categories": {
                    "elderly_alone": {"team": "self_governance"},
                    "migrant": {"responsible": "worker"},
                    "school": {
                        "label_zh": "学校",
                        "target": "building",
                        "uses": ["public"],
                        "name_pattern": "学",
                        "team": "professional",
                    },
                },
            },
            ensure_ascii=False,
        ),
        encoding="utf-8-sig",
    )
    r = load_rules(path)
    assert r.category("elderly_alone").cadence == "weekly"
    assert r.category("migrant").responsible == "worker"
    assert r.category("school").cadence == "monthly"  # the team's, as overridden
    assert set(CADENCES) == {"weekly", "monthly", "quarterly"}


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (
            {"categories": {"elderly_along": {"cadence": "weekly"}}},
            "unknown category 'elderly_along'",
        ),
        ({"categories": {"migrant": {"cadence": "fortnightly"}}}, "bad cadence 'fortnightly'"),
        ({"teams": {"basic": {"cadence": "yearly"}}}, "bad cadence 'yearly'"),
        ({"categories": {"migrant": {"team": "nobody"}}}, "unknown team 'nobody'"),
        ({"categories": {"migrant": {"responsible": "mayor"}}}, "'mayor' is not one of"),
        ({"categories": {"organisation": {"uses": ["castle"]}}}, "building uses"),
        ({"categories": {"migrant": {"colour": "red"}}}, r"unknown key\(s\) \['colour'\]"),
        ({"register": {"hazard_categories": ["volcano"]}}, "unknown case category 'volcano'"),
        ({"nonsense": 1}, "unknown key"),
    ],
)
def test_bad_rules_name_the_entry(over, match):
    with pytest.raises(VisitRulesError, match=match):
        load_rules(over)


def test_bad_file(tmp_path):
    with pytest.raises(VisitRulesError, match="does not exist"):
        load_rules(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(VisitRulesError, match="invalid JSON"):
        load_rules(bad)


def test_select_unknown():
    with pytest.raises(VisitRulesError, match="unknown visit category 'x'"):
        default_rules().select(["x"])
