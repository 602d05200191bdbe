"""SLA policies (时限规则) as data: clocks, warnings, 催办, 督办 and escalation.

A policy (``gridmap/cases/data/policies.json``, overridable by a file) has:

* named **clocks** (``answer``, ``resolve`` …). Each has a ``limit`` in
  ``working_days`` or ``hours`` and optional overrides ``urgent``, ``hard``
  (疑难) and per-category ``categories`` (precedence: hard > urgent > category >
  limit; a clock with no applicable limit does not run for that case), and a
  ``stop`` state: the clock stops once the case reaches that state's stage or a
  later one (see :data:`gridmap.cases.states.STAGE`);
* ``warn_at``: warning at this share of the allowed time (default 0.8), per
  policy or per clock;
* ``remind`` (催办): at ``at`` o'clock on the ``after_working_days``-th working
  day after the due day (default: the next working day, 09:00);
* ``supervise`` (督办): ``after_working_days`` further working days after the
  reminder day;
* ``escalation``: steps up the chain grid → community → sub-district (小事不出网格、
  大事不出社区), each ``after_working_days`` after the due day (0 = at the
  moment it is overdue).

Shipped policies: ``12345`` (urgent: first feedback the same day; ordinary:
finished within 5 working days, 3 for some categories) and ``357`` (online
office: answer within 3 hours, resolve within 5 working days, hard items 7).

Unknown keys and bad values raise :class:`~gridmap.errors.PolicyError` naming
the policy, the path of the key and the fix.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gridmap.cases.calendar import Deadline, WorkCalendar, default_calendar
from gridmap.cases.vocabulary import ORG_LEVELS, STATES
from gridmap.errors import PolicyError

__all__ = [
    "Limit",
    "ClockRule",
    "FollowUp",
    "EscalationStep",
    "Policy",
    "Policies",
    "load_policies",
    "default_policies",
]

_POLICY_KEYS = {"name_zh", "name_en", "warn_at", "clocks", "remind", "supervise", "escalation"}
_CLOCK_KEYS = {"label_zh", "limit", "urgent", "hard", "categories", "stop", "warn_at"}
_LIMIT_KEYS = {"working_days", "hours"}


@dataclass(frozen=True)
class Limit:
    """A time limit: whole working days *or* wall-clock hours.

    Examples
    --------
    >>> Limit(working_days=5).describe(), Limit(hours=3).describe()
    ('5 working days', '3 hours')
    """

    working_days: int | None = None
    hours: float | None = None

    def __post_init__(self) -> None:
        if (self.working_days is None) == (self.hours is None):
            raise PolicyError("a limit has exactly one of working_days or hours")

    def describe(self) -> str:
        """Human-readable limit."""
        if self.working_days is not None:
            return f"{self.working_days} working days"
        return f"{self.hours:g} hours"

    def due(self, received_at: Any, calendar: WorkCalendar) -> Deadline:
        """Return the deadline of this limit from ``received_at``."""
        return calendar.due(received_at, working_days=self.working_days, hours=self.hours)


@dataclass(frozen=True)
class ClockRule:
    """One named clock of a policy (see the module docstring)."""

    name: str
    stop: str
    label_zh: str = ""
    limit: Limit | None = None
    urgent: Limit | None = None
    hard: Limit | None = None
    categories: Mapping[str, Limit] = field(default_factory=dict)
    warn_at: float | None = None

    def limit_for(self, *, category: str, urgency: str, hard: bool = False) -> Limit | None:
        """Return the limit that applies (hard > urgent > category > limit), or None."""
        if hard and self.hard is not None:
            return self.hard
        if urgency == "urgent" and self.urgent is not None:
            return self.urgent
        return self.categories.get(category, self.limit)


@dataclass(frozen=True)
class FollowUp:
    """A follow-up (催办/督办) ``after_working_days`` working days later, at ``at``."""

    after_working_days: int
    at: dt.time = dt.time(9, 0)


@dataclass(frozen=True)
class EscalationStep:
    """Escalate to ``to`` (community, subdistrict) ``after_working_days`` after the due day."""

    to: str
    after_working_days: int


@dataclass(frozen=True)
class Policy:
    """An SLA policy: clocks and what happens when they run late."""

    name: str
    name_zh: str
    name_en: str
    clocks: tuple[ClockRule, ...]
    remind: FollowUp
    supervise: FollowUp
    escalation: tuple[EscalationStep, ...]
    warn_at: float = 0.8

    def clock(self, name: str) -> ClockRule:
        """Return the clock named ``name``."""
        for c in self.clocks:
            if c.name == name:
                return c
        raise PolicyError(
            f"policy {self.name!r} has no clock {name!r}; it has {[c.name for c in self.clocks]}"
        )

    def deadlines(
        self,
        received_at: Any,
        *,
        category: str,
        urgency: str,
        hard: bool = False,
        calendar: WorkCalendar | None = None,
    ) -> dict[str, Deadline]:
        """Deadlines of every clock that applies to a case.

        Examples
        --------
        >>> p = default_policies()["12345"]
        >>> d = p.deadlines("2026-09-18 10:00", category="fire", urgency="urgent")
        >>> {k: v.due.isoformat() for k, v in d.items()}
        {'answer': '2026-09-18T23:59:59+08:00', 'resolve': '2026-09-22T23:59:59+08:00'}
        >>> sorted(p.deadlines("2026-09-18 10:00", category="road", urgency="ordinary"))
        ['resolve']
        """
        cal = calendar or default_calendar()
        out = {}
        for c in self.clocks:
            lim = c.limit_for(category=category, urgency=urgency, hard=hard)
            if lim is not None:
                out[c.name] = lim.due(received_at, cal)
        return out

    def warn_share(self, clock: str) -> float:
        """Share of allowed time at which ``clock`` warns."""
        c = self.clock(clock)
        return c.warn_at if c.warn_at is not None else self.warn_at


class Policies(Mapping[str, Policy]):
    """The policies by name (read-only mapping).

    Examples
    --------
    >>> sorted(default_policies())
    ['12345', '357']
    >>> default_policies().get("357").clock("answer").limit
    Limit(working_days=None, hours=3.0)
    """

    def __init__(self, policies: Iterable[Policy]) -> None:
        self._by_name = {p.name: p for p in policies}

    def __getitem__(self, name: str) -> Policy:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str | None, default: Any = None) -> Policy:
        """Return the policy ``name``; raise :class:`~gridmap.errors.PolicyError` if unknown."""
        if name in self._by_name:
            return self._by_name[name]
        raise PolicyError(f"unknown policy {name!r}; defined policies: {sorted(self._by_name)}")

    def __repr__(self) -> str:
        return f"Policies({sorted(self._by_name)})"


# ---------------------------------------------------------------------- parsing
def _check_keys(obj: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise PolicyError(f"{where}: expected an object, got {type(obj).__name__} {obj!r}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return obj


def _int(value: Any, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyError(f"{where}: expected a whole number ≥ {minimum}, got {value!r}")
    return value


def _limit(obj: Any, where: str) -> Limit:
    spec = _check_keys(obj, _LIMIT_KEYS, where)
    if len(spec) != 1:
        raise PolicyError(
            f"{where}: give exactly one of 'working_days' or 'hours', got {sorted(spec)}"
        )
    if "working_days" in spec:
        return Limit(working_days=_int(spec["working_days"], f"{where}.working_days"))
    hours = spec["hours"]
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 90:
        raise PolicyError(f"{where}.hours: expected a number of hours in (0, 2160], got {hours!r}")
    return Limit(hours=float(hours))


def _share(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise PolicyError(f"{where}: expected a share in (0, 1) such as 0.8, got {value!r}")
    return float(value)


def _time(value: Any, where: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError as exc:
        raise PolicyError(f"{where}: expected a time like '09:00', got {value!r}") from exc


def _follow_up(obj: Any, where: str) -> FollowUp:
    spec = _check_keys(obj, {"after_working_days", "at"}, where)
    if "after_working_days" not in spec:
        raise PolicyError(f"{where}: 'after_working_days' is required")
    return FollowUp(
        _int(spec["after_working_days"], f"{where}.after_working_days", minimum=1),
        _time(spec.get("at", "09:00"), f"{where}.at"),
    )


def _clock(name: str, obj: Any, where: str, categories: set[str] | None) -> ClockRule:
    spec = _check_keys(obj, _CLOCK_KEYS, where)
    stop = spec.get("stop")
    if stop not in STATES:
        raise PolicyError(f"{where}.stop: {stop!r} is not a case state; use one of {list(STATES)}")
    cats: dict[str, Limit] = {}
    raw_cats = spec.get("categories", {})
    if not isinstance(raw_cats, Mapping):
        raise PolicyError(f"{where}.categories: expected an object of category code → limit")
    for code, lim in raw_cats.items():
        if categories is not None and code not in categories:
            raise PolicyError(
                f"{where}.categories: unknown category {code!r}; known: {sorted(categories)}"
            )
        cats[str(code)] = _limit(lim, f"{where}.categories.{code}")
    rule = ClockRule(
        name=name,
        stop=str(stop),
        label_zh=str(spec.get("label_zh", "")),
        limit=_limit(spec["limit"], f"{where}.limit") if "limit" in spec else None,
        urgent=_limit(spec["urgent"], f"{where}.urgent") if "urgent" in spec else None,
        hard=_limit(spec["hard"], f"{where}.hard") if "hard" in spec else None,
        categories=cats,
        warn_at=_share(spec["warn_at"], f"{where}.warn_at") if "warn_at" in spec else None,
    )
    if rule.limit is None and rule.urgent is None and rule.hard is None and not cats:
        raise PolicyError(f"{where}: the clock has no limit; add 'limit': {{'working_days': 5}}")
    return rule


def _policy(name: str, obj: Any, categories: set[str] | None) -> Policy:
    where = f"policy {name!r}"
    spec = _check_keys(obj, _POLICY_KEYS, where)
    for key in ("clocks", "remind", "supervise", "escalation"):
        if key not in spec:
            raise PolicyError(f"{where}: '{key}' is required")
    clocks = _check_keys(spec["clocks"], set(spec["clocks"]), f"{where}.clocks")
    if not clocks:
        raise PolicyError(f"{where}.clocks: define at least one clock (e.g. 'resolve')")
    steps_raw = spec["escalation"]
    if not isinstance(steps_raw, list):
        raise PolicyError(f"{where}.escalation: expected a list of steps")
    steps = []
    last_rank, last_after = 0, -1
    for i, s in enumerate(steps_raw):
        sw = f"{where}.escalation[{i}]"
        step = _check_keys(s, {"to", "after_working_days"}, sw)
        to = step.get("to")
        if to not in ORG_LEVELS[1:]:
            raise PolicyError(f"{sw}.to: {to!r} is not one of {list(ORG_LEVELS[1:])}")
        rank = ORG_LEVELS.index(str(to))
        after = _int(step.get("after_working_days"), f"{sw}.after_working_days")
        if rank <= last_rank or after < last_after:
            raise PolicyError(
                f"{sw}: steps must go up the chain {list(ORG_LEVELS)} at non-decreasing times"
            )
        last_rank, last_after = rank, after
        steps.append(EscalationStep(str(to), after))
    return Policy(
        name=name,
        name_zh=str(spec.get("name_zh", name)),
        name_en=str(spec.get("name_en", name)),
        clocks=tuple(
            _clock(str(k), v, f"{where}.clocks.{k}", categories) for k, v in clocks.items()
        ),
        remind=_follow_up(spec["remind"], f"{where}.remind"),
        supervise=_follow_up(spec["supervise"], f"{where}.supervise"),
        escalation=tuple(steps),
        warn_at=_share(spec.get("warn_at", 0.8), f"{where}.warn_at"),
    )


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise PolicyError(f"policy file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("policies"), dict):
        raise PolicyError(f"{path}: expected {{'policies': {{name: policy, ...}}}}")
    extra = sorted(set(data) - {"schema", "policies"})
    if extra:
        raise PolicyError(f"{path}: unknown top-level key(s) {extra}; allowed: schema, policies")
    return data


def load_policies(
    path: str | Path | Mapping[str, Any] | None = None,
    *,
    categories: Iterable[str] | None = None,
) -> Policies:
    """Load the shipped policies with a user file (or mapping) deep-merged over them.

    Parameters
    ----------
    path : str, Path or mapping, optional
        JSON ``{"policies": {name: {...}}}``. Objects merge key by key (so
        ``{"policies": {"12345": {"clocks": {"resolve": {"categories":
        {"road": {"working_days": 4}}}}}}}`` changes one limit); lists replace.
        A new name defines a new policy.
    categories : iterable of str, optional
        Known category codes; per-category limits must use them.

    Raises
    ------
    PolicyError
        Unknown keys, bad values, unknown states or levels.

    Examples
    --------
    >>> pol = load_policies({"policies": {"357": {"clocks": {"answer": {"limit": {"hours": 2}}}}}})
    >>> pol["357"].clock("answer").limit.hours
    2.0
    >>> load_policies({"policies": {"357": {"warn_at": 80}}})
    Traceback (most recent call last):
    ...
    gridmap.errors.PolicyError: policy '357'.warn_at: expected a share in (0, 1) such as 0.8, got 80
    """
    shipped = _read(Path(str(resources.files("gridmap.cases") / "data" / "policies.json")))
    data = shipped["policies"]
    if path is not None:
        if isinstance(path, Mapping):
            over = path
            if not isinstance(over.get("policies"), Mapping):
                raise PolicyError("expected {'policies': {name: policy, ...}}")
        else:
            over = _read(Path(path))
        data = _deep_merge(data, over["policies"])
    cats = set(categories) if categories is not None else None
    return Policies(_policy(str(name), spec, cats) for name, spec in data.items())


@functools.lru_cache(maxsize=1)
def default_policies() -> Policies:
    """Return the shipped policies (cached, immutable).

    Examples
    --------
    >>> default_policies()["12345"].clock("resolve").limit
    Limit(working_days=5, hours=None)
    """
    return load_policies()
