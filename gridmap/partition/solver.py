"""The graph solver: cut a community's unit graph into household-balanced grids.

The input is the unit graph of :mod:`gridmap.partition.units` (households,
area, exterior boundary and centroid per unit; shared length and cutting cost
per edge). The solver

1. picks the number of grids ``k`` from what the band allows
   (:func:`choose_k`), per connected piece of the community;
2. **constructs** grids by recursive balanced bisection: for each region and
   each of 16 directions the units are swept by a straight line; every prefix
   of the sweep is a candidate cut whose road-weighted cost comes from one
   vectorised difference array. The cheapest cut that keeps both sides
   feasible, balanced and contiguous wins — straight cuts give compact grids,
   the cost makes them slide onto streets;
3. **improves** them by local search: boundary units (and, as a second
   kind of move, all of a grid's units in one road block) move to a
   neighbouring grid when that lowers ``α·cut cost − β·Σ 4πA/P² +
   γ·Σ imbalance²`` while keeping both grids contiguous; a band violation
   costs more than anything else, so the same search also repairs warm
   starts. Grids still out of band are fixed by chains of moves through
   neighbours, by re-cutting a grid with its neighbours, or by merging and
   splitting. Then every pair of neighbouring grids is cut afresh along the
   best straight sweep when that lowers the objective (:meth:`_Solver.recombine`:
   it escapes the local optima of one-unit moves, +0.01 mean Polsby–Popper on
   the benchmark communities), round after round until none changes (a re-cut
   opens new ones for the pairs before it; with 24 candidate cuts per pair
   instead of 12, +0.01 more on the two OSM areas), and the local search runs
   once more;
4. on re-runs starts from the previous membership and only repairs what
   violates the band, with a penalty per household moved (stability);
5. leaves no grid enclosed by another (a lake shore is not "outside"): an
   enclave is opened by a corridor through its encloser, or joins it when
   both fit under the maximum; one that cannot be avoided (e.g. a courtyard
   compound inside a compound that fills a grid) is reported with the reason.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from gridmap.partition.repair import (
    _relabel_like,
    _repair,
    _RepairMixin,
    _violation,
    choose_k,
)

__all__ = ["Weights", "balance_load", "choose_k", "load_balance", "solve"]

_ANGLES = 16
_ATTEMPTS = 4
_QUALITY_ATTEMPTS = 1
_BAND_PENALTY = 100.0
# pair re-cuts run until a round changes nothing (3 suffice on the benchmark areas)
_RECOMBINE_ROUNDS = 8
# straight cuts of two grids' union tried by a re-cut (best first, 3 per sweep angle)
_RECUT_CANDIDATES = 24


@dataclass(frozen=True)
class Weights:
    """Weights of the local-search objective.

    Attributes
    ----------
    cut : float
        Per cut cost, in units of a typical grid side (road cuts are cheap).
    compact : float
        Per unit of Polsby–Popper ``4πA/P²`` summed over grids (rewarded).
    balance : float
        Per squared relative deviation of a grid's households from the target.
    stability : float
        Per household moved away from its previous grid, relative to the target.
    rerun_compact : float
        ``compact`` on re-runs (warm starts): lower, so that keeping households
        in their grid comes first.
    load : float
        Per squared relative deviation of a grid's workload from the mean, when
        balancing on load (:func:`balance_load`).
    """

    cut: float = 1.0
    compact: float = 4.0
    balance: float = 1.0
    stability: float = 4.0
    rerun_compact: float = 2.0
    load: float = 4.0


class _Graph:
    """Adjacency lists of the unit graph (Python lists for the local search)."""

    def __init__(self, n: int, edges: np.ndarray, length: np.ndarray, cost: np.ndarray) -> None:
        self.n = n
        self.edges = edges
        self.length = length
        self.cost = cost
        order = np.lexsort((np.r_[edges[:, 1], edges[:, 0]], np.r_[edges[:, 0], edges[:, 1]]))
        src = np.r_[edges[:, 0], edges[:, 1]][order]
        dst = np.r_[edges[:, 1], edges[:, 0]][order]
        ln = np.r_[length, length][order]
        cs = np.r_[cost, cost][order]
        ptr = np.searchsorted(src, np.arange(n + 1))
        self.nbr: list[list[int]] = []
        self.nlen: list[list[float]] = []
        self.ncost: list[list[float]] = []
        for u in range(n):
            a, b = ptr[u], ptr[u + 1]
            self.nbr.append(dst[a:b].tolist())
            self.nlen.append(ln[a:b].tolist())
            self.ncost.append(cs[a:b].tolist())

    def connected(self, nodes: np.ndarray) -> bool:
        """Whether the induced subgraph ``nodes`` is connected (a BFS on the lists)."""
        inside = set(nodes.tolist())
        if len(inside) <= 1:
            return True
        start = next(iter(inside))
        seen = {start}
        stack = [start]
        nbr = self.nbr
        while stack:
            x = stack.pop()
            for y in nbr[x]:
                if y in inside and y not in seen:
                    seen.add(y)
                    stack.append(y)
        return len(seen) == len(inside)

    def components(self, nodes: np.ndarray) -> np.ndarray:
        """Component label (0..) of each node of the induced subgraph ``nodes``."""
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[nodes] = np.arange(len(nodes))
        e = self.edges
        m = (pos[e[:, 0]] >= 0) & (pos[e[:, 1]] >= 0)
        a, b = pos[e[m, 0]], pos[e[m, 1]]
        mat = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(nodes), len(nodes)))
        return connected_components(mat, directed=False)[1]


class _Solver(_RepairMixin):
    def __init__(
        self,
        units: Any,
        *,
        min_households: int,
        max_households: int,
        target: float,
        weights: Weights,
        rng: np.random.Generator,
    ) -> None:
        self.hh = np.asarray(units.households, dtype=np.int64)
        self.area = np.asarray(units.area, dtype=float)
        self.ext = np.asarray(units.exterior, dtype=float)
        outer = getattr(units, "outer", None)
        # boundary on the outer edge of the community (not on a lake): a grid
        # touching it cannot be enclosed by another
        self.outer = self.ext if outer is None else np.asarray(outer, dtype=float)
        self.cx = np.asarray(units.cx, dtype=float)
        self.cy = np.asarray(units.cy, dtype=float)
        blk = getattr(units, "block", None)
        self.block = None if blk is None else np.asarray(blk, dtype=np.int64)
        self.n = len(self.hh)
        edges = np.asarray(units.edges, dtype=np.int64).reshape(-1, 2)
        self.g = _Graph(
            self.n,
            edges,
            np.asarray(units.edge_length, dtype=float),
            np.asarray(units.edge_cost, dtype=float),
        )
        self.min = min_households
        self.max = max_households
        self.target = float(target)
        self.w = weights
        self.rng = rng
        self.notes: list[str] = []
        self.angle_offset = 0.0
        self.load: np.ndarray | None = None  # per unit workload, balanced by balance_load

    # ------------------------------------------------------------ construction
    def bisect(self, nodes: np.ndarray, k: int, out: np.ndarray, next_label: list[int]) -> None:
        """Recursively cut ``nodes`` into ``k`` grids, writing labels into ``out``."""
        if k <= 1 or len(nodes) <= 1:
            out[nodes] = next_label[0]
            next_label[0] += 1
            return
        k1 = k // 2
        k2 = k - k1
        side = self._best_cut(nodes, k, k1, k2)
        left, right = nodes[side], nodes[~side]
        if len(left) == 0 or len(right) == 0:
            out[nodes] = next_label[0]
            next_label[0] += 1
            return
        self.bisect(left, k1, out, next_label)
        self.bisect(right, k2, out, next_label)

    def _cut_candidates(
        self, nodes: np.ndarray, k: int, k1: int, k2: int
    ) -> tuple[list[tuple[float, int, int]], list[np.ndarray]]:
        """Straight sweep cuts of ``nodes`` (score, angle, prefix), best first, and the sweeps."""
        n = len(nodes)
        hh = self.hh[nodes]
        total = float(hh.sum())
        avg = max(total / k, 1.0)
        lref = math.sqrt(max(self.area[nodes].sum(), 1.0) / k)
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[nodes] = np.arange(n)
        e = self.g.edges
        m = (pos[e[:, 0]] >= 0) & (pos[e[:, 1]] >= 0)
        ea, eb = pos[e[m, 0]], pos[e[m, 1]]
        ec = self.g.cost[m]
        lo1, hi1 = k1 * self.min, k1 * self.max
        lo2, hi2 = k2 * self.min, k2 * self.max
        want = total * k1 / k
        x, y = self.cx[nodes], self.cy[nodes]
        # all sweep directions at once: row ai sweeps at angle π(ai + offset)/_ANGLES
        th = [math.pi * (ai + self.angle_offset) / _ANGLES for ai in range(_ANGLES)]
        cos = np.array([math.cos(a) for a in th])  # libm, not SIMD: same bits everywhere
        sin = np.array([math.sin(a) for a in th])
        proj = cos[:, None] * x[None, :] + sin[:, None] * y[None, :]
        if n > 1 and not (np.diff(nodes) > 0).all():  # ties broken by unit index
            proj = proj[:, np.argsort(nodes, kind="stable")]
            order = np.argsort(nodes, kind="stable")[np.argsort(proj, axis=1, kind="stable")]
        else:
            order = np.argsort(proj, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), order.shape), axis=1)
        ra, rb = rank[:, ea], rank[:, eb]
        row = (np.arange(_ANGLES) * (n + 1))[:, None]
        lo = (np.minimum(ra, rb) + row).ravel()
        hi = (np.maximum(ra, rb) + row).ravel()
        w = np.broadcast_to(ec, ra.shape).ravel()
        size = _ANGLES * (n + 1)
        diff = np.bincount(lo, weights=w, minlength=size) - np.bincount(
            hi, weights=w, minlength=size
        )
        cut = np.cumsum(diff.reshape(_ANGLES, n + 1), axis=1)[:, : n - 1]
        h1 = np.cumsum(hh[order], axis=1)[:, : n - 1].astype(float)
        h2 = total - h1
        feas = (h1 >= lo1) & (h1 <= hi1) & (h2 >= lo2) & (h2 <= hi2)
        feas[~feas.any(axis=1)] = True
        score = (
            self.w.cut * cut / lref
            + 4.0 * ((h1 - want) / avg) ** 2 / k1
            + 4.0 * ((h2 - (total - want)) / avg) ** 2 / k2
        )
        score = np.where(feas, score, np.inf)
        best = np.argsort(score, axis=1, kind="stable")[:, :3]
        top = np.take_along_axis(score, best, axis=1)
        ai_, k_ = np.nonzero(np.isfinite(top))
        cands: list[tuple[float, int, int]] = list(
            zip(top[ai_, k_].tolist(), ai_.tolist(), best[ai_, k_].tolist(), strict=True)
        )
        orders = list(order)
        cands.sort()
        return cands, orders

    def _best_cut(self, nodes: np.ndarray, k: int, k1: int, k2: int) -> np.ndarray:
        n = len(nodes)
        cands, orders = self._cut_candidates(nodes, k, k1, k2)
        chosen = None
        for _, ai, p in cands[:12]:
            side = np.zeros(n, dtype=bool)
            side[orders[ai][: p + 1]] = True
            if self.g.connected(nodes[side]) and self.g.connected(nodes[~side]):
                chosen = side
                break
        if chosen is None:
            if not cands:
                side = np.zeros(n, dtype=bool)
                side[: n // 2] = True
                return side
            _, ai, p = cands[0]
            chosen = np.zeros(n, dtype=bool)
            chosen[orders[ai][: p + 1]] = True
            chosen = self._make_contiguous(nodes, chosen)
        return chosen

    def recombine(self, label: np.ndarray, rounds: int = 1) -> np.ndarray:
        """Re-cut each pair of neighbouring grids where another straight cut scores better.

        The local search moves one unit or one block at a time and stops in
        local optima; cutting the union of two grids afresh (every sweep angle,
        the band enforced on both sides, both sides contiguous) escapes them.
        A new cut is kept when it lowers the objective of the two grids
        (compactness, balance and the cost of the cut between them, as in
        :meth:`improve`).
        """
        out = label.copy()
        e = self.g.edges
        ng = int(out.max()) + 1
        lref = math.sqrt(max(float(self.area.sum()), 1.0) / max(ng, 1))
        wp, wb, wc = self.w.compact, self.w.balance, self.w.cut / lref
        t = self.target
        four_pi = 4.0 * math.pi

        def score(h: np.ndarray, a: np.ndarray, p: np.ndarray) -> np.ndarray:
            d = (h - t) / t
            return -wp * four_pi * a / np.maximum(p, 1e-9) ** 2 + wb * d * d

        for _ in range(rounds):
            improved = False
            cross = out[e[:, 0]] != out[e[:, 1]]
            pa, pb = out[e[cross, 0]], out[e[cross, 1]]
            pairs = sorted({(int(min(x, y)), int(max(x, y))) for x, y in zip(pa, pb, strict=True)})
            for g, h in pairs:
                nodes = np.flatnonzero((out == g) | (out == h))
                pos = np.full(self.n, -1, dtype=np.int64)
                pos[nodes] = np.arange(len(nodes))
                ia, ib = pos[e[:, 0]], pos[e[:, 1]]
                inner = (ia >= 0) & (ib >= 0)
                ea, eb = ia[inner], ib[inner]
                elen, ecost = self.g.length[inner], self.g.cost[inner]
                # boundary towards other grids (and the outside), per node of the pair
                rim_e = (ia >= 0) ^ (ib >= 0)
                owner = np.where(ia[rim_e] >= 0, ia[rim_e], ib[rim_e])
                rim = self.ext[nodes] + np.bincount(
                    owner, weights=self.g.length[rim_e], minlength=len(nodes)
                )
                hh = self.hh[nodes].astype(float)
                ar = self.area[nodes]
                mine = out[nodes] == g
                h1 = float(hh[mine].sum())
                if not (self.min <= h1 <= self.max and self.min <= hh.sum() - h1 <= self.max):
                    continue
                cands, orders = self._cut_candidates(nodes, 2, 1, 1)
                sides = np.zeros((len(cands[:_RECUT_CANDIDATES]) + 1, len(nodes)), dtype=bool)
                sides[0] = mine
                for i, (_, ai, p) in enumerate(cands[:_RECUT_CANDIDATES], start=1):
                    sides[i, orders[ai][: p + 1]] = True
                # objective of the two grids for the current cut (row 0) and each candidate
                # (sums, not BLAS products: the same bits on every machine)
                cut = sides[:, ea] != sides[:, eb]
                cut_len = np.where(cut, elen, 0.0).sum(axis=1)
                s1 = np.where(sides, hh, 0.0).sum(axis=1)
                a1 = np.where(sides, ar, 0.0).sum(axis=1)
                r1 = np.where(sides, rim, 0.0).sum(axis=1)
                val = (
                    score(s1, a1, r1 + cut_len)
                    + score(hh.sum() - s1, ar.sum() - a1, rim.sum() - r1 + cut_len)
                    + wc * np.where(cut, ecost, 0.0).sum(axis=1)
                )
                ok = (s1 >= self.min) & (s1 <= self.max)
                ok &= (hh.sum() - s1 >= self.min) & (hh.sum() - s1 <= self.max)
                ok &= val < val[0] - 1e-9
                ok[0] = False
                for i in np.flatnonzero(ok)[np.argsort(val[ok], kind="stable")]:
                    side = sides[i]
                    if self.g.connected(nodes[side]) and self.g.connected(nodes[~side]):
                        out[nodes[side]] = g
                        out[nodes[~side]] = h
                        improved = True
                        break
            if not improved:
                break
        return out

    def _make_contiguous(self, nodes: np.ndarray, side: np.ndarray) -> np.ndarray:
        side = side.copy()
        for flag in (True, False):
            mask = side == flag
            if mask.sum() == 0:
                continue
            lab = self.g.components(nodes[mask])
            if lab.max() == 0:
                continue
            weight = np.bincount(lab, weights=self.hh[nodes[mask]] + 1e-3 * self.area[nodes[mask]])
            keep = int(np.argmax(weight))
            idx = np.flatnonzero(mask)
            side[idx[lab != keep]] = not flag
        return side

    # ------------------------------------------------------------ local search
    def improve(
        self,
        label: np.ndarray,
        *,
        previous: np.ndarray | None = None,
        frozen: np.ndarray | None = None,
        max_passes: int = 30,
    ) -> np.ndarray:
        """Move boundary units between grids while the objective drops."""
        lab = label.tolist()
        ng = int(label.max()) + 1
        hh = self.hh.tolist()
        area = self.area.tolist()
        ext = self.ext.tolist()
        ld = self.load.tolist() if self.load is not None else [0.0] * self.n
        nbr, nlen, ncost = self.g.nbr, self.g.nlen, self.g.ncost
        L = [0.0] * ng
        H = [0.0] * ng
        A = [0.0] * ng
        P = [0.0] * ng
        cnt = [0] * ng
        for u in range(self.n):
            g = lab[u]
            H[g] += hh[u]
            L[g] += ld[u]
            A[g] += area[u]
            cnt[g] += 1
            P[g] += ext[u]
            for v, ln in zip(nbr[u], nlen[u], strict=True):
                if lab[v] != g:
                    P[g] += ln
        t = self.target
        lref = math.sqrt(max(sum(A), 1.0) / max(ng, 1))
        wc, wp, wb, ws = self.w.cut / lref, self.w.compact, self.w.balance, self.w.stability
        lo_b, hi_b = self.min, self.max
        prev = previous.tolist() if previous is not None else None
        froz = frozen.tolist() if frozen is not None else [False] * self.n
        blocks = self.block.tolist() if self.block is not None else None
        four_pi = 4.0 * math.pi
        # workload balance (secondary to the band): squared deviation from the mean load
        wl = self.w.load if self.load is not None else 0.0
        # mean load over the grids that can change (frozen ones, e.g. dedicated, left out)
        active = sorted({lab[u] for u in range(self.n) if not froz[u]})
        lbar = max(sum(L[g] for g in active) / max(len(active), 1), 1e-9)

        def term(h: float, a: float, p: float, load: float = 0.0) -> float:
            viol = 0.0
            if h < lo_b:
                e = (lo_b - h) / t
                viol = e * e + e + 1.0
            elif h > hi_b:
                e = (h - hi_b) / t
                viol = e * e + e + 1.0
            d = (h - t) / t
            out = -wp * four_pi * a / (p * p) + wb * d * d + _BAND_PENALTY * viol
            if wl:
                e_l = (load - lbar) / lbar
                out += wl * e_l * e_l
            return out

        def connected_without(u: int, g: int) -> bool:
            targets = [v for v in nbr[u] if lab[v] == g]
            if len(targets) <= 1:
                return True
            need = set(targets)
            start = targets[0]
            need.discard(start)
            seen = {start, u}
            dq = deque([start])
            while dq:
                x = dq.popleft()
                for y in nbr[x]:
                    if y not in seen and lab[y] == g:
                        if y in need:
                            need.discard(y)
                            if not need:
                                return True
                        seen.add(y)
                        dq.append(y)
            return not need

        def empty_tails(u: int, g: int) -> list[int] | None:
            """Units of g cut off by removing u, if all but the main piece are empty."""
            seen = {u}
            pieces: list[list[int]] = []
            for s0 in nbr[u]:
                if lab[s0] != g or s0 in seen:
                    continue
                comp = [s0]
                seen.add(s0)
                dq = deque([s0])
                while dq:
                    x = dq.popleft()
                    for y in nbr[x]:
                        if y not in seen and lab[y] == g:
                            seen.add(y)
                            comp.append(y)
                            dq.append(y)
                pieces.append(comp)
            if len(pieces) <= 1:
                return []
            weights = [(sum(hh[x] for x in c), sum(area[x] for x in c)) for c in pieces]
            main = max(range(len(pieces)), key=lambda i: weights[i])
            tails = [x for i, c in enumerate(pieces) if i != main for x in c]
            if any(hh[x] for x in tails) or any(froz[x] for x in tails) or len(tails) > 50:
                return None
            return tails

        def set_move(S: list[int], g: int, h: int) -> tuple[float, float, float]:
            inS = set(S)
            dpg = dph = dcut = 0.0
            for x in S:
                dpg -= ext[x]
                dph += ext[x]
                for v, ln, cs in zip(nbr[x], nlen[x], ncost[x], strict=True):
                    if v in inS:
                        continue
                    y = lab[v]
                    if y == g:
                        dpg += ln
                        dph += ln
                        dcut += cs
                    elif y == h:
                        dpg -= ln
                        dph -= ln
                        dcut -= cs
                    else:
                        dpg -= ln
                        dph += ln
            hS = sum(hh[x] for x in S)
            aS = sum(area[x] for x in S)
            lS = sum(ld[x] for x in S)
            pg2, ph2 = P[g] + dpg, P[h] + dph
            d = (
                term(H[g] - hS, A[g] - aS, pg2, L[g] - lS)
                - term(H[g], A[g], P[g], L[g])
                + term(H[h] + hS, A[h] + aS, ph2, L[h] + lS)
                - term(H[h], A[h], P[h], L[h])
                + wc * dcut
            )
            return d, pg2, ph2

        order = self.rng.permutation(self.n).tolist()

        def unit_passes() -> None:
            for _ in range(max_passes):
                moved = 0
                for u in order:
                    if froz[u]:
                        continue
                    g = lab[u]
                    s_len: dict[int, float] = {}
                    s_cost: dict[int, float] = {}
                    for v, ln, cs in zip(nbr[u], nlen[u], ncost[u], strict=True):
                        x = lab[v]
                        s_len[x] = s_len.get(x, 0.0) + ln
                        s_cost[x] = s_cost.get(x, 0.0) + cs
                    if len(s_len) == 1 and g in s_len:
                        continue
                    if cnt[g] <= 1:
                        continue
                    tot_len = sum(s_len.values())
                    in_g = s_len.get(g, 0.0)
                    hu, au, lu = hh[u], area[u], ld[u]
                    pg = P[g] - ext[u] - (tot_len - in_g) + in_g
                    base_g = term(H[g], A[g], P[g], L[g])
                    new_g = term(H[g] - hu, A[g] - au, pg, L[g] - lu)
                    stab_from = 0.0
                    if prev is not None and hu:
                        pu = prev[u]
                        stab_from = ws * hu / t
                    best = -1e-9
                    best_h = -1
                    for h, in_h in s_len.items():
                        if h == g:
                            continue
                        ph = P[h] + ext[u] + (tot_len - in_h) - in_h
                        delta = (
                            new_g
                            - base_g
                            + term(H[h] + hu, A[h] + au, ph, L[h] + lu)
                            - term(H[h], A[h], P[h], L[h])
                            + wc * (s_cost.get(g, 0.0) - s_cost[h])
                        )
                        if prev is not None and hu:
                            delta += (stab_from if pu == g else 0.0) - (
                                stab_from if pu == h else 0.0
                            )
                        if delta < best:
                            best = delta
                            best_h = h
                    if best_h < 0:
                        continue
                    if not connected_without(u, g):
                        # u is a cut vertex of g: move it together with the pieces of
                        # empty land (no households) that would be cut off
                        tails = empty_tails(u, g)
                        if tails is None:
                            continue
                        S = [u, *tails]
                        d, pg2, ph2 = set_move(S, g, best_h)
                        if prev is not None and hu:
                            d += (stab_from if pu == g else 0.0) - (
                                stab_from if pu == best_h else 0.0
                            )
                        if d >= -1e-9:
                            continue
                        h = best_h
                        P[g], P[h] = pg2, ph2
                        aS = sum(area[x] for x in S)
                        lS = sum(ld[x] for x in S)
                        L[g] -= lS
                        L[h] += lS
                        H[g] -= hu
                        H[h] += hu
                        A[g] -= aS
                        A[h] += aS
                        cnt[g] -= len(S)
                        cnt[h] += len(S)
                        for x in S:
                            lab[x] = h
                        moved += 1
                        continue
                    h = best_h
                    in_h = s_len[h]
                    P[g] = pg
                    P[h] = P[h] + ext[u] + (tot_len - in_h) - in_h
                    L[g] -= lu
                    L[h] += lu
                    H[g] -= hu
                    H[h] += hu
                    A[g] -= au
                    A[h] += au
                    cnt[g] -= 1
                    cnt[h] += 1
                    lab[u] = h
                    moved += 1
                if moved == 0:
                    break

        def connected_after(g: int, S: set[int]) -> bool:
            rest_nodes = cnt[g] - len(S)
            if rest_nodes <= 0:
                return False
            start = next((v for x in S for v in nbr[x] if lab[v] == g and v not in S), None)
            if start is None:
                return False
            seen = {start}
            dq = deque([start])
            while dq:
                x = dq.popleft()
                for y in nbr[x]:
                    if y not in seen and lab[y] == g and y not in S:
                        seen.add(y)
                        dq.append(y)
            return len(seen) == rest_nodes

        def block_pass() -> int:
            """Move all of a grid's units in one road block to a neighbouring grid."""
            if blocks is None:
                return 0
            groups: dict[tuple[int, int], list[int]] = {}
            for u in range(self.n):
                groups.setdefault((lab[u], blocks[u]), []).append(u)
            moves = 0
            for (g, _b), S in sorted(groups.items()):
                if any(lab[x] != g or froz[x] for x in S) or len(S) >= cnt[g]:
                    continue
                inS = set(S)
                targets = {lab[v] for x in S for v in nbr[x] if lab[v] != g and v not in inS}
                best_d, best_h, best_p = -1e-9, -1, (0.0, 0.0)
                for h in sorted(targets):
                    d, pg2, ph2 = set_move(S, g, h)
                    if prev is not None:
                        for x in S:
                            if hh[x]:
                                d += ws * hh[x] / t * ((prev[x] == g) - (prev[x] == h))
                    if d < best_d:
                        best_d, best_h, best_p = d, h, (pg2, ph2)
                if best_h < 0 or not connected_after(g, inS):
                    continue
                h = best_h
                P[g], P[h] = best_p
                hS = sum(hh[x] for x in S)
                aS = sum(area[x] for x in S)
                lS = sum(ld[x] for x in S)
                L[g] -= lS
                L[h] += lS
                H[g] -= hS
                H[h] += hS
                A[g] -= aS
                A[h] += aS
                cnt[g] -= len(S)
                cnt[h] += len(S)
                for x in S:
                    lab[x] = h
                moves += 1
            return moves

        unit_passes()
        for _ in range(4):
            if block_pass() == 0:
                break
            unit_passes()
        return np.asarray(lab, dtype=np.int64)

    def objective(self, label: np.ndarray) -> float:
        """Return the local search's objective of a labelling (lower is better), band aside."""
        ng = int(label.max()) + 1
        H = np.bincount(label, weights=self.hh, minlength=ng)
        A = np.bincount(label, weights=self.area, minlength=ng)
        e = self.g.edges
        cross = label[e[:, 0]] != label[e[:, 1]]
        P = np.bincount(label, weights=self.ext, minlength=ng)
        P += np.bincount(label[e[cross, 0]], weights=self.g.length[cross], minlength=ng)
        P += np.bincount(label[e[cross, 1]], weights=self.g.length[cross], minlength=ng)
        lref = math.sqrt(max(float(A.sum()), 1.0) / max(ng, 1))
        used = H > 0
        pp = 4.0 * math.pi * A[used] / np.maximum(P[used], 1e-9) ** 2
        d = (H[used] - self.target) / self.target
        return float(
            -self.w.compact * pp.sum()
            + self.w.balance * (d * d).sum()
            + self.w.cut / lref * self.g.cost[cross].sum()
        )

    # ------------------------------------------------------------ repairs


def _distribute(total_k: int, households: Sequence[float]) -> list[int]:
    """Split ``total_k`` grids over pieces in proportion to households (each ≥ 1)."""
    n = len(households)
    if total_k <= n:
        return [1] * n
    h = np.asarray(households, dtype=float)
    share = (total_k - n) * h / max(h.sum(), 1.0)
    base = np.floor(share).astype(int)
    rest = total_k - n - int(base.sum())
    order = np.argsort(-(share - base), kind="stable")
    base[order[:rest]] += 1
    return [int(b) + 1 for b in base]


def solve(
    units: Any,
    *,
    min_households: int = 200,
    max_households: int = 500,
    target: float | None = None,
    n_grids: int | None = None,
    seed: int | None = 0,
    initial: np.ndarray | None = None,
    weights: Weights | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Assign every unit to a grid.

    Parameters
    ----------
    units : Units
        The unit graph (any object with ``households``, ``area``, ``exterior``,
        ``cx``, ``cy``, ``edges``, ``edge_length`` and ``edge_cost``).
    min_households, max_households : int
        The household band.
    target : float, optional
        Households per grid to aim at; default the middle of the band.
    n_grids : int, optional
        Fixed number of grids (spread over separate pieces of the community in
        proportion to their households).
    seed : int or None
        Seed of the local search's visiting order.
    initial : numpy.ndarray, optional
        Warm start: previous grid label per unit (``-1`` for new units). Grids
        are kept and only repaired where they violate the band; moving a
        household away from its previous grid is penalised.
    weights : Weights, optional
        Objective weights.

    Returns
    -------
    labels : numpy.ndarray
        Grid label (0..k-1) per unit; with ``initial``, labels of kept grids
        equal their initial label where possible (new grids get new labels).
    notes : list of str
        Why the band could not be met, when it could not.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> # a 4 x 1 strip of units with 100 households each, band 150-250
    >>> u = SimpleNamespace(households=np.full(4, 100), area=np.full(4, 100.0),
    ...     exterior=np.array([30.0, 20, 20, 30]), cx=np.array([5.0, 15, 25, 35]),
    ...     cy=np.full(4, 5.0), edges=np.array([[0, 1], [1, 2], [2, 3]]),
    ...     edge_length=np.full(3, 10.0), edge_cost=np.full(3, 10.0))
    >>> solve(u, min_households=150, max_households=250)[0].tolist()
    [0, 0, 1, 1]
    """
    if target is None:
        target = (min_households + max_households) / 2
    s = _Solver(
        units,
        min_households=min_households,
        max_households=max_households,
        target=target,
        weights=weights or Weights(),
        rng=np.random.default_rng(seed),
    )
    notes: list[str] = []
    if s.n == 0:
        return np.empty(0, dtype=np.int64), notes
    comp = s.g.components(np.arange(s.n))
    n_comp = int(comp.max()) + 1
    comp_h = np.bincount(comp, weights=s.hh, minlength=n_comp)
    if n_comp > 1:
        notes.append(
            f"community is in {n_comp} separate pieces; each piece is partitioned on its own "
            "so that every grid stays one polygon"
        )
    if initial is not None and n_grids is None and (np.asarray(initial) >= 0).any():
        s.w = replace(s.w, compact=s.w.rerun_compact)
        label = np.asarray(initial, dtype=np.int64).copy()
        label = s.contiguous_grids(label)
        label = s.fill_unlabelled(label)
        # pieces without any previous grid are built from scratch
        nxt = [int(label.max()) + 1]
        for c in range(n_comp):
            nodes = np.flatnonzero((comp == c) & (label < 0))
            if len(nodes):
                k = choose_k(int(s.hh[nodes].sum()), min_households, max_households, target)
                s.bisect(nodes, k, label, nxt)
        prev = label.copy()
        label = s.improve(label, previous=prev)
        label = s.split_heavy(label, None)
        label = s.merge_light(label, None)
        keep = _relabel_like(label, prev, s.hh)
        label = s.improve(keep, previous=prev)
        label = _repair(s, label, prev)
    else:
        if isinstance(n_grids, int):
            ks = _distribute(n_grids, comp_h.tolist())
        else:
            ks = [choose_k(int(h), min_households, max_households, target) for h in comp_h.tolist()]
        best: tuple[float, float, np.ndarray] | None = None
        for attempt in range(_ATTEMPTS):
            # further attempts turn the sweep lines: while some grid is out of band,
            # and (the first _QUALITY_ATTEMPTS) to keep the most compact result
            s.angle_offset = attempt / _ATTEMPTS
            label = np.full(s.n, -1, dtype=np.int64)
            nxt = [0]
            for c in range(n_comp):
                nodes = np.flatnonzero(comp == c)
                k = min(ks[c], len(nodes))
                s.bisect(nodes, k, label, nxt)
            label = s.improve(label)
            if n_grids is not None:  # a fixed count is kept, even outside the band
                break
            label = s.merge_empty(label)
            label = _repair(s, label, None)
            label = s.improve(s.recombine(label, rounds=_RECOMBINE_ROUNDS))
            viol = _violation(s, label, comp, comp_h)
            obj = s.objective(label)
            if best is None or (viol, obj) < best[:2]:
                best = (viol, obj, label)
            if best[0] == 0 and attempt + 1 >= _QUALITY_ATTEMPTS:
                break
        if best is not None:
            label = best[2]
    if s.enclaves(label):
        label = s.fix_enclaves(label)
    label = s.fix_holes(label)
    if n_grids is None and s.enclosed(label):  # a fixed count is kept
        label = s.merge_enclosed(label)
    ng = int(label.max()) + 1
    H = np.bincount(label, weights=s.hh, minlength=ng)
    for c in range(n_comp):
        hc = int(comp_h[c])
        where = f" (piece {c + 1} of {n_comp})" if n_comp > 1 else ""
        if hc < min_households:
            if n_comp > 1 and hc == 0:
                notes.append(
                    f"piece {c + 1} of {n_comp} holds no households (separate land, or touching "
                    "the rest only at a point): a grid of its own so that every grid stays one "
                    "polygon"
                )
            else:
                notes.append(
                    f"only {hc} households{where}, below the minimum {min_households}: one grid"
                )
            continue
        gs = np.unique(label[comp == c])
        bad = [int(g) for g in gs if not (min_households <= H[g] <= max_households)]
        if not bad:
            continue
        lo = math.ceil(hc / max_households)
        hi = hc // min_households
        if lo > hi:
            notes.append(
                f"{hc} households{where} cannot be cut into grids of "
                f"{min_households}-{max_households}: {len(gs)} grids, {len(bad)} outside the band"
            )
        else:
            big = [u for u in np.flatnonzero(comp == c) if s.hh[u] > max_households]
            if big:
                why = f"{len(big)} indivisible unit(s) above the maximum"
            elif isinstance(n_grids, int):
                why = f"the number of grids is fixed (n_grids={n_grids})"
            else:
                why = "indivisible units leave no in-band cut"
            notes.append(f"{len(bad)} grid(s){where} outside the band: {why}")
    if isinstance(n_grids, int) and ng < n_grids:
        notes.append(
            f"n_grids={n_grids} asked for, but only {ng} grid(s) possible: the community has "
            f"{s.n} indivisible unit(s) (buildings, building groups or compounds kept whole)"
        )
    for g, b in sorted(s.enclosed(label).items()):
        why = s.enclave_reason(label, g, b, fixed_k=isinstance(n_grids, int))
        notes.append(f"enclave unavoidable: {why}")
    return label, notes


def load_balance(labels: np.ndarray, load: np.ndarray) -> tuple[float, float]:
    """Coefficient of variation and max/median of the load per grid.

    Examples
    --------
    >>> cv, top = load_balance(np.array([0, 0, 1, 2]), np.array([1.0, 1.0, 4.0, 2.0]))
    >>> round(cv, 4), top  # loads per grid 2, 4, 2
    (0.3536, 2.0)
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return math.nan, math.nan
    per = np.bincount(labels, weights=np.asarray(load, dtype=float))
    per = per[np.bincount(labels) > 0]
    mean = float(per.mean())
    cv = float(per.std() / mean) if mean > 0 else math.nan
    med = float(np.median(per))
    return cv, (float(per.max()) / med if med > 0 else math.nan)


def balance_load(
    units: Any,
    labels: np.ndarray,
    load: np.ndarray,
    *,
    min_households: int = 200,
    max_households: int = 500,
    target: float | None = None,
    seed: int | None = 0,
    frozen: np.ndarray | None = None,
    weights: Weights | None = None,
) -> np.ndarray:
    """Move boundary units between grids so that their workload is more even.

    The grids of :func:`solve` are the start; the local search of the solver
    runs again with one more term, ``Weights.load`` × the squared relative
    deviation of each grid's load from the mean. The household band stays a
    hard constraint (a move that takes a grid out of it costs more than any
    gain), and so do contiguity and the number of grids; compactness and cut
    costs still count, so grids do not turn into snakes. The result is kept
    only when it lowers the load's coefficient of variation without a grid
    leaving the band; otherwise ``labels`` come back unchanged.

    Parameters
    ----------
    units : Units
        The unit graph (as for :func:`solve`).
    labels : numpy.ndarray
        Grid per unit, from :func:`solve`.
    load : numpy.ndarray
        Workload per unit (e.g. households + 0.2 × cases + 2 × care households).
    min_households, max_households, target, seed, weights
        As for :func:`solve`.
    frozen : numpy.ndarray of bool, optional
        Units that must keep their grid (dedicated grids, locks).

    Returns
    -------
    numpy.ndarray
        New labels (same grids, some units moved).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> # a strip of 6 units of 100 households; the last one has 300 cases of load
    >>> u = SimpleNamespace(households=np.full(6, 100), area=np.full(6, 100.0),
    ...     exterior=np.array([30.0, 20, 20, 20, 20, 30]), cx=np.arange(6) * 10.0 + 5,
    ...     cy=np.full(6, 5.0), edges=np.array([[i, i + 1] for i in range(5)]),
    ...     edge_length=np.full(5, 10.0), edge_cost=np.full(5, 10.0))
    >>> load = np.array([100.0, 100, 100, 100, 100, 400])
    >>> balance_load(u, np.array([0, 0, 0, 1, 1, 1]), load,
    ...              min_households=150, max_households=450).tolist()
    [0, 0, 0, 0, 1, 1]
    """
    if target is None:
        target = (min_households + max_households) / 2
    labels = np.asarray(labels, dtype=np.int64)
    load = np.asarray(load, dtype=float)
    if len(labels) == 0 or len(np.unique(labels)) < 2 or not (load > 0).any():
        return labels
    s = _Solver(
        units,
        min_households=min_households,
        max_households=max_households,
        target=target,
        weights=weights or _LOAD_WEIGHTS,
        rng=np.random.default_rng(seed),
    )
    s.load = load
    out = s.improve(labels, frozen=frozen)
    if s.enclaves(out) and not s.enclaves(labels):
        out = s.fix_enclaves(out)

    free = np.ones(len(labels), dtype=bool) if frozen is None else ~np.asarray(frozen, bool)

    def band_miss(lab: np.ndarray) -> int:
        h = np.bincount(lab[free], weights=s.hh[free])
        h = h[np.bincount(lab[free]) > 0]
        return int(((h < min_households) | (h > max_households)).sum())

    if (
        band_miss(out) > band_miss(labels)
        or not np.array_equal(out[~free], labels[~free])
        or len(s.enclosed(out)) > len(s.enclosed(labels))
        or not load_balance(out[free], load[free])[0]
        < load_balance(labels[free], load[free])[0] - 1e-12
    ):
        return labels
    return out


#: Weights of :func:`balance_load`: households are held by the band alone, the load spread
#: counts most, compactness and cuts as in :func:`solve`.
_LOAD_WEIGHTS = Weights(balance=0.0, load=8.0)
