"""Case categories (事件类别) and sources (来源), shipped as data and extendable by a file.

The shipped catalogue (``gridmap/cases/data/categories.json``) lists the usual
12345 categories — 噪音扰民, 垃圾清运, 道路破损, 违章停车, 邻里纠纷, 独居老人求助,
漏水停水, 消防隐患, 群租房, 其他 — each with a code, Chinese and English names, a
default SLA policy and a default urgency. A city adds or changes categories
without code: :func:`load_catalogue` merges a UTF-8 JSON or CSV file over the
shipped one (a row with a known code changes the fields it gives; a new code
needs every required field).

Sources (``data/sources.json``) are the channels a case comes in by: the 12345
hotline, an app, grid patrol (巡查上报), the online office (网上居委会) and walk-in
visits, each with Chinese labels and aliases (``"12345"``, ``"热线"`` …).

Lookups accept the code, the Chinese name, the English name or an alias.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from gridmap.errors import CaseError

__all__ = [
    "URGENCIES",
    "Category",
    "Source",
    "Catalogue",
    "load_catalogue",
    "default_catalogue",
]

#: Urgency levels, most urgent first.
URGENCIES: tuple[str, ...] = ("urgent", "ordinary")

_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_REQUIRED = ("code", "name_zh", "name_en", "policy", "urgency")
_OPTIONAL = ("share", "aliases")
_SOURCE_FIELDS = ("code", "name_zh", "name_en", "policy", "aliases")


def _norm(key: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(key).strip().lower())


@dataclass(frozen=True)
class Category:
    """One case category.

    Attributes
    ----------
    code : str
        Stable identifier (``lower_snake_case``), e.g. ``"noise"``.
    name_zh, name_en : str
        Chinese and English names.
    policy : str
        Default SLA policy (a key of :func:`gridmap.cases.policies.load_policies`).
    urgency : {"urgent", "ordinary"}
        Default urgency.
    share : float
        Share of tickets, used by :func:`gridmap.cases.synth.synth_cases`.
    aliases : tuple of str
        Other accepted names.
    """

    code: str
    name_zh: str
    name_en: str
    policy: str
    urgency: str
    share: float = 0.0
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """One intake channel (12345 hotline, app, patrol, online office, walk-in).

    Attributes
    ----------
    code : str
    name_zh, name_en : str
    policy : str or None
        The SLA policy of tickets from this channel, overriding the category's
        default (``"12345"`` for the hotline, ``"357"`` for the online office).
    aliases : tuple of str
    """

    code: str
    name_zh: str
    name_en: str
    policy: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    """Categories and sources with lookup by code, Chinese name, English name or alias.

    Examples
    --------
    >>> cat = default_catalogue()
    >>> cat.category("噪音扰民").code, cat.category("Noise").name_zh
    ('noise', '噪音扰民')
    >>> cat.source("热线").code, cat.source("12345").name_zh
    ('hotline', '12345热线')
    """

    categories: tuple[Category, ...]
    sources: tuple[Source, ...]
    _cat_index: dict[str, Category] = field(init=False, repr=False, compare=False)
    _src_index: dict[str, Source] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cat_index", _index(self.categories, "category"))
        object.__setattr__(self, "_src_index", _index(self.sources, "source"))

    @property
    def codes(self) -> tuple[str, ...]:
        """Category codes in catalogue order."""
        return tuple(c.code for c in self.categories)

    @property
    def source_codes(self) -> tuple[str, ...]:
        """Source codes in catalogue order."""
        return tuple(s.code for s in self.sources)

    def category(self, key: str) -> Category:
        """Return the category named by code, Chinese/English name or alias.

        Raises
        ------
        CaseError
            For an unknown category; the message lists the known ones.
        """
        found = self._cat_index.get(_norm(key)) if key is not None else None
        if found is None:
            known = ", ".join(f"{c.code} ({c.name_zh})" for c in self.categories)
            raise CaseError(
                f"unknown category {key!r}; use one of {known}, or add it with a catalogue "
                "file (load_catalogue(path))"
            )
        return found

    def source(self, key: str) -> Source:
        """Return the source named by code, Chinese/English name or alias.

        Raises
        ------
        CaseError
            For an unknown source; the message lists the known ones.
        """
        found = self._src_index.get(_norm(key)) if key is not None else None
        if found is None:
            known = ", ".join(f"{s.code} ({s.name_zh})" for s in self.sources)
            raise CaseError(f"unknown source {key!r}; use one of {known}")
        return found

    def to_records(self) -> list[dict[str, Any]]:
        """Categories as plain dicts (for a table or a JSON response).

        Examples
        --------
        >>> default_catalogue().to_records()[0]["name_en"]
        'noise'
        """
        return [
            {
                "code": c.code,
                "name_zh": c.name_zh,
                "name_en": c.name_en,
                "policy": c.policy,
                "urgency": c.urgency,
                "share": c.share,
                "aliases": list(c.aliases),
            }
            for c in self.categories
        ]


def _index(items: Iterable[Category | Source], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        for key in (item.code, item.name_zh, item.name_en, *item.aliases):
            k = _norm(key)
            if not k:
                continue
            other = out.get(k)
            if other is not None and other.code != item.code:
                raise CaseError(
                    f"{what} name {key!r} is used by both {other.code!r} and {item.code!r}; "
                    "names and aliases must be unique"
                )
            out[k] = item
    return out


def _aliases(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(a.strip() for a in re.split(r"[|;；、]", value) if a.strip())
    if isinstance(value, Iterable):
        return tuple(str(a).strip() for a in value if str(a).strip())
    raise CaseError(f"aliases must be a list or a '|'-separated string, got {value!r}")


def _category(row: Mapping[str, Any], base: Category | None, where: str) -> Category:
    unknown = sorted(set(row) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise CaseError(
            f"{where}: unknown field(s) {unknown}; allowed: {list(_REQUIRED + _OPTIONAL)}"
        )
    given = {k: v for k, v in row.items() if v is not None and v != ""}
    code = str(given.get("code", "")).strip()
    if not _CODE_RE.match(code):
        raise CaseError(
            f"{where}: field 'code' {code!r} must be lower_snake_case ASCII "
            "(a letter, then letters, digits or _), e.g. 'stray_dogs'"
        )
    if base is None:
        missing = [k for k in _REQUIRED if k not in given]
        if missing:
            raise CaseError(f"{where}: new category {code!r} lacks field(s) {missing}")
    cat = base or Category(code, "", "", "", "ordinary")
    changes: dict[str, Any] = {}
    for key in ("name_zh", "name_en", "policy"):
        if key in given:
            text = str(given[key]).strip()
            if not text:
                raise CaseError(f"{where}: field {key!r} is empty")
            changes[key] = text
    if "urgency" in given:
        urg = str(given["urgency"]).strip().lower()
        urg = {"紧急": "urgent", "一般": "ordinary", "普通": "ordinary"}.get(urg, urg)
        if urg not in URGENCIES:
            raise CaseError(
                f"{where}: field 'urgency' is {given['urgency']!r}; use one of {list(URGENCIES)}"
            )
        changes["urgency"] = urg
    if "share" in given:
        try:
            share = float(given["share"])
        except (TypeError, ValueError):
            share = -1.0
        if not 0.0 <= share <= 1.0:
            raise CaseError(
                f"{where}: field 'share' is {given['share']!r}; give a number in [0, 1]"
            )
        changes["share"] = share
    if "aliases" in given:
        changes["aliases"] = _aliases(given["aliases"])
    return replace(cat, **changes)


def _source(row: Mapping[str, Any], where: str) -> Source:
    unknown = sorted(set(row) - set(_SOURCE_FIELDS))
    if unknown:
        raise CaseError(f"{where}: unknown field(s) {unknown}; allowed: {list(_SOURCE_FIELDS)}")
    code = str(row.get("code", "")).strip()
    if not _CODE_RE.match(code):
        raise CaseError(f"{where}: field 'code' {code!r} must be lower_snake_case ASCII")
    for key in ("name_zh", "name_en"):
        if not str(row.get(key) or "").strip():
            raise CaseError(f"{where}: field {key!r} is missing or empty")
    policy = row.get("policy")
    return Source(
        code,
        str(row["name_zh"]).strip(),
        str(row["name_en"]).strip(),
        str(policy).strip() if policy else None,
        _aliases(row.get("aliases")),
    )


def _read_rows(path: Path, key: str) -> tuple[list[dict[str, Any]], int]:
    """Rows of a JSON (list or ``{key: [...]}``) or CSV file and the line offset for messages."""
    if not path.exists():
        raise CaseError(f"catalogue file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaseError(f"{path}: not UTF-8 ({exc}); save the file as UTF-8") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaseError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        rows = data.get(key) if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise CaseError(f"{path}: expected a list of objects or {{{key!r}: [...]}}")
        return rows, 0
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = [{str(k).strip(): v for k, v in r.items() if k is not None} for r in reader]
        return rows, 2  # header is line 1
    raise CaseError(f"{path}: unsupported file type {path.suffix!r}; use .json or .csv")


def _shipped(name: str) -> Path:
    return Path(str(resources.files("gridmap.cases") / "data" / name))


def _merge_categories(
    base: tuple[Category, ...], rows: list[dict[str, Any]], label: str, offset: int
) -> tuple[Category, ...]:
    out = {c.code: c for c in base}
    for i, row in enumerate(rows):
        where = f"{label} line {i + offset}" if offset else f"{label} category #{i}"
        code = str(row.get("code") or "").strip()
        out[code] = _category(row, out.get(code), where)
    return tuple(out.values())


def load_catalogue(
    path: str | Path | None = None,
    *,
    sources: str | Path | None = None,
    policies: Iterable[str] | None = None,
) -> Catalogue:
    """Load the shipped catalogue, with a user file merged over it.

    Parameters
    ----------
    path : str or Path, optional
        A UTF-8 JSON (a list of category objects or ``{"categories": [...]}``)
        or CSV file (header ``code,name_zh,name_en,policy,urgency[,share,aliases]``;
        aliases ``|``-separated). Rows with a shipped code change the fields they
        give; new codes need every required field.
    sources : str or Path, optional
        Like ``path``, for sources (``code,name_zh,name_en,policy,aliases``).
    policies : iterable of str, optional
        Known policy names; when given, every category's and source's policy
        must be one of them.

    Raises
    ------
    CaseError
        Naming the file, the row (CSV line number) and the field at fault.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "extra.csv")
    ...     lines = ["code,name_zh,name_en,policy,urgency",
    ...              "stray_dogs,流浪犬,stray dogs,12345,ordinary"]
    ...     _ = open(p, "w", encoding="utf-8").write(chr(10).join(lines))
    ...     cat = load_catalogue(p)
    >>> cat.category("流浪犬").code, len(cat.categories)
    ('stray_dogs', 11)
    """
    shipped_cats, _ = _read_rows(_shipped("categories.json"), "categories")
    cats = _merge_categories((), shipped_cats, "categories.json", 0)
    if path is not None:
        p = Path(path)
        rows, offset = _read_rows(p, "categories")
        cats = _merge_categories(cats, rows, str(p), offset)
    shipped_srcs, _ = _read_rows(_shipped("sources.json"), "sources")
    srcs = {
        s.code: s for s in (_source(r, f"sources.json #{i}") for i, r in enumerate(shipped_srcs))
    }
    if sources is not None:
        sp = Path(sources)
        rows, offset = _read_rows(sp, "sources")
        for i, row in enumerate(rows):
            where = f"{sp} line {i + offset}" if offset else f"{sp} source #{i}"
            src = _source(row, where)
            srcs[src.code] = src
    if policies is not None:
        known = set(policies)
        for c in cats:
            if c.policy not in known:
                raise CaseError(
                    f"category {c.code!r}: policy {c.policy!r} is not defined; "
                    f"known policies: {sorted(known)}"
                )
        for s in srcs.values():
            if s.policy is not None and s.policy not in known:
                raise CaseError(
                    f"source {s.code!r}: policy {s.policy!r} is not defined; "
                    f"known policies: {sorted(known)}"
                )
    return Catalogue(cats, tuple(srcs.values()))


@functools.lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """Return the shipped catalogue (cached; a :class:`Catalogue` is immutable).

    Examples
    --------
    >>> default_catalogue().codes[:3]
    ('noise', 'garbage', 'road')
    """
    return load_catalogue()
