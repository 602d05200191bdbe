"""Arterial pieces: the land between main roads, partitioned each on its own.

An arterial road (primary, secondary, tertiary … see :mod:`gridmap.partition.roads`)
must be a grid border, never run through a grid. Before the solver runs,
:func:`arterial_pieces` cuts a community's unit graph along every edge lying on
an arterial and takes the connected pieces:

* a piece without households of at least 0.5 ha and 20 m mean width (a square,
  a park, a campus without homes between main roads) is a site of its own, a
  dedicated grid (专属网格), when dedicated grids are asked for; so is a piece
  with few households of at least ``dedicated_area``;
* any other piece without households (a median strip, a verge) is shared out
  unit by unit: each of its units joins the piece it borders longest off the
  main roads (a strip wrapping round a road's end joins the land it touches
  there, not the land across the road), else longest in all, so the strip
  splits between both sides — across a main road only onto a piece with
  households or a site, never from strip to strip across road after road;
* a piece below the minimum households cannot be a grid alone: it joins the
  neighbouring piece it shares the longest arterial with (the smallest such
  piece first), and the grid that then spans the arterial is *forced* — the
  report names it with this reason;
* every other piece is partitioned on its own (:func:`restrict` drops the
  edges between pieces, so the solver sees separate components);
* a main road that ends inside a piece (a dead end, or one the data stop
  short) separates no land — nor do the carriageways and slip lanes around
  strips that piece alone encloses (:func:`_enclosing`): a grid holding at
  least 20 m of such road is named as forced, with this reason
  (:data:`DEAD_END_REASON`);
* a grid that holds land without households shared out to it across a main road
  (a verge, a median, the island between two roads forking at a junction) for at
  least 20 m of that road may be named too (:func:`empty_land_grids`,
  :data:`EMPTY_LAND_REASON`): the land has to join some grid, on either side a main
  road runs between it and the grid's homes. The partitioner names it where the
  report then finds the road through the grid, not along its border (a median).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = [
    "DEAD_END_REASON",
    "EMPTY_LAND_REASON",
    "Pieces",
    "on_arterial",
    "arterial_pieces",
    "restrict",
    "forced_grids",
    "empty_land_grids",
    "dedicated_grids",
]

#: An edge is "on an arterial" when at least this share of it lies along one …
_ON_ARTERIAL = 0.5
#: … or at least this many metres of it (two cells wrapping round a road's end
#: share a long edge of which only a part runs along the road).
_ON_ARTERIAL_M = 20.0
#: Land between main roads without households that is at least this large and
#: this wide (mean width 2 × area / perimeter) is a site of its own (a square, a
#: park, a campus without homes), not a median strip or a verge to share out.
_SITE_AREA_M2 = 5_000.0
_STRIP_WIDTH_M = 20.0
#: A grid holding at least this many metres of a main road that ends inside its piece
#: is named as forced to hold it (:func:`forced_grids`).
_DEAD_END_M = 20.0
#: Empty strips off the community edge bordering one piece only, that piece for at
#: least this share of their outer border, lie inside it: the main roads around them
#: separate no land (:func:`_enclosing`).
_ENCLOSED = 0.8
#: How the reason given for such a grid begins (a dedicated grid keeps this reason).
DEAD_END_REASON = "a main road ends inside the grid"
#: How the reason given for a grid holding empty land across a main road begins.
EMPTY_LAND_REASON = "land without households across a main road joined the grid"


@dataclass
class Pieces:
    """Pieces of a unit graph between arterials.

    Attributes
    ----------
    piece : numpy.ndarray
        Final piece per unit (after merges): grids never span two pieces.
    original : numpy.ndarray
        Piece per unit before small pieces were merged (-1 for units of pieces
        without households, which were shared out).
    n_original : int
        Number of pieces with households the arterials make.
    merged : list of str
        Why pieces were merged, one text per merge.
    dedicated : numpy.ndarray or None
        Per unit, whether it lies in a dedicated piece: land between main roads
        of at least ``dedicated_area`` m² holding fewer than the minimum
        households (offices, a campus, a park) — a grid of its own (专属网格),
        outside the band.
    inner_edges, inner_arterial : numpy.ndarray or None
        Edges on a main road that separates no land (a dead end), and their
        metres along it.
    across_edges, across_arterial : numpy.ndarray or None
        Edges on a main road between a piece and land without households shared
        out to it across that road, and their metres along it.
    """

    piece: np.ndarray
    original: np.ndarray
    n_original: int
    merged: list[str]
    dedicated: np.ndarray | None = None
    inner_edges: np.ndarray | None = None
    inner_arterial: np.ndarray | None = None
    across_edges: np.ndarray | None = None
    across_arterial: np.ndarray | None = None


def on_arterial(length: np.ndarray, arterial: np.ndarray) -> np.ndarray:
    """Whether each edge lies on a main road (half its length, or 20 m of it, along one).

    Examples
    --------
    >>> on_arterial(np.array([10.0, 100.0, 100.0]), np.array([6.0, 25.0, 10.0])).tolist()
    [True, True, False]
    """
    length = np.asarray(length, dtype=float)
    return np.asarray(arterial, dtype=float) >= np.minimum(
        _ON_ARTERIAL * np.maximum(length, 1e-9), _ON_ARTERIAL_M
    )


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(m, directed=False)[1]


def arterial_pieces(
    units: Any, *, min_households: int, dedicated_area: float | None = None
) -> Pieces | None:
    """Cut the unit graph along arterials; None when no arterial separates or ends in anything.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> # four units in a row; an arterial between units 1 and 2, unit 3 is empty
    >>> u = SimpleNamespace(households=np.array([300, 300, 250, 0]), area=np.full(4, 1e3),
    ...     edges=np.array([[0, 1], [1, 2], [2, 3]]), edge_length=np.full(3, 10.0),
    ...     edge_arterial=np.array([0.0, 10.0, 10.0]))
    >>> p = arterial_pieces(u, min_households=200)
    >>> p.piece.tolist(), p.merged
    ([0, 0, 1, 1], [])
    """
    art = getattr(units, "edge_arterial", None)
    n = len(units.households)
    if art is None or n < 2 or len(units.edges) == 0:
        return None
    edges = np.asarray(units.edges, dtype=np.int64).reshape(-1, 2)
    length = np.asarray(units.edge_length, dtype=float)
    hard = on_arterial(length, art)
    if not hard.any():
        return None
    soft = ~hard
    comp = _components(n, edges[soft, 0], edges[soft, 1])
    nc = int(comp.max()) + 1
    whole = _components(n, edges[:, 0], edges[:, 1])
    if nc == int(whole.max()) + 1:
        # no arterial separates any land; one that ends inside it is still named
        if float(np.asarray(art, dtype=float)[hard].sum()) < _DEAD_END_M:
            return None
        return Pieces(
            piece=comp.astype(np.int64),
            original=comp.astype(np.int64),
            n_original=1,  # the arterials cut nothing apart
            merged=[],
            inner_edges=edges[hard],
            inner_arterial=np.asarray(art, dtype=float)[hard],
        )
    hh = np.asarray(units.households, dtype=float)
    comp_hh = np.bincount(comp, weights=hh, minlength=nc)
    comp_area = np.bincount(comp, weights=np.asarray(units.area, dtype=float), minlength=nc)
    if dedicated_area is not None:
        # perimeter of a piece: its units' perimeters less twice the edges inside it
        inner = np.bincount(comp[edges[soft, 0]], weights=length[soft], minlength=nc)
        perim = np.bincount(comp, weights=np.asarray(units.perimeter, dtype=float), minlength=nc)
        perim = np.maximum(perim - 2.0 * inner, 1e-9)
        site = (
            (comp_hh <= 0)
            & (comp_area >= min(_SITE_AREA_M2, dedicated_area))
            & (2.0 * comp_area / perim >= _STRIP_WIDTH_M)
        )
        ded_comp = ((comp_hh < min_households) & (comp_area >= dedicated_area)) | site
    else:
        ded_comp = np.zeros(nc, dtype=bool)
    dedicated = ded_comp[comp]
    piece = comp.copy()
    # pieces without households: every unit joins the inhabited piece it borders longest
    empty = (comp_hh[comp] <= 0) & ~dedicated
    ea, eb = edges[:, 0], edges[:, 1]
    # across a main road, land goes only to a piece that had households (or is a
    # site) of its own: strips do not pass each other on across road after road
    settled = ~empty
    # land beside a main road goes first to the side it borders off the road: a strip
    # wrapping round a road's end joins the land it touches there, not the land across
    off_road = np.maximum(length - np.asarray(art, dtype=float), 0.0)
    off_road = np.where(off_road >= _ON_ARTERIAL_M, off_road, 0.0)
    for cascade in (False, True):
        _share_out(empty, settled, piece, ea, eb, length, hard, off_road, cascade=cascade)
    original = np.where((comp_hh[comp] > 0) | dedicated, comp, -1)
    # small pieces join the neighbour sharing the longest arterial with them
    merged: list[str] = []
    _, piece = np.unique(piece, return_inverse=True)
    while True:
        npc = int(piece.max()) + 1
        if npc <= 1:
            break
        ph = np.bincount(piece, weights=hh, minlength=npc)
        is_ded = np.bincount(piece, weights=dedicated.astype(float), minlength=npc) > 0
        small = np.flatnonzero((ph < min_households) & ~is_ded)
        if len(small) == 0:
            break
        p = int(small[np.argmin(ph[small])])
        pa, pb = piece[ea], piece[eb]
        touch = (pa == p) ^ (pb == p)
        if not touch.any():
            break  # a separate island: the solver reports it
        other = np.where(pa[touch] == p, pb[touch], pa[touch])
        shared = np.bincount(other, weights=length[touch], minlength=npc)
        shared[is_ded] = 0.0  # a dedicated site stays apart
        if not (shared > 0).any():
            break
        q = int(np.argmax(shared))
        merged.append(
            f"{ph[p]:g} households between main roads are below the minimum {min_households}: "
            f"joined with {ph[q]:g} households across the road"
        )
        piece[piece == p] = q
        _, piece = np.unique(piece, return_inverse=True)
    # a piece is dedicated when a dedicated site lies in it and it is still below the minimum
    npc = int(piece.max()) + 1
    ph = np.bincount(piece, weights=hh, minlength=npc)
    has_ded = np.bincount(piece, weights=dedicated.astype(float), minlength=npc) > 0
    dedicated = (has_ded & (ph < min_households))[piece]
    # a main road separates no land where it runs between a piece and empty strips the
    # same piece encloses (a dual carriageway the data stop short): such a stretch is a dead end
    encl = _enclosing(comp, (comp_hh <= 0) & ~ded_comp, units, ea, eb, length)
    within = hard & (encl[ea] == encl[eb])
    # a main road between a piece and empty land shared out to it across that road
    across = hard & ~within & (piece[ea] == piece[eb]) & ((original[ea] < 0) | (original[eb] < 0))
    return Pieces(
        piece=piece.astype(np.int64),
        original=original.astype(np.int64),
        n_original=int(len(np.unique(original[original >= 0]))),
        merged=merged,
        dedicated=dedicated if dedicated.any() else None,
        inner_edges=edges[within] if within.any() else None,
        inner_arterial=np.asarray(art, dtype=float)[within] if within.any() else None,
        across_edges=edges[across] if across.any() else None,
        across_arterial=np.asarray(art, dtype=float)[across] if across.any() else None,
    )


def _enclosing(
    comp: np.ndarray,
    empty_comp: np.ndarray,
    units: Any,
    ea: np.ndarray,
    eb: np.ndarray,
    length: np.ndarray,
) -> np.ndarray:
    """Per unit, its piece, or the piece enclosing it when it lies in an enclosed strip.

    Empty pieces (strips) border each other across main roads. A strip off the
    community edge that borders exactly one inhabited piece (or site) and no
    strip on the edge may be enclosed; such strips, joined where they border
    each other, form clusters. A cluster bordering exactly one piece, for at
    least :data:`_ENCLOSED` of its outer border (the rest: strips at a
    junction), lies inside that piece: the main roads around it separate no
    land (the carriageways and slip lanes of a road that ends inside the
    piece). Its units get that piece's number; every other unit keeps its own.
    Strips between two pieces (a median, lanes side by side) are never enclosed.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> # a median strip (unit 1) between the carriageways of a road that ends inside
    >>> # piece 0 (units 0 and 2 meet beyond the road's end)
    >>> u = SimpleNamespace(exterior=np.zeros(3))
    >>> e = np.array([[0, 1], [1, 2], [0, 2]])
    >>> _enclosing(np.array([0, 1, 0]), np.array([False, True]), u, e[:, 0], e[:, 1],
    ...     np.full(3, 100.0)).tolist()
    [0, 0, 0]
    """
    out = comp.copy()
    ext = getattr(units, "exterior", None)
    if ext is None or not empty_comp.any():
        return out
    nc = len(empty_comp)
    on_edge = np.bincount(comp, weights=np.asarray(ext, dtype=float), minlength=nc) > 1.0
    ca, cb = comp[ea], comp[eb]
    cross = ca != cb
    # both directions: (strip, neighbour, length)
    s_ = np.r_[ca[cross], cb[cross]]
    n_ = np.r_[cb[cross], ca[cross]]
    w_ = np.r_[length[cross], length[cross]]
    keep = empty_comp[s_]
    s_, n_, w_ = s_[keep], n_[keep], w_[keep]
    piece_nb = ~empty_comp[n_]
    lo = np.full(nc, nc, dtype=np.int64)
    hi = np.full(nc, -1, dtype=np.int64)
    np.minimum.at(lo, s_[piece_nb], n_[piece_nb])
    np.maximum.at(hi, s_[piece_nb], n_[piece_nb])
    edge_nb = np.bincount(s_[empty_comp[n_] & on_edge[n_]], minlength=nc) > 0
    cand = empty_comp & ~on_edge & ~edge_nb & (hi == lo)  # one piece around
    both = cand[s_] & cand[n_]
    cluster = _components(nc, s_[both], n_[both])
    # per cluster: its pieces around, and the share of its outer border along them
    outer = cand[s_] & ~both
    cs, cn, cw = cluster[s_[outer]], n_[outer], w_[outer]
    on_piece = ~empty_comp[cn]
    c_lo = np.full(nc, nc, dtype=np.int64)
    c_hi = np.full(nc, -1, dtype=np.int64)
    np.minimum.at(c_lo, cs[on_piece], cn[on_piece])
    np.maximum.at(c_hi, cs[on_piece], cn[on_piece])
    total = np.bincount(cs, weights=cw, minlength=nc)
    along = np.bincount(cs[on_piece], weights=cw[on_piece], minlength=nc)
    inside = (c_lo == c_hi) & (along >= _ENCLOSED * np.maximum(total, 1e-9))
    sel = cand[comp] & inside[cluster[comp]]
    out[sel] = c_lo[cluster[comp[sel]]]
    return out


def _share_out(
    empty: np.ndarray,
    settled: np.ndarray,
    piece: np.ndarray,
    ea: np.ndarray,
    eb: np.ndarray,
    length: np.ndarray,
    hard: np.ndarray,
    off_road: np.ndarray,
    *,
    cascade: bool,
) -> None:
    """Give every empty unit the piece of the neighbour it borders longest (in place).

    Longest off the main roads first (``off_road``: metres of each edge not
    along one, 0 below 20 m), then longest in all. Within an empty piece land
    spreads from unit to unit; across a main road only from a ``settled`` unit
    (one of a piece with households or a site), unless ``cascade`` (the last
    resort for strips bordering only strips).
    """
    for _ in range(len(empty)):
        if not empty.any():
            break
        border = empty[ea] != empty[eb]
        if not cascade:
            src = np.where(empty[ea], eb, ea)
            border &= ~hard | settled[src]
        if not border.any():
            break
        inner = np.where(empty[ea[border]], ea[border], eb[border])
        outer = np.where(empty[ea[border]], eb[border], ea[border])
        w = length[border]
        order = np.lexsort((outer, -w, -off_road[border], inner))
        inner, outer = inner[order], outer[order]
        first = np.r_[True, inner[1:] != inner[:-1]]
        piece[inner[first]] = piece[outer[first]]
        empty[inner[first]] = False


def restrict(units: Any, piece: np.ndarray) -> Any:
    """Units without the edges between pieces (their length becomes exterior boundary)."""
    edges = np.asarray(units.edges, dtype=np.int64).reshape(-1, 2)
    cross = piece[edges[:, 0]] != piece[edges[:, 1]]
    if not cross.any():
        return units
    n = len(units.households)
    length = np.asarray(units.edge_length, dtype=float)
    extra = np.bincount(edges[cross, 0], weights=length[cross], minlength=n) + np.bincount(
        edges[cross, 1], weights=length[cross], minlength=n
    )
    keep = ~cross
    outer = getattr(units, "outer", None)
    changes: dict[str, Any] = {
        "edges": edges[keep],
        "edge_length": length[keep],
        "edge_cost": np.asarray(units.edge_cost)[keep],
        "edge_road": np.asarray(units.edge_road)[keep],
        "exterior": np.asarray(units.exterior, dtype=float) + extra,
        # a grid on a main road is not enclosed by the grids of its own piece
        "outer": (np.asarray(units.exterior if outer is None else outer, dtype=float) + extra),
    }
    if getattr(units, "edge_arterial", None) is not None:
        changes["edge_arterial"] = np.asarray(units.edge_arterial)[keep]
    return replace(units, **changes)


def forced_grids(labels: np.ndarray, pieces: Pieces, households: np.ndarray) -> dict[int, str]:
    """Grids that had to hold a main road, with why.

    Either the grid's households come from more than one piece between
    arterials (pieces too small for a grid alone), or a main road ends inside
    the grid's piece (:attr:`Pieces.inner_edges`: it separates no land, so no
    border can follow it all the way) for at least :data:`_DEAD_END_M` metres.
    (Land without households shared out across a main road:
    :func:`empty_land_grids`.)

    Examples
    --------
    >>> import numpy as np
    >>> p = Pieces(piece=np.zeros(3, dtype=int), original=np.zeros(3, dtype=int),
    ...     n_original=1, merged=[], inner_edges=np.array([[0, 1]]),
    ...     inner_arterial=np.array([120.0]))
    >>> why = forced_grids(np.array([0, 0, 1]), p, np.array([100, 100, 100]))
    >>> list(why), why[0][:46]
    ([0], 'a main road ends inside the grid (120 m of it ')
    """
    out: dict[int, str] = {}
    if pieces.inner_edges is not None and pieces.inner_arterial is not None:
        per = _metres_inside(labels, pieces.inner_edges, pieces.inner_arterial)
        if per is not None:
            for g in np.flatnonzero(per >= _DEAD_END_M):
                out[int(g)] = (
                    f"{DEAD_END_REASON} ({per[g]:.0f} m of it separate no land: "
                    "a dead end, or a road the data stop short): no border can follow it all "
                    "the way"
                )
    if not pieces.merged:
        return out
    inhabited = (pieces.original >= 0) & (np.asarray(households) > 0)
    if pieces.dedicated is not None:
        inhabited &= ~pieces.dedicated
    for g in np.unique(labels):
        mine = (labels == g) & inhabited
        spans = np.unique(pieces.original[mine])
        if len(spans) > 1:
            hh = [int(np.asarray(households)[mine & (pieces.original == s)].sum()) for s in spans]
            out[int(g)] = (
                f"spans a main road: {len(spans)} pieces between main roads "
                f"({', '.join(map(str, sorted(hh)))} households) hold too few for a grid alone"
            )
    return out


def _metres_inside(labels: np.ndarray, edges: np.ndarray, metres: np.ndarray) -> Any:
    """Metres of the ``edges`` (unit pairs) lying inside one grid, per grid; None if none do.

    Examples
    --------
    >>> _metres_inside(np.array([0, 0, 1]), np.array([[0, 1], [1, 2]]), np.array([5.0, 7.0]))
    array([5.])
    """
    la, lb = labels[edges[:, 0]], labels[edges[:, 1]]
    same = la == lb
    return np.bincount(la[same], weights=metres[same]) if same.any() else None


def empty_land_grids(labels: np.ndarray, pieces: Pieces) -> dict[int, str]:
    """Grids holding land without households shared out to them across a main road, with why.

    A verge, a median or the island between two roads forking at a junction, too
    small for a site of its own, joins a piece across a main road
    (:attr:`Pieces.across_edges`); the grid that gets it holds that road for at least
    :data:`_DEAD_END_M` metres. Whether the road then runs *through* the grid or
    along its border (a median between carriageways) is for the quality report to
    measure: these are candidates to name, not yet crossings.

    Examples
    --------
    >>> import numpy as np
    >>> # unit 2 (empty land) joined unit 1's piece across 90 m of main road
    >>> p = Pieces(piece=np.zeros(3, dtype=int), original=np.array([0, 0, -1]),
    ...     n_original=1, merged=[], across_edges=np.array([[1, 2]]),
    ...     across_arterial=np.array([90.0]))
    >>> why = empty_land_grids(np.array([0, 1, 1]), p)
    >>> list(why), why[1].split("(")[1][:38]
    ([1], '90 m of road between it and the grid),')
    >>> empty_land_grids(np.array([0, 1, 0]), p)  # the land went to the other grid
    {}
    """
    out: dict[int, str] = {}
    if pieces.across_edges is None or pieces.across_arterial is None:
        return out
    per = _metres_inside(labels, pieces.across_edges, pieces.across_arterial)
    if per is not None:
        for g in np.flatnonzero(per >= _DEAD_END_M):
            out[int(g)] = (
                f"{EMPTY_LAND_REASON}: a verge, a median or the island between two roads "
                f"forking at a junction ({per[g]:.0f} m of road between it and the grid), "
                "too small for a site of its own, has to join a grid on one side of the road"
            )
    return out


def dedicated_grids(labels: np.ndarray, pieces: Pieces) -> set[int]:
    """Grids made only of dedicated pieces (专属网格)."""
    if pieces.dedicated is None:
        return set()
    out = set()
    for g in np.unique(labels):
        if pieces.dedicated[labels == g].all():
            out.add(int(g))
    return out
