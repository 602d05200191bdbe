"""Staffing grids: one resident grid chief (网格长) and two or three grid workers (网格员).

:func:`assign_staff` fills every post of a :class:`~gridmap.partition.plan.Plan`
from a staff roster by solving **one joint optimisation** over all posts
(chief and worker posts of every grid) and all people, not greedily.

The problem
-----------
*Posts*: every grid has one chief post and ``workers`` worker posts
(``workers_large`` when the grid has more than ``large_households``
households).

*Who may fill a post* (hard rules; a pair that breaks one is never an edge):

* the person is available (``available``/``availability`` not false) and has
  ``max_posts >= 1``;
* chief post of grid *g*: the person is chief-eligible (``can_be_chief``) and
  **resident** in *g*;
* worker post of grid *g*: the person is resident in *g* or lives within
  ``max_distance`` metres of the grid polygon;
* a person holds at most ``max_posts`` posts, and never two posts of the same
  grid.

A person is *resident* in grid *g* when their ``home_building_id`` belongs to
*g* in ``plan.buildings`` (a building split across grids makes its residents
resident in each of them); for a person whose home building is not in the plan,
when their home point is covered by the polygon of *g*. *Distance* is the
straight-line distance from the home point to the grid polygon (0 inside; 0
for residents).

*Objective*, lexicographic:

1. maximise the number of filled posts;
2. then maximise the number of filled chief posts;
3. then minimise the **cost**, in metres::

       cost = Σ distance_m (rounded to whole metres)
            + resident_bonus × (worker posts held by non-residents)
            + move_cost      × (current posts not kept)

A *current post* is a (grid, role) a person holds before the run: from
``previous``, else ``plan.assignments``, else the roster's ``current_grid`` /
``current_role``. With the defaults (``resident_bonus`` 5,000 m >
``max_distance`` 1,500 m and ``move_cost`` 20,000 m > ``resident_bonus`` +
``max_distance``) this means: for any single post a resident always beats a
non-resident, however close; one more resident worker anywhere is worth up to
5,000 m of extra distance elsewhere; and keeping a serving person in their
post always beats replacing them by anyone, resident or not. A serving person
is therefore only moved when a hard rule forces it or when moving them fills
more posts (tiers 1–2); every such move is listed in
:attr:`StaffingResult.moves` with its reason.

Tiers 1–2 are encoded exactly with per-component big-M weights (vacancy
columns in the assignment matrix), so they hold strictly, not approximately.
The weights only need to order single alternating paths: every post row is
always matched (to a person or to its own vacancy column), so two
assignments differ by paths and cycles whose ends are columns, and one such
path changes the filled posts by at most one, the filled chief posts by at
most one and the distance cost by at most ``S`` = posts × the largest edge
cost. A chief vacancy weight of ``S + 1`` and a vacancy weight of
``2·S + 2`` on top therefore make the weighted optimum lexicographically
optimal (were some path lexicographically better, it would lower the weight).
These stay exact in float64 up to a few hundred thousand posts in one
connected component; a larger one is solved with the staged LPs below.

Solvers
-------
With ``max_posts`` = 1 for everybody (the default) the problem is a
rectangular assignment of posts to people, solved per connected component with
:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching` (LAPJVsp) on a
sparse matrix holding only the candidate pairs (found with an STRtree
``dwithin`` query, never a dense grids × people matrix). When somebody may
hold several posts, the same assignment is solved with one column per post
a person may hold, which relaxes "never two posts of one grid"; the
(person, grid) pairs where the rule could bind (home grids) or where the
relaxed optimum breaks it get an exact pair gadget (a pair row and a pair
column, see :func:`_solve_lap_pairs`) and the assignment is solved again until
no pair breaks it — each round is exact for a relaxation, so the first answer
that obeys the rule is optimal (2–3 rounds for a 2,000-grid city). A
component too large for exact big-M weights is solved as three staged linear
programs with :func:`scipy.optimize.linprog` (HiGHS dual simplex; the
constraint matrix is totally unimodular, so the optimal vertices are
integral — much slower). Inputs are sorted by ``grid_code`` and ``staff_id``
so equal-cost optima are resolved the same way on every run.

Phone numbers and homes are personal data: they are carried, never logged.

Modules: :mod:`~gridmap.staffing.roster` (who may hold which post),
:mod:`~gridmap.staffing.solver` (the exact assignment),
:mod:`~gridmap.staffing.assign` (:func:`assign_staff`) and
:mod:`~gridmap.staffing.result` (:class:`StaffingResult`, shortfalls, moves).
"""

from gridmap.staffing.assign import assign_staff
from gridmap.staffing.result import (
    ASSIGNMENT_COLUMNS,
    MOVE_COLUMNS,
    SHORTFALL_COLUMNS,
    StaffingResult,
)
from gridmap.staffing.roster import ROLES, resident_grids

__all__ = [
    "ROLES",
    "ASSIGNMENT_COLUMNS",
    "SHORTFALL_COLUMNS",
    "MOVE_COLUMNS",
    "StaffingResult",
    "assign_staff",
    "resident_grids",
]
