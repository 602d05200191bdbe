"""Repairs of grids that miss the household band, shared by cold and warm starts.

The solver's local search moves one unit (or one road block) at a time. Some
grids cannot be fixed that way — a grid whose neighbours have no slack, a grid
holding only empty land, a grid grown above the maximum on a re-run. The moves
here handle them:

* :meth:`_RepairMixin.chain_repair` — chains of single-unit moves through
  neighbours (pull a unit from a neighbour, which pulls from its neighbour …);
* :meth:`_RepairMixin.repair_pairs` — re-cut a grid together with one, two or
  all nearby grids, with the band enforced on every cut;
* :meth:`_RepairMixin.merge_light` / :meth:`_RepairMixin.split_heavy` — change
  the number of grids when nothing else works;
* :meth:`_RepairMixin.merge_empty` — grids without households join a neighbour.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from scipy import sparse

__all__ = ["choose_k"]


def choose_k(households: int, min_households: int, max_households: int, target: float) -> int:
    """Return the number of grids: the count nearest ``households / target`` the band allows.

    When no whole number of grids fits the band (e.g. 520 households with a band
    of 300–500), the smallest count that keeps every grid under the maximum is
    returned; below the minimum, one grid.

    Examples
    --------
    >>> choose_k(5500, 200, 500, 350), choose_k(150, 200, 500, 350), choose_k(520, 300, 500, 400)
    (16, 1, 2)
    """
    if households <= 0:
        return 1
    lo = max(1, math.ceil(households / max_households))
    hi = households // min_households if min_households > 0 else lo
    if lo <= hi:
        return int(min(max(round(households / target), lo), hi))
    return lo


class _RepairMixin:
    """Repair moves; mixed into the solver, which provides the graph and ``bisect``."""

    hh: np.ndarray
    area: np.ndarray
    ext: np.ndarray
    outer: np.ndarray
    n: int
    min: int
    max: int
    target: float
    g: Any

    def bisect(self, nodes: np.ndarray, k: int, out: np.ndarray, next_label: list[int]) -> None:
        raise NotImplementedError

    def split_heavy(self, label: np.ndarray, frozen: np.ndarray | None) -> np.ndarray:
        """Re-bisect grids above the maximum (warm starts after households grew)."""
        out = label.copy()
        next_label = [int(out.max()) + 1]
        for g in np.unique(label):
            nodes = np.flatnonzero(label == g)
            if frozen is not None and frozen[nodes].any():
                continue
            h = int(self.hh[nodes].sum())
            if h > self.max and len(nodes) > 1:
                k = choose_k(h, self.min, self.max, self.target)
                if k > 1:
                    sub = np.full(self.n, -1, dtype=np.int64)
                    self.bisect(nodes, k, sub, [0])
                    first = sub[nodes] == 0
                    out[nodes[~first]] = sub[nodes[~first]] - 1 + next_label[0]
                    next_label[0] += k - 1
        return _compact_labels(out)

    def merge_light(self, label: np.ndarray, frozen: np.ndarray | None) -> np.ndarray:
        """Merge grids below the minimum into their lightest neighbour when that fits."""
        out = label.copy()
        while True:
            ng = int(out.max()) + 1
            H = np.bincount(out, weights=self.hh, minlength=ng)
            light = [g for g in np.argsort(H, kind="stable") if H[g] < self.min]
            done = False
            for g in light:
                nodes = np.flatnonzero(out == g)
                if frozen is not None and frozen[nodes].any():
                    continue
                nb = sorted(
                    {out[v] for u in nodes for v in self.g.nbr[u] if out[v] != g},
                    key=lambda x: (H[x], x),
                )
                for h in nb:
                    if H[h] + H[g] <= self.max and not (
                        frozen is not None and frozen[out == h].any()
                    ):
                        out[nodes] = h
                        done = True
                        break
                if done:
                    break
            if not done:
                return _compact_labels(out)
            out = _compact_labels(out)

    def repair_pairs(self, label: np.ndarray, frozen: np.ndarray | None = None) -> np.ndarray:
        """Re-cut an out-of-band grid together with one or two neighbours.

        Single-unit moves cannot fix a grid whose neighbours have no slack; cutting
        the union of the grid and its neighbours afresh (with the band enforced on
        every cut) usually can.
        """
        out = label.copy()
        for _ in range(3 * (int(out.max()) + 1)):
            ng = int(out.max()) + 1
            H = np.bincount(out, weights=self.hh, minlength=ng)
            bad = [g for g in range(ng) if H[g] > 0 and not (self.min <= H[g] <= self.max)]
            fixed = False
            for g in bad:
                nodes_g = np.flatnonzero(out == g)
                if frozen is not None and frozen[nodes_g].any():
                    continue
                nbs = sorted(
                    {int(out[v]) for u in nodes_g for v in self.g.nbr[u] if out[v] != g},
                    key=lambda x: (-H[x], x) if H[g] < self.min else (H[x], x),
                )
                groups = [[h] for h in nbs] + [
                    [a, b] for i, a in enumerate(nbs) for b in nbs[i + 1 :]
                ]
                groups = groups[:12]
                ring = set(nbs)
                for h in nbs:
                    ring |= {int(out[v]) for u in np.flatnonzero(out == h) for v in self.g.nbr[u]}
                ring.discard(g)
                groups.append(sorted(ring))
                for grp in groups:
                    members = [g, *grp]
                    nodes = np.flatnonzero(np.isin(out, members))
                    if frozen is not None and frozen[nodes].any():
                        continue
                    k = len(members)
                    tot = float(self.hh[nodes].sum())
                    if not (k * self.min <= tot <= k * self.max):
                        continue
                    sub = np.full(self.n, -1, dtype=np.int64)
                    self.bisect(nodes, k, sub, [0])
                    hs = np.bincount(sub[nodes], weights=self.hh[nodes], minlength=k)
                    if len(hs) == k and ((hs >= self.min) & (hs <= self.max)).all():
                        for i, m in enumerate(members):
                            out[nodes[sub[nodes] == i]] = m
                        fixed = True
                        break
                if fixed:
                    break
            if not fixed:
                break
        return out

    def _detach(self, out: np.ndarray, x: int) -> list[int] | None:
        """Units leaving grid ``out[x]`` with ``x``: x plus any empty land cut off by it."""
        g = out[x]
        seen = {x}
        pieces: list[list[int]] = []
        for s0 in self.g.nbr[x]:
            if out[s0] != g or s0 in seen:
                continue
            comp = [s0]
            seen.add(s0)
            dq = deque([s0])
            while dq:
                a = dq.popleft()
                for b in self.g.nbr[a]:
                    if b not in seen and out[b] == g:
                        seen.add(b)
                        comp.append(b)
                        dq.append(b)
            pieces.append(comp)
        if not pieces:
            return None  # x is the whole grid
        if len(pieces) == 1:
            return [x]
        w = [(int(self.hh[c].sum()), float(self.area[c].sum())) for c in pieces]
        main = max(range(len(pieces)), key=lambda i: w[i])
        if any(w[i][0] for i in range(len(pieces)) if i != main):
            return None
        return [x, *(a for i, c in enumerate(pieces) if i != main for a in c)]

    def _chain(
        self, out: np.ndarray, H: np.ndarray, g: int, depth: int, visited: set[int]
    ) -> list[tuple[list[int], int]] | None:
        """Find moves (units, to grid) that bring grid g into the band along a chain."""
        under = H[g] < self.min
        if under:
            cand = {
                (int(v), int(out[v]))
                for u in np.flatnonzero(out == g)
                for v in self.g.nbr[u]
                if out[v] != g and out[v] not in visited and self.hh[v] > 0
            }
        else:
            cand = {
                (int(u), int(out[v]))
                for u in np.flatnonzero(out == g)
                if self.hh[u] > 0
                for v in self.g.nbr[u]
                if out[v] != g and out[v] not in visited
            }
        need = self.min - H[g] if under else H[g] - self.max
        ordered = sorted(cand, key=lambda c: (abs(self.hh[c[0]] - need), c))
        for x, other in ordered[:12]:
            hx = float(self.hh[x])
            src, dst = (other, g) if under else (g, other)
            if not (self.min <= H[g] + (hx if under else -hx) <= self.max):
                continue
            moving = self._detach(out, x)
            if moving is None:
                continue
            old = out[moving].copy()
            out[moving] = dst
            H[src] -= hx
            H[dst] += hx
            if self.min <= H[other] <= self.max:
                return [(moving, dst)]
            if depth > 0:
                rest = self._chain(out, H, other, depth - 1, visited | {g, other})
                if rest is not None:
                    return [(moving, dst), *rest]
            out[moving] = old
            H[src] += hx
            H[dst] -= hx
        return None

    def chain_repair(self, label: np.ndarray, depth: int = 3) -> np.ndarray:
        """Fix out-of-band grids by chains of single-unit moves through neighbours."""
        out = label.copy()
        for _ in range(2 * (int(out.max()) + 1)):
            H = np.bincount(out, weights=self.hh, minlength=int(out.max()) + 1)
            bad = [g for g in range(len(H)) if H[g] > 0 and not self.min <= H[g] <= self.max]
            progress = False
            for g in bad:
                work = out.copy()
                hw = H.copy()
                if self._chain(work, hw, g, depth, {g}) is not None:
                    out = work
                    progress = True
                    break
            if not progress:
                break
        return out

    def merge_empty(self, label: np.ndarray) -> np.ndarray:
        """Merge grids without households into the neighbour sharing the longest boundary."""
        out = label.copy()
        while True:
            ng = int(out.max()) + 1
            H = np.bincount(out, weights=self.hh, minlength=ng)
            empty = [g for g in range(ng) if H[g] == 0 and (out == g).any()]
            done = False
            for g in empty:
                shared: dict[int, float] = {}
                for u in np.flatnonzero(out == g):
                    for v, ln in zip(self.g.nbr[u], self.g.nlen[u], strict=True):
                        if out[v] != g:
                            shared[int(out[v])] = shared.get(int(out[v]), 0.0) + ln
                if shared:
                    best = max(sorted(shared), key=lambda h: shared[h])
                    out[out == g] = best
                    done = True
                    break
            if not done:
                return _compact_labels(out)

    def fill_unlabelled(self, label: np.ndarray) -> np.ndarray:
        """Give every unit labelled -1 the grid of its longest-shared neighbour."""
        out = label.copy()
        while (out < 0).any():
            changed = False
            for u in np.flatnonzero(out < 0):
                best, best_len = -1, -1.0
                for v, ln in zip(self.g.nbr[u], self.g.nlen[u], strict=True):
                    if out[v] >= 0 and ln > best_len:
                        best, best_len = int(out[v]), ln
                if best >= 0:
                    out[u] = best
                    changed = True
            if not changed:
                break
        return out

    def contiguous_grids(self, label: np.ndarray) -> np.ndarray:
        """Keep each grid's heaviest connected piece; other pieces are unlabelled."""
        out = label.copy()
        for g in np.unique(label[label >= 0]):
            nodes = np.flatnonzero(label == g)
            comp = self.g.components(nodes)
            if comp.max() > 0:
                w = np.bincount(comp, weights=self.hh[nodes] + 1e-6 * self.area[nodes])
                out[nodes[comp != int(np.argmax(w))]] = -1
        return out

    def enclaves(self, label: np.ndarray) -> list[int]:
        """Grids that touch neither the community's outer edge nor a third grid."""
        found = []
        for g in np.unique(label):
            nodes = np.flatnonzero(label == g)
            if self.outer[nodes].sum() > 0.01:
                continue
            around = {int(label[v]) for u in nodes for v in self.g.nbr[u] if label[v] != g}
            if len(around) == 1:
                found.append(int(g))
        return found

    def enclosed(self, label: np.ndarray) -> dict[int, int]:
        """Every grid enclosed by another: ``{enclosed grid: enclosing grid}``.

        Grid B encloses grid A when every way from A to the community's outer
        edge crosses B — A lies in a hole of B, as the quality report sees it (a
        lake may share that hole). Worked out on the graph of grids (grids are
        contiguous): without B, A is not reachable from the grids touching the
        outer edge.
        """
        found: dict[int, int] = {}
        ng = int(label.max()) + 1
        present = np.flatnonzero(np.bincount(label, minlength=ng) > 0)
        reach = np.bincount(label, weights=self.outer, minlength=ng) > 0.01
        if reach[present].all():
            return found
        e = self.g.edges
        la, lb = label[e[:, 0]], label[e[:, 1]]
        cross = la != lb
        adj: dict[int, set[int]] = {int(g): set() for g in present}
        for x, y in zip(la[cross].tolist(), lb[cross].tolist(), strict=True):
            adj[x].add(y)
            adj[y].add(x)
        for b in present.tolist():
            start = [int(g) for g in present if reach[g] and g != b]
            seen = set(start)
            stack = list(start)
            while stack:
                x = stack.pop()
                for y in adj[x]:
                    if y != b and y not in seen:
                        seen.add(y)
                        stack.append(y)
            for g in present.tolist():
                if g != b and g not in seen:
                    found.setdefault(g, b)
        return found

    def enclave_reason(self, label: np.ndarray, g: int, b: int, *, fixed_k: bool = False) -> str:
        """Why grid ``g`` stays enclosed by grid ``b`` (for the report)."""
        H = np.bincount(label, weights=self.hh)
        nodes = np.flatnonzero(label == g)
        ring = {int(v) for u in nodes for v in self.g.nbr[u] if label[v] == b}
        both = int(H[g] + H[b])
        head = (
            f"a grid of {int(H[g])} households lies inside a grid of {int(H[b])} households "
            f"(together {both}"
        )
        if both <= self.max:
            why = "the number of grids is fixed" if fixed_k else "merging them was not possible"
            return f"{head}, within the maximum {self.max}, but {why})"
        if len(ring) == 1:
            return (
                f"{head} > maximum {self.max}): the land around it is one indivisible unit "
                "(a compound or building kept whole), so no way out can be opened"
            )
        return (
            f"{head} > maximum {self.max}): every way out through the surrounding grid "
            f"would take one of them out of the band {self.min}-{self.max}"
        )

    def merge_enclosed(self, label: np.ndarray) -> np.ndarray:
        """Last resort: an enclosed grid joins its encloser when both fit under the maximum."""
        out = label.copy()
        while True:
            found = self.enclosed(out)
            H = np.bincount(out, weights=self.hh)
            pair = next(((g, b) for g, b in sorted(found.items()) if H[g] + H[b] <= self.max), None)
            if pair is None:
                return out  # labels keep their numbers (warm starts map them to codes)
            out[out == pair[0]] = pair[1]

    def fix_enclaves(self, label: np.ndarray, max_steps: int = 200) -> np.ndarray:
        """Grow each enclave through the surrounding grid until it reaches out.

        Empty land of the surrounding grid next to the enclave moves first;
        units with households only when both grids stay in the band.
        """
        out = label.copy()
        steps = 0
        while steps < max_steps:
            found = self.enclaves(out)
            if not found:
                break
            g = found[0]
            nodes = np.flatnonzero(out == g)
            h = int(next(out[v] for u in nodes for v in self.g.nbr[u] if out[v] != g))
            H = np.bincount(out, weights=self.hh)
            cands = sorted(
                {int(v) for u in nodes for v in self.g.nbr[u] if out[v] == h},
                key=lambda x: (
                    self.hh[x] > 0,
                    -float(self.outer[x] > 0 or any(out[y] not in (g, h) for y in self.g.nbr[x])),
                    x,
                ),
            )
            done = False
            for x in cands:
                moving = self._detach(out, x)
                if moving is None:
                    continue
                hx = float(self.hh[moving].sum())
                if hx > 0 and not (
                    self.min <= H[g] + hx <= self.max and self.min <= H[h] - hx <= self.max
                ):
                    continue
                out[moving] = g
                done = True
                break
            steps += 1
            if not done:
                break
        return out

    def fix_holes(self, label: np.ndarray) -> np.ndarray:
        """Open grids that wrap around others: cut a corridor through the wrapping grid.

        When the units outside grid B fall into a piece that touches neither the
        community edge nor the rest, B encloses that piece. The cheapest path of
        B's units (empty land first) from the piece to the outside moves to the
        enclosed grid next to it, if B stays contiguous and both stay in band.
        """
        import heapq

        out = label.copy()
        nbr = self.g.nbr
        for _ in range(2 * (int(out.max()) + 1)):
            wrapping = sorted(set(self.enclosed(out).values()))
            if not wrapping:
                break
            changed = False
            for b in wrapping:
                others = np.flatnonzero(out != b)
                if len(others) == 0:
                    continue
                comp = self.g.components(others)
                for c in np.unique(comp):
                    piece = others[comp == c]
                    if self.outer[piece].sum() > 0.01:
                        continue
                    inpiece = set(piece.tolist())
                    # Dijkstra through b's units from the piece to any b-unit touching outside
                    dist: dict[int, float] = {}
                    prev: dict[int, int] = {}
                    heap: list[tuple[float, int]] = []
                    for u in piece:
                        for v in nbr[u]:
                            if out[v] == b and v not in dist:
                                dist[v] = 1.0 + float(self.hh[v])
                                prev[v] = -1
                                heapq.heappush(heap, (dist[v], v))
                    goal = -1
                    while heap:
                        d, x = heapq.heappop(heap)
                        if d > dist.get(x, np.inf):
                            continue
                        if self.outer[x] > 0.01 or any(
                            out[y] != b and y not in inpiece for y in nbr[x]
                        ):
                            goal = x
                            break
                        for y in nbr[x]:
                            if out[y] == b:
                                nd = d + 1.0 + float(self.hh[y])
                                if nd < dist.get(y, np.inf):
                                    dist[y] = nd
                                    prev[y] = x
                                    heapq.heappush(heap, (nd, y))
                    if goal < 0:
                        continue
                    path = [goal]
                    while prev[path[-1]] >= 0:
                        path.append(prev[path[-1]])
                    start = path[-1]
                    g = int(next(out[v] for v in nbr[start] if v in inpiece))
                    trial = out.copy()
                    trial[path] = g
                    rest = np.flatnonzero(trial == b)
                    if len(rest) == 0 or not self.g.connected(rest):
                        continue
                    H = np.bincount(trial, weights=self.hh, minlength=int(out.max()) + 1)
                    moved = float(self.hh[path].sum())
                    if moved > 0 and not (
                        self.min <= H[g] <= self.max and self.min <= H[b] <= self.max
                    ):
                        continue
                    out = trial
                    changed = True
                    break
                if changed:
                    break
            if not changed:
                break
        return out


def _compact_labels(label: np.ndarray) -> np.ndarray:
    """Renumber labels 0..k-1 in order of first appearance."""
    _, first, inv = np.unique(label, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv]


def _violation(s: Any, label: np.ndarray, comp: np.ndarray, comp_h: np.ndarray) -> float:
    """Households outside the band, summed over grids of band-feasible pieces."""
    H = np.bincount(label, weights=s.hh)
    total = 0.0
    for g in range(len(H)):
        c = comp[np.flatnonzero(label == g)[0]] if (label == g).any() else -1
        if c < 0 or comp_h[c] < s.min:
            continue
        total += max(0.0, s.min - H[g]) + max(0.0, H[g] - s.max)
    return total


def _repair(s: Any, label: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Fix out-of-band grids: re-cut with neighbours, merge or split, then polish."""

    def ok(lab: np.ndarray) -> bool:
        H = np.bincount(lab, weights=s.hh)
        return bool((((H >= s.min) & (H <= s.max)) | (H == 0)).all())

    if ok(label):
        return label
    fixed = s.chain_repair(label)
    if not ok(fixed):
        fixed = s.repair_pairs(fixed)
    if not ok(fixed):
        fixed = s.merge_light(fixed, None)
        fixed = s.split_heavy(fixed, None)
        fixed = s.repair_pairs(fixed)
        if previous is not None:
            fixed = _relabel_like(fixed, previous, s.hh)
    if (fixed == label).all():
        return label
    return s.improve(fixed, previous=previous)


def _relabel_like(label: np.ndarray, previous: np.ndarray, hh: np.ndarray) -> np.ndarray:
    """Renumber ``label`` so each grid keeps the previous label it shares most households with."""
    ng = int(label.max()) + 1
    npv = int(previous.max()) + 1
    w = hh.astype(float) + 1e-6
    overlap = sparse.coo_matrix((w, (label, previous)), shape=(ng, npv)).toarray()
    out = np.full(ng, -1, dtype=np.int64)
    used: set[int] = set()
    for flat in np.argsort(-overlap, axis=None, kind="stable"):
        g, p = divmod(int(flat), npv)
        if overlap[g, p] <= 0:
            break
        if out[g] < 0 and p not in used:
            out[g] = p
            used.add(p)
    nxt = max(npv, 0)
    for g in range(ng):
        if out[g] < 0:
            out[g] = nxt
            nxt += 1
    return out[label]
