"""Threaded paths under stress: batch locate from the command line, the API and Python.

GEOS prepared polygons are not thread-safe; when the threads of one batch shared
them, half the runs of ``gridmap locate -i`` on 200,000 points died with glibc's
heap-corruption aborts. These tests repeat the batch paths often enough to have
caught that fault with high probability (it hit about one run in two) and check
that every run gives the same answers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from clirun import ENV, Job, gridmap, run_and_serve

from gridmap.locate import GridIndex, ready_tree

pytestmark = pytest.mark.slow

N_POINTS = 200_000


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    with run_and_serve(tmp_path_factory.mktemp("threads")) as served:
        yield served


@pytest.fixture(scope="module")
def points_csv(job: Job) -> Path:
    """A day's worth of tickets: uniform WGS84 points over the plan's bounding box."""
    grids = gpd.read_file(job.folder / "gridmap-out" / "plan.gpkg", layer="grids").to_crs(4326)
    x0, y0, x1, y1 = grids.total_bounds
    rng = np.random.default_rng(19)
    path = job.folder / "pts.csv"
    pd.DataFrame(
        {
            "id": np.arange(N_POINTS),
            "lon": rng.uniform(x0, x1, N_POINTS).round(7),
            "lat": rng.uniform(y0, y1, N_POINTS).round(7),
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cli_located(job: Job, points_csv: Path) -> Path:
    """The command line's answers for the points (its own run: tests may go to any worker)."""
    out = job.folder / "located-reference.csv"
    r = gridmap("locate", "-i", points_csv, "-o", out, cwd=job.folder)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_batch_locate_command_exits_cleanly_with_identical_answers(
    job: Job, points_csv: Path
) -> None:
    runs = 8  # at the old fault rate (1 in 2) all 8 would pass with probability 0.4 %
    outputs = []
    for k in range(runs):
        out = job.folder / f"located{k}.csv"
        r = gridmap("locate", "-i", points_csv, "-o", out, cwd=job.folder)
        assert r.returncode == 0, f"run {k}: exit {r.returncode}\n{r.stderr[-2000:]}"
        assert f"wrote {N_POINTS:,} answers" in r.stdout
        outputs.append(out.read_bytes())
    assert all(o == outputs[0] for o in outputs[1:])
    located = pd.read_csv(job.folder / "located0.csv", dtype=str)
    assert len(located) == N_POINTS
    assert located["grid_code"].notna().mean() > 0.5  # the box is mostly covered by grids


def test_api_batch_under_concurrent_requests_gives_identical_answers(
    job: Job, points_csv: Path, cli_located: Path
) -> None:
    body = b"\n".join(points_csv.read_bytes().splitlines()[:100_001])  # header + 100,000
    path = "/locate/batch?format=csv"

    def post(_: int) -> tuple[int, str]:
        return job.request(path, data=body)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(post, range(8)))
    assert [status for status, _ in answers] == [200] * 8, answers[0][1][:500]
    assert len({text for _, text in answers}) == 1
    # the same grids as the command line found for those points
    served = pd.read_csv(pd.io.common.StringIO(answers[0][1]), dtype=str)
    cli = pd.read_csv(cli_located, dtype=str).head(100_000)
    assert served["grid_code"].fillna("").tolist() == cli["grid_code"].fillna("").tolist()


def test_grid_index_threads_agree_with_one_thread_on_fresh_indexes(job: Job) -> None:
    """Fresh indexes (nothing prepared or built yet) hammered by threads, in a subprocess.

    Before the fix this script died in 4 runs of 4 (glibc heap-corruption aborts).
    """
    script = textwrap.dedent(
        """
        import sys
        import geopandas as gpd, numpy as np, shapely
        from gridmap.locate import GridIndex
        grids = gpd.read_file(sys.argv[1], layer="grids").to_crs(4549)
        x0, y0, x1, y1 = grids.total_bounds
        rng = np.random.default_rng(0)
        x, y = rng.uniform(x0, x1, 200_000), rng.uniform(y0, y1, 200_000)
        expected = GridIndex(grids).locate(x, y, threads=1)
        for _ in range(12):
            # new geometry objects each time: nothing of them is prepared or cached yet
            wkb = shapely.to_wkb(grids.geometry.values)
            fresh = grids.set_geometry(shapely.from_wkb(wkb), crs=grids.crs)
            got = GridIndex(fresh).locate(x, y, threads=2)
            assert got.equals(expected)
        print("ok")
        """
    )
    plan = job.folder / "gridmap-out" / "plan.gpkg"
    for attempt in range(2):
        r = subprocess.run(
            [sys.executable, "-c", script, str(plan)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=600,
        )
        assert r.returncode == 0 and r.stdout.strip() == "ok", (attempt, r.stderr[-2000:])


def test_ready_tree_is_built_before_threads_share_it() -> None:
    boxes = shapely.box(np.arange(1000.0), 0, np.arange(1000.0) + 1, 1)
    tree = ready_tree(boxes)
    pts = shapely.points(np.arange(1000.0) + 0.5, np.full(1000, 0.5))
    with ThreadPoolExecutor(max_workers=4) as pool:
        hits = list(pool.map(lambda k: tree.query(pts[k::4])[1], range(4)))
    assert [h.tolist() for h in hits] == [list(range(k, 1000, 4)) for k in range(4)]


def test_covers_xy_from_many_threads_matches_one_thread() -> None:
    left = np.arange(0, 2000.0, 100)
    cells = shapely.segmentize(shapely.box(left, 0, left + 100, 100), 5.0)
    grids = gpd.GeoDataFrame(
        {"grid_code": [f"G{i:02d}" for i in range(len(cells))]}, geometry=cells, crs=4549
    )
    index = GridIndex(grids)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(cells), 50_000)
    x, y = rng.uniform(0, 2000, 50_000), rng.uniform(-10, 110, 50_000)
    expected = index.covers_xy(rows, x, y)
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda _: index.covers_xy(rows, x, y), range(16)))
    assert all((g == expected).all() for g in got)
    assert 0 < expected.sum() < len(expected)
