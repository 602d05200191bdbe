"""The main job and the map commands, through the real ``gridmap`` entry point.

One module-scoped ``gridmap run --serve`` in a fresh folder (as a new user would
type it) feeds every test: its summary, its files, its server and its store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import Job, gridmap, run_and_serve
from maphtml import collections, external, resources

from gridmap.maps.assets import CDN_FILES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    """``gridmap run --serve`` in an empty folder; yields once the API answers."""
    with run_and_serve(tmp_path_factory.mktemp("fresh")) as served:
        yield served


def test_main_job_prints_the_summary_and_where_the_map_is(job: Job) -> None:
    out = job.stdout
    assert re.search(r"Grids 网格: \d+ in 5 communities", out)
    assert "Households in band 户数达标 [200, 500]" in out
    assert re.search(r"staffing: \d+/\d+ posts filled", out)
    assert "map: gridmap-out/plan.html (open it in a browser)" in out
    assert "stored and published as plan 1 in sqlite:///gridmap.db" in out
    assert f"http://127.0.0.1:{job.port}/maps/plans/1" in out
    html = (job.folder / "gridmap-out" / "plan.html").read_text(encoding="utf-8")
    n_grids = int(re.search(r"Grids 网格: (\d+)", out).group(1))  # type: ignore[union-attr]
    grids = [c for c in collections(html) if "boundary_desc" in c["features"][0]["properties"]]
    assert len(grids) == 1 and len(grids[0]["features"]) == n_grids
    assert (job.folder / "gridmap.db").stat().st_size > 0


def test_main_job_sprays_no_python_warnings(job: Job) -> None:
    status, _ = job.get("/health")
    assert status == 200
    # everything the job wrote to stderr until the server started: uvicorn's INFO lines only
    err = "".join(job.stderr)
    assert "Warning" not in err and "warnings.warn" not in err and "Traceback" not in err, err
    assert "Warning" not in job.stdout


def test_served_map_pages(job: Job) -> None:
    status, page = job.get("/maps/plans/1")
    assert status == 200
    feats = {
        k: c["features"]
        for c in collections(page)
        for k in ("boundary_desc", "building_id", "street_code")
        if k in c["features"][0]["properties"]
    }
    assert len(feats["building_id"]) == 1000  # the sample city's buildings
    assert len(feats["street_code"]) == 1
    status, page = job.get("/maps/locate?lon=118.7805&lat=32.0500&crs=gcj02")
    assert status == 200 and "网格长 Grid chief" in page
    status, page = job.get("/maps/plans/1/diff/1")
    assert status == 200 and "未变 Unchanged" in page
    # the pages load Leaflet and the plugins from the server itself (no search box here)
    refs = resources(page)
    assert len(refs) == 5 and all(r.startswith("/maps/static/") for r in refs)
    assert all(job.get(r)[0] == 200 for r in refs)


def test_map_files_work_offline_unless_asked_for_cdn_links(job: Job, tmp_path: Path) -> None:
    html = (job.folder / "gridmap-out" / "plan.html").read_text(encoding="utf-8")
    assert external(html) == [] and "Leaflet 1.9.3" in html  # gridmap run: inline
    plan = job.folder / "gridmap-out" / "plan.gpkg"
    sizes = {}
    for name, args in [
        ("inline", []),
        ("cdn", ["--assets", "cdn"]),
        ("mirror", ["--assets", "http://gis.local/gridmap-static"]),
    ]:
        out = gridmap("map", plan, "-o", tmp_path / f"{name}.html", *args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        sizes[name] = (tmp_path / f"{name}.html").stat().st_size
    assert external((tmp_path / "inline.html").read_text(encoding="utf-8")) == []
    cdn = external((tmp_path / "cdn.html").read_text(encoding="utf-8"))
    assert len(cdn) == 7 and set(cdn) <= set(CDN_FILES)
    mirror = resources((tmp_path / "mirror.html").read_text(encoding="utf-8"))
    assert mirror[0] == "http://gis.local/gridmap-static/leaflet-1.9.3/dist/leaflet.js"
    assert 280_000 < sizes["inline"] - sizes["cdn"] < 320_000, sizes
    out = gridmap("map", plan, "--assets", "offline", cwd=tmp_path)
    assert out.returncode == 2 and "neither 'cdn', 'inline' nor a URL prefix" in out.stderr


def test_map_command_tiles(job: Job, tmp_path: Path) -> None:
    plan = job.folder / "gridmap-out" / "plan.gpkg"
    out = gridmap(
        "map",
        plan,
        "-o",
        tmp_path / "local.html",
        "--tiles",
        "http://tiles.local/{z}/{x}/{y}.png",
        "--attr",
        "© 本地 Local",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "local.html").read_text(encoding="utf-8")
    assert "http://tiles.local/{z}/{x}/{y}.png" in html and "openstreetmap" not in html
    out = gridmap(
        "map", plan, "-o", tmp_path / "q.html", "--kind", "quality", "--tiles", "none", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "q.html").read_text(encoding="utf-8")
    assert "tile.openstreetmap.org" not in html and "质量检查 Quality checks" in html
    out = gridmap("map", plan, "--tiles", "http://x/{z}/{x}/{y}.png", cwd=tmp_path)
    assert out.returncode == 1 and "needs an attribution; pass attr=" in out.stderr
    gcj = gridmap(
        "map",
        plan,
        "-o",
        tmp_path / "gcj.html",
        "--tiles",
        "http://g/{z}/{x}/{y}.png",
        "--attr",
        "g",
        "--tiles-crs",
        "gcj02",
        cwd=tmp_path,
    )
    assert gcj.returncode == 0, gcj.stderr

    def first_vertex(name: str) -> list[float]:
        html = (tmp_path / name).read_text(encoding="utf-8")
        c = next(c for c in collections(html) if "boundary_desc" in c["features"][0]["properties"])
        return c["features"][0]["geometry"]["coordinates"][0][0]

    from gridmap.crs import transform

    wgs = first_vertex("local.html")
    assert first_vertex("gcj.html") == pytest.approx(transform(*wgs, "wgs84", "gcj02"), abs=2e-6)


def test_locate_with_map(job: Job, tmp_path: Path) -> None:
    db = f"sqlite:///{job.folder / 'gridmap.db'}"
    out = gridmap(
        "locate",
        "118.7805",
        "32.0500",
        "--crs",
        "gcj02",
        "--map",
        tmp_path / "one.html",
        "--db",
        db,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    code = re.search(r"grid_code: (\d{15})", out.stdout).group(1)  # type: ignore[union-attr]
    chief = re.search(r"chief_name: (\S+)", out.stdout)
    html = (tmp_path / "one.html").read_text(encoding="utf-8")
    assert f"网格 Grid: <b>{code}</b>" in html
    assert external(html) == [] and "Leaflet 1.9.3" in html  # works without internet
    if chief:
        assert chief.group(1) in html
    csv = tmp_path / "t.csv"
    csv.write_text(
        "id,lon,lat,crs\na,118.7805,32.0500,gcj02\nb,118.7755,32.0559,\nc,500,32,\n",
        encoding="utf-8",
    )
    out = gridmap(
        "locate", "--input", csv, "--map", tmp_path / "many.html", "--db", db, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "many.html").read_text(encoding="utf-8")
    assert "事件 Incidents: 2" in html  # the bad row is reported in the table, not drawn
    assert external(html) == [] and "MarkerClusterGroup" in html
    out = gridmap(
        "locate",
        "--input",
        tmp_path / "nope.csv",
        "--map",
        tmp_path / "x.html",
        "--db",
        db,
        cwd=tmp_path,
    )
    assert out.returncode != 0 and not (tmp_path / "x.html").exists()


def test_listing_commands_print_json_and_bad_points_exit_non_zero(job: Job) -> None:
    import json

    r = gridmap("plans", "--json", cwd=job.folder)
    assert r.returncode == 0, r.stderr
    plans = json.loads(r.stdout)
    assert [(p["id"], p["status"]) for p in plans] == [(1, "published")]
    assert len(plans[0]["community_ids"]) == 5
    r = gridmap("keys", "list", "--json", cwd=job.folder)
    assert [k["role"] for k in json.loads(r.stdout)] == ["admin"]
    assert "key_hash" not in r.stdout and job.key not in r.stdout  # never the token
    r = gridmap("diff", "1", "1", "--json", cwd=job.folder)
    assert json.loads(r.stdout)["unchanged"] is True
    code = re.search(
        r"grid_code: (\d{15})",
        gridmap("locate", "118.7842", "32.0415", "--crs", "gcj02", cwd=job.folder).stdout,
    )
    r = gridmap("locate", "118.7842", "32.0415", "--crs", "gcj02", "--json", cwd=job.folder)
    answer = json.loads(r.stdout)[0]
    assert code is not None and answer["grid_code"] == code.group(1)
    assert answer["candidates"] == [code.group(1)] and answer["chief_name"]
    # a swapped point or an unknown CRS: the reason, exit 1
    r = gridmap("locate", "32.0415", "118.7842", cwd=job.folder)
    assert r.returncode == 1 and "swapped" in r.stderr
    r = gridmap("locate", "118.7842", "32.0415", "--crs", "foo", cwd=job.folder)
    assert r.returncode == 1 and "unknown CRS 'foo'" in r.stderr
