"""Visit rules as data: the six must-visit kinds (六必访), their cadences and who visits.

The shipped rules (``gridmap/visits/data/rules.json``) follow Zhenjiang
Jingkou's practice: each month the grid chief (网格长) visits

==================  ==================  ======================================================
code                label               marked by
==================  ==================  ======================================================
hardship_disabled   困难群众和残疾人      household flag ``disabled``
elderly_alone       独居老人             household flag ``elderly_living_alone``
organisation        网格内组织           building ``use`` commercial / public / industrial
migrant             流动人员             household flag ``floating_population``
unemployed          失业人员             household flag ``unemployed``
assistance          享受救助人员          household flag ``on_assistance``
==================  ==================  ======================================================

The household flags are :data:`gridmap.layers.SENSITIVE_FLAGS` (what
:func:`gridmap.synth.synth_city` writes and validation guarantees). Teams carry
cadences of their own (自治队伍 weekly, 基础队伍 monthly, 专业队伍 quarterly); a
category with a ``team`` and no ``cadence`` takes the team's.

A city changes the rules without code: :func:`load_rules` deep-merges a JSON
file (or mapping) over the shipped one. A known category changes the keys it
gives; a new category needs ``label_zh``, ``target`` and ``flags`` (households)
or ``uses`` (buildings). Unknown keys, categories, teams, cadences, roles,
flags or uses raise :class:`~gridmap.errors.VisitRulesError` naming the entry
and the fix.

Keys of a category: ``label_zh``, ``label_en``, ``target`` (``household`` or
``building``), ``flags`` (household columns, any one true marks the household),
``uses`` (building uses) with an optional ``name_pattern`` (regular expression
on the building name), ``cadence`` (:data:`CADENCES`), ``team``,
``responsible`` (:data:`RESPONSIBLE`) and ``enabled``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from gridmap.errors import VisitRulesError
from gridmap.layers import BUILDING_USES

__all__ = [
    "CADENCES",
    "RESPONSIBLE",
    "TARGETS",
    "Team",
    "VisitCategory",
    "VisitRules",
    "load_rules",
    "default_rules",
]

#: Cadence name → pandas period frequency (weeks run Monday–Sunday, quarters are calendar ones).
CADENCES: dict[str, str] = {"weekly": "W-SUN", "monthly": "M", "quarterly": "Q-DEC"}

#: Who is responsible for a visit: the grid chief, or one of the grid's workers
#: (each worker takes a compact run of the grid's buildings; see :mod:`gridmap.visits.due`).
RESPONSIBLE: tuple[str, ...] = ("chief", "worker")

#: What a category marks: households (by flags) or buildings (organisations, by use).
TARGETS: tuple[str, ...] = ("household", "building")

_TOP_KEYS = {"schema", "teams", "categories", "register"}
_TEAM_KEYS = {"label_zh", "label_en", "cadence"}
_CATEGORY_KEYS = {
    "label_zh",
    "label_en",
    "target",
    "flags",
    "uses",
    "name_pattern",
    "cadence",
    "team",
    "responsible",
    "enabled",
}
_REGISTER_KEYS = {"hazard_categories", "dispute_categories"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Team:
    """A visiting team and its cadence (自治队伍 weekly, 基础队伍 monthly, 专业队伍 quarterly)."""

    code: str
    label_zh: str
    label_en: str
    cadence: str


@dataclass(frozen=True)
class VisitCategory:
    """One must-visit category (see the module docstring for its keys).

    Examples
    --------
    >>> c = default_rules().category("elderly_alone")
    >>> c.label_zh, c.flags, c.cadence, c.responsible
    ('独居老人', ('elderly_living_alone',), 'monthly', 'chief')
    """

    code: str
    label_zh: str
    label_en: str
    target: str
    cadence: str
    responsible: str = "chief"
    flags: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    name_pattern: str | None = None
    team: str | None = None
    enabled: bool = True

    @property
    def freq(self) -> str:
        """The pandas period frequency of :attr:`cadence`."""
        return CADENCES[self.cadence]


@dataclass(frozen=True)
class VisitRules:
    """The visit rules: categories (in file order), teams and register settings.

    Attributes
    ----------
    categories : tuple of VisitCategory
    teams : tuple of Team
    hazard_categories, dispute_categories : tuple of str
        Case category codes (:mod:`gridmap.cases.catalogue`) counted as open
        hazards (隐患) and disputes (矛盾纠纷) in the 四清 register.

    Examples
    --------
    >>> rules = default_rules()
    >>> rules.codes
    ('hardship_disabled', 'elderly_alone', 'organisation', 'migrant', 'unemployed', 'assistance')
    >>> rules.team("self_governance").cadence
    'weekly'
    """

    categories: tuple[VisitCategory, ...]
    teams: tuple[Team, ...]
    hazard_categories: tuple[str, ...] = ()
    dispute_categories: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        """Codes of the enabled categories, in order."""
        return tuple(c.code for c in self.categories if c.enabled)

    def category(self, code: str) -> VisitCategory:
        """Return the category ``code``; raise :class:`VisitRulesError` if unknown."""
        for c in self.categories:
            if c.code == code:
                return c
        raise VisitRulesError(
            f"unknown visit category {code!r}; known: {[c.code for c in self.categories]}"
        )

    def team(self, code: str) -> Team:
        """Return the team ``code``; raise :class:`VisitRulesError` if unknown."""
        for t in self.teams:
            if t.code == code:
                return t
        raise VisitRulesError(f"unknown team {code!r}; known: {[t.code for t in self.teams]}")

    def select(self, codes: Iterable[str] | None) -> tuple[VisitCategory, ...]:
        """Return the enabled categories, or those named (unknown names raise).

        Examples
        --------
        >>> [c.code for c in default_rules().select(["migrant"])]
        ['migrant']
        >>> default_rules().select(["migrants"])
        Traceback (most recent call last):
        ...
        gridmap.errors.VisitRulesError: unknown visit category 'migrants'; known: [...]
        """
        if codes is None:
            return tuple(c for c in self.categories if c.enabled)
        if isinstance(codes, str):
            codes = [codes]
        return tuple(self.category(str(c)) for c in codes)


# ----------------------------------------------------------------------------- parsing


def _obj(value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise VisitRulesError(f"{where}: expected an object, got {type(value).__name__} {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise VisitRulesError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return value


def _text(value: Any, where: str, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise VisitRulesError(f"{where}: expected a non-empty text, got {value!r}")
    return value.strip()


def _cadence(value: Any, where: str) -> str:
    if value not in CADENCES:
        raise VisitRulesError(
            f"{where}: bad cadence {value!r}; use one of {list(CADENCES)} "
            "(or give the category a 'team' to take the team's cadence)"
        )
    return str(value)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list):
        raise VisitRulesError(f"{where}: expected a list of names, got {value!r}")
    out = []
    for v in value:
        if not isinstance(v, str) or not _IDENT.match(v):
            raise VisitRulesError(f"{where}: {v!r} is not a column/code name (letters, _, digits)")
        out.append(v)
    return tuple(out)


def _team(code: str, spec: Any) -> Team:
    where = f"team {code!r}"
    s = _obj(spec, where, _TEAM_KEYS)
    if "cadence" not in s:
        raise VisitRulesError(f"{where}: 'cadence' is required (one of {list(CADENCES)})")
    return Team(
        code=code,
        label_zh=_text(s.get("label_zh"), f"{where}.label_zh", code),
        label_en=_text(s.get("label_en"), f"{where}.label_en", code),
        cadence=_cadence(s["cadence"], f"{where}.cadence"),
    )


def _category(code: str, spec: Any, teams: dict[str, Team]) -> VisitCategory:
    where = f"category {code!r}"
    if not _IDENT.match(code):
        raise VisitRulesError(f"{where}: a code is letters, digits and _ (e.g. 'elderly_alone')")
    s = _obj(spec, where, _CATEGORY_KEYS)
    target = s.get("target")
    if target not in TARGETS:
        raise VisitRulesError(f"{where}.target: {target!r} is not one of {list(TARGETS)}")
    flags: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    pattern = s.get("name_pattern")
    if target == "household":
        if "uses" in s or pattern is not None:
            raise VisitRulesError(
                f"{where}: 'uses'/'name_pattern' select buildings; a household category has 'flags'"
            )
        flags = _names(s.get("flags"), f"{where}.flags")
        if not flags:
            raise VisitRulesError(f"{where}.flags: name at least one household flag column")
    else:
        if "flags" in s:
            raise VisitRulesError(
                f"{where}: 'flags' mark households; a building category has 'uses'"
            )
        uses = _names(s.get("uses"), f"{where}.uses")
        bad = [u for u in uses if u not in BUILDING_USES]
        if not uses or bad:
            raise VisitRulesError(
                f"{where}.uses: {bad or uses!r} — give building uses among {list(BUILDING_USES)}"
            )
        if pattern is not None:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise VisitRulesError(
                    f"{where}.name_pattern: bad regular expression: {exc}"
                ) from exc
    team = s.get("team")
    if team is not None and team not in teams:
        raise VisitRulesError(f"{where}.team: unknown team {team!r}; known: {sorted(teams)}")
    if "cadence" in s:
        cadence = _cadence(s["cadence"], f"{where}.cadence")
    elif team is not None:
        cadence = teams[team].cadence
    else:
        raise VisitRulesError(f"{where}: give a 'cadence' ({list(CADENCES)}) or a 'team'")
    responsible = s.get("responsible", "chief")
    if responsible not in RESPONSIBLE:
        raise VisitRulesError(
            f"{where}.responsible: {responsible!r} is not one of {list(RESPONSIBLE)}"
        )
    enabled = s.get("enabled", True)
    if not isinstance(enabled, bool):
        raise VisitRulesError(f"{where}.enabled: expected true or false, got {enabled!r}")
    return VisitCategory(
        code=code,
        label_zh=_text(s.get("label_zh"), f"{where}.label_zh"),
        label_en=_text(s.get("label_en"), f"{where}.label_en", code),
        target=str(target),
        cadence=cadence,
        responsible=str(responsible),
        flags=flags,
        uses=uses,
        name_pattern=None if pattern is None else str(pattern),
        team=None if team is None else str(team),
        enabled=enabled,
    )


def _case_codes(value: Any, where: str) -> tuple[str, ...]:
    from gridmap.cases.catalogue import default_catalogue
    from gridmap.errors import CaseError

    if isinstance(value, str) or not isinstance(value, list):
        raise VisitRulesError(f"{where}: expected a list of case category codes, got {value!r}")
    book = default_catalogue()
    out = []
    for v in value:
        try:
            out.append(book.category(str(v)).code)
        except CaseError as exc:
            raise VisitRulesError(
                f"{where}: unknown case category {v!r}; known: {list(book.codes)}"
            ) from exc
    return tuple(out)


def _merge(shipped: dict[str, Any], over: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(shipped)
    _obj(over, where, _TOP_KEYS)
    for key in ("teams", "categories"):
        if key not in over:
            continue
        block = over[key]
        if not isinstance(block, Mapping):
            raise VisitRulesError(f"{where}.{key}: expected an object of code → entry")
        for code, spec in block.items():
            if not isinstance(spec, Mapping):
                raise VisitRulesError(f"{where}.{key}.{code}: expected an object, got {spec!r}")
            if code in out[key]:
                merged = dict(out[key][code])
                if key == "categories" and "team" in spec and "cadence" not in spec:
                    merged.pop("cadence", None)  # the new team's cadence applies
                merged.update(copy.deepcopy(dict(spec)))
                out[key][code] = merged
            elif key == "categories" and not {"label_zh", "target"} <= set(spec):
                raise VisitRulesError(
                    f"{where}: unknown category {code!r}; known: {sorted(out[key])}. "
                    "To define a new category give label_zh, target and flags (households) "
                    "or uses (buildings)"
                )
            elif key == "teams" and "cadence" not in spec:
                raise VisitRulesError(
                    f"{where}: unknown team {code!r}; known: {sorted(out[key])}. "
                    "To define a new team give label_zh and cadence"
                )
            else:
                out[key][code] = copy.deepcopy(dict(spec))
    if "register" in over:
        reg = _obj(over["register"], f"{where}.register", _REGISTER_KEYS)
        out["register"] = {**out.get("register", {}), **copy.deepcopy(dict(reg))}
    return out


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise VisitRulesError(f"visit rules file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise VisitRulesError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise VisitRulesError(f"{path}: expected an object with 'categories' and/or 'teams'")
    return data


def _build(data: Mapping[str, Any]) -> VisitRules:
    _obj(data, "visit rules", _TOP_KEYS)
    teams = {str(k): _team(str(k), v) for k, v in dict(data.get("teams", {})).items()}
    cats = tuple(_category(str(k), v, teams) for k, v in dict(data["categories"]).items())
    if not cats:
        raise VisitRulesError("visit rules: define at least one category")
    reg = _obj(data.get("register", {}), "visit rules.register", _REGISTER_KEYS)
    return VisitRules(
        categories=cats,
        teams=tuple(teams.values()),
        hazard_categories=_case_codes(
            reg.get("hazard_categories", []), "register.hazard_categories"
        ),
        dispute_categories=_case_codes(
            reg.get("dispute_categories", []), "register.dispute_categories"
        ),
    )


def load_rules(path: str | Path | Mapping[str, Any] | None = None) -> VisitRules:
    """Load the shipped visit rules with a user file (or mapping) merged over them.

    Parameters
    ----------
    path : str, Path or mapping, optional
        JSON ``{"teams": {...}, "categories": {...}, "register": {...}}``
        (UTF-8, with or without BOM). A known category or team changes the keys
        given (a category given a ``team`` without a ``cadence`` takes the
        team's cadence); a new one must be complete.

    Returns
    -------
    VisitRules

    Raises
    ------
    VisitRulesError
        Unknown keys, categories or teams; bad cadence, role, target, flags,
        uses or case categories; unreadable file.

    Examples
    --------
    >>> r = load_rules({"categories": {"elderly_alone": {"team": "self_governance"}}})
    >>> r.category("elderly_alone").cadence
    'weekly'
    >>> load_rules({"teams": {"professional": {"cadence": "monthly"}}}).team("professional").cadence
    'monthly'
    >>> load_rules({"categories": {"migrant": {"cadence": "daily"}}})
    Traceback (most recent call last):
    ...
    gridmap.errors.VisitRulesError: category 'migrant'.cadence: bad cadence 'daily'; ...
    >>> load_rules({"categories": {"elderly_along": {"cadence": "weekly"}}})
    Traceback (most recent call last):
    ...
    gridmap.errors.VisitRulesError: rules: unknown category 'elderly_along'; known: [...]...
    """
    shipped = _read(Path(str(resources.files("gridmap.visits") / "data" / "rules.json")))
    data = shipped
    if path is not None:
        if isinstance(path, Mapping):
            data = _merge(shipped, path, "rules")
        else:
            data = _merge(shipped, _read(Path(path)), str(path))
    return _build(data)


@functools.lru_cache(maxsize=1)
def default_rules() -> VisitRules:
    """Return the shipped visit rules (cached, immutable).

    Examples
    --------
    >>> default_rules().category("organisation").uses
    ('commercial', 'public', 'industrial')
    """
    return load_rules()
