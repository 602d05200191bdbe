from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
from casefixtures import COMMUNITY, GRID, SUBDISTRICT, at, case_in

from gridmap.cases import (
    ACTIONS,
    ROLES,
    STATES,
    TRANSITIONS,
    Actor,
    Deadline,
    Handler,
    Placement,
    actions_for,
    allowed_actions,
    apply,
    can_see,
    replay,
)
from gridmap.errors import (
    CaseError,
    ConflictError,
    PermissionDeniedError,
    ScopeError,
    TransitionError,
)

UNITS = {
    "grid_worker": GRID,
    "grid_chief": GRID,
    "community": COMMUNITY,
    "subdistrict": SUBDISTRICT,
    "department": "D1",
}


def actor(role: str) -> Actor:
    return Actor(f"{role}-1", role, UNITS.get(role))


# every field an action of the table may require, with a valid value
FIELDS = {
    "reason": "重复工单",
    "note": "已修复",
    "satisfaction": "satisfied",
    "handler": Handler(GRID, "grid"),
    "due": Deadline(at("2026-10-09T23:59:59")),
    "departments": ["D2"],
    "placement": Placement(GRID, COMMUNITY, SUBDISTRICT, "plan-1", 2),
    "into": "C0",
}
WHEN = at("2026-09-21T10:00:00")  # before the fixture's resolve deadline


def kwargs_for(action: str) -> dict:
    trans = next(row[action] for row in TRANSITIONS.values() if action in row)
    kw = {k: FIELDS[k] for k in trans.requires}
    if action == "close":  # the fixture's callback was unsatisfied: closing needs a reason
        kw["reason"] = "诉求已解释"
    return kw


def pick_role(roles) -> str:
    # the most specific role allowed (admin last), so scope checks are exercised
    return sorted(roles, key=lambda r: (r == "admin", ROLES.index(r)))[0]


PAIRS = [(s, a) for s in STATES for a in ACTIONS]


def test_table_is_closed():
    assert set(TRANSITIONS) == set(STATES)
    for row in TRANSITIONS.values():
        for t in row.values():
            assert t.to in STATES
            assert t.roles and t.roles <= set(ROLES)
            assert "viewer" not in t.roles


@pytest.mark.parametrize(("state", "action"), PAIRS)
def test_every_state_action_pair(state, action):
    row = TRANSITIONS[state]
    case = case_in(state)
    if action in row:
        trans = row[action]
        role = pick_role(trans.roles)
        new, entry = apply(case, action, actor(role), at=WHEN, **kwargs_for(action))
        assert new.status == trans.to
        assert new.version == case.version + 1
        assert (entry.from_state, entry.to_state, entry.action) == (state, trans.to, action)
        assert (entry.actor_id, entry.role, entry.at) == (f"{role}-1", role, WHEN)
        assert case.status == state  # the input is not mutated
    else:
        with pytest.raises(TransitionError, match=f"cannot '{action}' a case in state") as err:
            apply(case, action, actor("admin"), at=WHEN, **kwargs_for(action))
        assert err.value.allowed == tuple(row)
        assert (err.value.state, err.value.action) == (state, action)
        for allowed in row:
            assert allowed in str(err.value)
        if not row:
            assert "none (the case is final)" in str(err.value)


@pytest.mark.parametrize(("state", "action"), [(s, a) for s in STATES for a in TRANSITIONS[s]])
def test_roles_outside_the_table_are_refused(state, action):
    trans = TRANSITIONS[state][action]
    for role in set(ROLES) - trans.roles:
        with pytest.raises(PermissionDeniedError, match=f"role '{role}' may not '{action}'"):
            apply(case_in(state), action, actor(role), at=WHEN, **kwargs_for(action))


@pytest.mark.parametrize(("state", "action"), [(s, a) for s in STATES for a in TRANSITIONS[s]])
def test_required_fields_are_checked(state, action):
    trans = TRANSITIONS[state][action]
    for missing in trans.requires:
        kw = kwargs_for(action)
        kw.pop(missing)
        with pytest.raises(CaseError, match=f"'{action}' requires {missing}"):
            apply(case_in(state), action, actor(pick_role(trans.roles)), at=WHEN, **kw)


def test_allowed_actions_per_role():
    for state in STATES:
        assert allowed_actions(state) == tuple(TRANSITIONS[state])
        assert allowed_actions(state, "viewer") == ()
        assert set(allowed_actions(state, "admin")) == set(TRANSITIONS[state])
    assert allowed_actions("dispatched", "grid_worker") == ("start", "return")
    with pytest.raises(CaseError, match="unknown state"):
        allowed_actions("lost")


def test_scope_of_unit_bound_actors():
    case = case_in("dispatched")
    other = Actor("w9", "grid_worker", f"{COMMUNITY}009")
    with pytest.raises(ScopeError, match="outside grid_worker"):
        apply(case, "start", other, at=WHEN)
    assert can_see(Actor("v", "viewer", SUBDISTRICT), case)
    assert not can_see(Actor("v", "viewer", "elsewhere"), case)
    assert can_see(Actor("d", "department", "D1"), case)  # summoned
    assert not can_see(Actor("d", "department", "D9"), case)
    assert can_see(Actor("x", "dispatcher"), case)
    assert actions_for(case, other) == ()
    assert actions_for(case, Actor("w1", "grid_worker", GRID)) == ("start", "return")
    with pytest.raises(PermissionDeniedError, match="unknown role"):
        Actor("x", "mayor")


def test_happy_path_with_log_replay():
    d = Actor("d1", "dispatcher")
    w = Actor("w1", "grid_worker", GRID)
    c = case_in("received", version=1, summons=(), handlers=())
    log = []
    steps = [
        ("accept", d, {}),
        ("dispatch", d, {"handler": ("grid", GRID), "co_handlers": [("department", "城管")]}),
        ("start", w, {}),
        ("reply", w, {"note": "已修复"}),
        ("callback", d, {"satisfaction": "满意"}),
        ("close", d, {}),
    ]
    for action, who, kw in steps:
        c, entry = apply(c, action, who, at=WHEN, **kw)
        log.append(entry)
    assert c.status == "closed" and c.version == 7 and c.satisfaction == "satisfied"
    assert [h.unit for h in c.handlers] == [GRID, "城管"] and c.lead.kind == "grid"
    assert replay(log) == "closed"
    with pytest.raises(CaseError, match="starts from"):
        replay(log[1:])


def test_log_entries_are_immutable():
    _, entry = apply(
        case_in("received"), "reject", Actor("d", "dispatcher"), at=WHEN, reason="非本辖区"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.note = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.data["reason"] = "changed"  # type: ignore[index]
    assert entry.data["reason"] == "非本辖区"


def test_optimistic_lock():
    with pytest.raises(ConflictError, match="version 3, not 2") as err:
        apply(case_in("received"), "accept", Actor("d", "dispatcher"), at=WHEN, expected_version=2)
    assert err.value.current_version == 3


def test_extension_rules():
    w = Actor("w1", "grid_worker", GRID)
    c = case_in("in_progress")
    with pytest.raises(CaseError, match="before the deadline"):
        apply(
            c, "request_extension", w, at="2026-09-25 08:00", reason="需要采购", due=FIELDS["due"]
        )
    with pytest.raises(CaseError, match="not after the current deadline"):
        apply(c, "request_extension", w, at=WHEN, reason="x", due="2026-09-23 23:59:59")
    c2, _ = apply(c, "request_extension", w, at=WHEN, reason="需要采购", due=FIELDS["due"])
    with pytest.raises(PermissionDeniedError, match="unit above"):
        apply(
            replace(c2, handlers=(Handler(COMMUNITY, "community"),)),
            "approve_extension",
            Actor("c", "community", COMMUNITY),
            at=WHEN,
            due=FIELDS["due"],
        )
    c3, entry = apply(
        c2, "approve_extension", Actor("c", "community", COMMUNITY), at=WHEN, due=FIELDS["due"]
    )
    assert c3.status == "in_progress" and c3.deadlines["resolve"] == FIELDS["due"]
    assert c3.lead.due == FIELDS["due"] and entry.data["due"].startswith("2026-10-09")


def test_callback_close_and_reopen_rules():
    d = Actor("d", "dispatcher")
    c, _ = apply(case_in("replied"), "callback", d, at=WHEN, satisfaction="不满意")
    assert c.satisfaction == "unsatisfied"
    with pytest.raises(CaseError, match="reopen the case, or give a reason"):
        apply(c, "close", d, at=WHEN)
    closed, _ = apply(c, "close", d, at=WHEN, reason="诉求不合理，已解释")
    assert closed.status == "closed"
    again, _ = apply(c, "reopen", d, at=WHEN, reason="居民不满意")
    assert again.reopened == 1 and again.handlers == () and again.satisfaction is None
    ok, _ = apply(case_in("replied"), "callback", d, at=WHEN, satisfaction="基本满意")
    with pytest.raises(CaseError, match="only an unsatisfied callback reopens"):
        apply(ok, "reopen", d, at=WHEN, reason="x")
    with pytest.raises(CaseError, match="satisfaction 'great'"):
        apply(case_in("replied"), "callback", d, at=WHEN, satisfaction="great")


def test_summons_and_report_in():
    s = Actor("s", "subdistrict", SUBDISTRICT)
    c, entry = apply(
        case_in("in_progress", summons=()),
        "summon",
        s,
        at=WHEN,
        departments=["城管", "住建"],
        due="2026-09-22 10:00",
    )
    assert [x.department for x in c.summons] == ["城管", "住建"]
    assert entry.data["departments"] == ["城管", "住建"]
    with pytest.raises(CaseError, match="already summoned"):
        apply(c, "summon", s, at=WHEN, departments=["城管"], due="2026-09-22 10:00")
    c2, _ = apply(c, "report_in", Actor("g", "department", "城管"), at=WHEN)
    assert [x.signed_in_at is not None for x in c2.summons] == [True, False]
    with pytest.raises(CaseError, match="already reported in"):
        apply(c2, "report_in", Actor("g", "department", "城管"), at=WHEN)
    with pytest.raises(ScopeError, match="not summoned"):
        apply(c2, "report_in", Actor("g", "department", "环保"), at=WHEN)


def test_escalation_goes_up_the_chain_and_stops():
    w = Actor("w", "grid_chief", GRID)
    c, _ = apply(case_in("in_progress"), "escalate", w, at=WHEN, reason="需社区协调")
    assert c.level == "community"
    c, _ = apply(c, "escalate", Actor("c", "community", COMMUNITY), at=WHEN, reason="需街道")
    assert c.level == "subdistrict"
    with pytest.raises(CaseError, match="top level"):
        apply(c, "escalate", Actor("a", "admin"), at=WHEN, reason="x")


def test_place_and_merge():
    d = Actor("d", "dispatcher")
    c = case_in("unlocated", grid_code=None, community_id=None, subdistrict=None)
    placed, entry = apply(c, "place", d, at=WHEN, placement=FIELDS["placement"])
    assert placed.status == "received" and placed.grid_code == GRID and placed.plan_version == 2
    merged, _ = apply(case_in("received"), "merge", d, at=WHEN, into="C0")
    assert merged.merged_into == "C0"
    with pytest.raises(CaseError, match="into itself"):
        apply(case_in("received"), "merge", d, at=WHEN, into="C1")
    with pytest.raises(CaseError, match="appears twice"):
        apply(
            case_in("accepted"),
            "dispatch",
            d,
            at=WHEN,
            handler=("grid", GRID),
            co_handlers=[("grid", GRID)],
        )


def test_every_state_has_a_chinese_and_an_english_name():
    from gridmap.cases.vocabulary import STATE_NAMES, STATES

    assert list(STATE_NAMES) == list(STATES)
    assert all(zh and en and zh != en for zh, en in STATE_NAMES.values())
