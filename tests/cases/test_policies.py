from __future__ import annotations

import json

import pytest

from gridmap.cases import Limit, default_policies, load_policies
from gridmap.errors import PolicyError


def test_shipped_policies():
    pol = default_policies()
    p = pol["12345"]
    assert p.clock("answer").limit_for(category="road", urgency="urgent") == Limit(working_days=0)
    assert p.clock("answer").limit_for(category="road", urgency="ordinary") is None
    resolve = p.clock("resolve")
    assert resolve.limit_for(category="road", urgency="ordinary") == Limit(working_days=5)
    assert resolve.limit_for(category="noise", urgency="ordinary") == Limit(working_days=3)
    assert all(3 <= lim.working_days <= 5 for lim in resolve.categories.values())
    o = pol["357"]
    assert o.clock("answer").limit == Limit(hours=3)
    assert o.clock("resolve").limit_for(category="road", urgency="ordinary", hard=True) == Limit(
        working_days=7
    )
    for q in pol.values():
        assert q.warn_at == 0.8 and q.remind.after_working_days == 1
        assert [s.to for s in q.escalation] == ["community", "subdistrict"]


def test_file_override_merges_key_by_key(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "policies": {
                    "12345": {
                        "clocks": {"resolve": {"categories": {"road": {"working_days": 4}}}},
                        "supervise": {"after_working_days": 3},
                    },
                    "city": {
                        "clocks": {"resolve": {"limit": {"working_days": 10}, "stop": "replied"}},
                        "remind": {"after_working_days": 1},
                        "supervise": {"after_working_days": 5},
                        "escalation": [],
                        "warn_at": 0.9,
                    },
                }
            }
        ),
        encoding="utf-8",
    )
    pol = load_policies(
        path, categories=["road", "noise", "parking", "garbage", "elderly", "fire", "water"]
    )
    r = pol["12345"].clock("resolve")
    assert r.categories["road"] == Limit(working_days=4)
    assert r.categories["noise"] == Limit(working_days=3)  # kept
    assert pol["12345"].supervise.after_working_days == 3
    assert pol["city"].warn_share("resolve") == 0.9 and pol["city"].escalation == ()


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"357": {"colour": "red"}}, r"policy '357': unknown key\(s\) \['colour'\]"),
        (
            {"357": {"clocks": {"answer": {"limit": {"minutes": 5}}}}},
            r"clocks.answer.limit: unknown key\(s\) \['minutes'\]",
        ),
        (
            {"357": {"clocks": {"answer": {"limit": {"hours": 3, "working_days": 1}}}}},
            "give exactly one of 'working_days' or 'hours'",
        ),
        ({"357": {"clocks": {"answer": {"limit": {"hours": -1}}}}}, "answer.limit.hours"),
        (
            {"357": {"clocks": {"resolve": {"limit": {"working_days": 2.5}}}}},
            "working_days: expected a whole number",
        ),
        ({"357": {"clocks": {"resolve": {"stop": "done"}}}}, "stop: 'done' is not a case state"),
        ({"357": {"remind": {"after_working_days": 0}}}, "remind.after_working_days"),
        ({"357": {"remind": {"at": "9 o'clock"}}}, "remind.at: expected a time"),
        (
            {
                "357": {
                    "escalation": [
                        {"to": "subdistrict", "after_working_days": 1},
                        {"to": "community", "after_working_days": 2},
                    ]
                }
            },
            "steps must go up the chain",
        ),
        (
            {"357": {"escalation": [{"to": "mayor", "after_working_days": 1}]}},
            r"escalation\[0\].to: 'mayor'",
        ),
        (
            {"357": {"clocks": {"resolve": {"categories": {"ufo": {"working_days": 1}}}}}},
            "unknown category 'ufo'",
        ),
        (
            {
                "new": {
                    "clocks": {"x": {"stop": "replied"}},
                    "remind": {"after_working_days": 1},
                    "supervise": {"after_working_days": 1},
                    "escalation": [],
                }
            },
            "the clock has no limit",
        ),
        ({"new": {"clocks": {}}}, "'remind' is required"),
    ],
)
def test_bad_policies_are_refused(over, match):
    with pytest.raises(PolicyError, match=match):
        load_policies(
            {"policies": over},
            categories=["road", "noise", "parking", "garbage", "elderly", "fire", "water"],
        )


def test_bad_policy_files(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_policies(tmp_path / "none.json")
    p = tmp_path / "p.json"
    p.write_text('{"policies": {}, "extra": 1}', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"unknown top-level key\(s\) \['extra'\]"):
        load_policies(p)
    with pytest.raises(PolicyError, match="unknown policy 'x'"):
        default_policies().get("x")
    with pytest.raises(PolicyError, match="has no clock 'z'"):
        default_policies()["357"].clock("z")
