"""The map console in a real headless browser: the distribution's Chromium driven by Playwright.

The page is loaded from the real server process with every request outside 127.0.0.1 blocked
(the console must work offline: vendored Leaflet, the service's own road network as base layer).
A click on the map places an incident; the ranked units (checked against the library) and their
routes appear; the dispatch button sends the units; a change made by another client appears through
the change stream (no request reads the state again); a drawn polygon closes roads. A screenshot is
saved (to ``$DISPATCH_CONSOLE_SCREENSHOT`` when set, else into the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="the service needs the 'service' extra (uvicorn)")
httpx = pytest.importorskip("httpx", reason="the console test needs httpx")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the console test needs Playwright (pip install playwright)"
)

import dispatch  # noqa: E402
from dispatch.decide.incidents import read_fleet  # noqa: E402
from tests.service.conftest import FLEET, free_port  # noqa: E402

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p is not None), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no system Chromium (apt-get install chromium; .ci/run installs it when run as root)",
)
SCENE = (16.0575, 108.2140)


def click_at(page: Any, lat: float, lon: float) -> None:
    """Click the map at a geographic point (Leaflet converts it to a pixel)."""
    pt = page.evaluate(f"(() => {{ const p = map.latLngToContainerPoint([{lat}, {lon}]); "
                       "return [p.x, p.y]; })()")  # fmt: skip
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + pt[0], box["y"] + pt[1])


def test_console_places_dispatches_and_closes(tmp_path: Path, server: Any) -> None:
    port = free_port()
    server(tmp_path / "state.sqlite", port, "--no-clock")  # off-peak: the library's hour=None
    base = f"http://127.0.0.1:{port}"
    shot = Path(os.environ.get("DISPATCH_CONSOLE_SCREENSHOT") or tmp_path / "console.png")
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        asked: list[str] = []

        def only_local(route: Any) -> None:
            if route.request.url.startswith(base):
                asked.append(route.request.url[len(base) :])
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_local)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        assert page.locator("path.leaflet-interactive, #map svg path").count() > 0  # roads drawn
        # the road network is the base layer: its lines are on the map
        n_paths = page.evaluate("document.querySelectorAll('#map svg path').length")
        assert n_paths >= 2

        page.select_option("#type", "structure_fire")
        click_at(page, *SCENE)
        page.wait_for_selector("tr.ranked-unit", timeout=30_000)
        page.wait_for_selector("path.route", timeout=30_000)
        rows = page.locator("tr.ranked-unit").all_inner_texts()
        n_routes = page.locator("path.route").count()

        with httpx.Client(base_url=base) as c:
            incs = c.get("/v1/incidents").json()["incidents"]
        assert len(incs) == 1 and incs[0]["type"] == "structure_fire"
        inc = incs[0]
        assert abs(inc["lat"] - SCENE[0]) < 2e-4 and abs(inc["lon"] - SCENE[1]) < 2e-4
        # the table is the library's ranking for the clicked point
        net = dispatch.load_network("danang")
        records = [
            {"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon,
             "available": u.dispatchable, "turnout_s": u.turnout_s}
            for u in read_fleet(FLEET)
        ]  # fmt: skip
        best = net.fastest_units((inc["lat"], inc["lon"]), records, k=10)
        assert [r.split("\t")[0] for r in rows] == [b.unit for b in best]
        assert n_routes == len(inc["recommended"]) == 4  # 2 engines, a ladder, an ambulance

        page.screenshot(path=str(shot))

        page.click("#dispatch-btn")
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('dispatched')",
            timeout=30_000,
        )
        with httpx.Client(base_url=base) as c:
            units = {u["id"]: u for u in c.get("/v1/units").json()["units"]}
        for uid in inc["recommended"]:
            assert units[uid]["status"] == "en_route" and units[uid]["incident"] == inc["id"]

        # pushed, not polled: a change made elsewhere appears without the console reading the state
        n_asked = len(asked)
        icons = "document.querySelectorAll('.unit-icon.out_of_service').length"
        n_out = page.evaluate(icons)
        with httpx.Client(base_url=base) as c:
            r = c.put("/v1/units/MB-2", json={"status": "out_of_service"})
            assert r.status_code == 200, r.text
            seq = r.json()["seq"]
        page.wait_for_function(f"Number(document.body.dataset.seq) >= {seq}", timeout=30_000)
        page.wait_for_function(f"{icons} === {n_out + 1}", timeout=30_000)
        reads = [u for u in asked[n_asked:] if u.startswith(("/v1/units", "/v1/health"))]
        assert not reads, f"the console polled: {reads}"
        assert any(u.startswith("/v1/stream?after=") for u in asked[:n_asked])

        # draw a closure polygon around the Nguyen Van Linh flood box of the README
        page.click("#draw-btn")
        for lat, lon in [(16.0600, 108.2195), (16.0600, 108.2225), (16.0620, 108.2225),
                         (16.0620, 108.2195)]:  # fmt: skip
            click_at(page, lat, lon)
        page.click("#finish-btn")
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('closed')", timeout=30_000
        )
        page.wait_for_selector("#closures li", timeout=30_000)  # drawn from the stream
        with httpx.Client(base_url=base) as c:
            closures = c.get("/v1/closures").json()["closures"]
            assert len(closures) == 1 and closures[0]["arcs"] > 0
            assert len(c.get("/v1/incidents").json()["incidents"]) == 1  # drawing placed none
        browser.close()
    assert not errors, errors
    assert not outside, f"the console asked for outside resources: {outside[:3]}"
    assert shot.stat().st_size > 10_000


def test_simulate_map_html_renders_offline(tmp_path: Path) -> None:
    """``simulate --out``'s map.html, opened from disk with every network request blocked."""
    import subprocess
    import sys

    from tests.service.conftest import ROOT

    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, "-m", "dispatch", "simulate", "danang", "--hours", "6", "--out", str(out),
         "--quiet"],
        check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
        capture_output=True,
    )  # fmt: skip
    html = (out / "map.html").read_text()
    assert "<script src=" not in html and '<link rel="stylesheet" href' not in html
    requested: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 700})

        def block(route: Any) -> None:
            if not route.request.url.startswith(("file:", "data:")):
                requested.append(route.request.url)
            route.abort() if route.request.url.startswith("http") else route.continue_()

        page.route("**/*", block)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "map.html").as_uri())
        page.wait_for_selector(".leaflet-control-layers", timeout=30_000)
        n_calls = page.evaluate(
            "Object.values(map._layers).filter(l => l instanceof L.CircleMarker).length"
        )
        page.screenshot(path=str(tmp_path / "map.png"))
        browser.close()
    assert not errors, errors
    # the only outside requests are the optional OpenStreetMap tiles (refused here: offline)
    assert all(u.startswith("https://tile.openstreetmap.org/") for u in requested), requested[:3]
    calls = sum(1 for line in (out / "calls.csv").read_text().splitlines()[1:] if line)
    assert n_calls >= min(calls, 1) + 1  # calls, stations and hospitals drawn
