"""Simulation outputs: terminal summary, CSVs, JSON, PNG plots and an interactive HTML map.

:func:`format_summary` and :func:`format_comparison` give the text printed on the terminal;
:func:`write_outputs` writes to a folder:

``calls.csv``
    one row per generated call of every policy and replication (times in seconds);
``units.csv``
    one row per unit, policy and replication (dispatches, busy hours, utilisation);
``summary.json``
    the same summary as ``dispatch simulate --json``;
``response_by_priority.png``, ``utilisation.png``, ``response_by_hour.png``
    response-time distribution per priority, utilisation per unit, mean response by hour of day;
``map.html``, ``map.geojson``
    stations, units, hospitals, calls coloured by response time, closures (one file with the
    vendored Leaflet inlined: it renders offline; OpenStreetMap tiles load when online); the same
    layers as GeoJSON, for a GIS.

``manifest.json``
    written last: the run (scenario, map, policy, seed, horizon) and every file with its size and
    SHA-256; a folder with a manifest holds one complete set.

The set is built in a temporary folder beside the destination and moved into place at the end
(:func:`write_outputs`), so an interrupted run (Ctrl-C, SIGTERM) never leaves a half-written file, a
mixed set or a temporary file.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.io.atomic import atomic_write
from dispatch.io.paths import OutputError, check_output_dir
from dispatch.sim.records import SimResult

__all__ = [
    "CALL_COLUMNS",
    "OUTPUT_FILES",
    "OutputError",
    "atomic_write",
    "check_output_dir",
    "format_comparison",
    "format_summary",
    "write_outputs",
]

#: Columns of ``calls.csv``, in order.
CALL_COLUMNS = (
    "policy", "replication", "call", "time_s", "hour", "type", "service", "priority", "lat", "lon",
    "area", "in_stats", "served", "unit", "vehicle", "dispatch_s", "wait_s", "turnout_s", "drive_s",
    "response_s", "target_s", "transport", "hospital", "on_scene_s", "n_units", "units", "complete",
    "full_complement_s",
)  # fmt: skip
#: Columns of ``units.csv``, in order.
UNIT_COLUMNS = (
    "policy", "replication", "unit", "vehicle", "station", "lat", "lon", "dispatches", "busy_s",
    "returning_s", "utilisation",
)  # fmt: skip
#: Columns added to ``units.csv`` by a move-up policy other than ``none``.
MOVE_UP_UNIT_COLUMNS = ("relocations", "relocation_km", "relocating_s")


# ----------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# terminal text
# ----------------------------------------------------------------------------------------------


def _s(x: Any) -> str:
    return "-" if x is None else f"{x:.0f}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _row(label: str, st: Mapping[str, Any]) -> str:
    r = st["response_s"]
    return (
        f"{label:<28} {st['calls']:>7} {st['unserved']:>6} {_s(r['mean']):>7} {_s(r['median']):>7} "
        f"{_s(r['p90']):>7} {_s(r['p95']):>7} {_pct(st['within_target']):>7} {_s(st['wait_s']['mean']):>7}"
    )


def format_summary(summary: Mapping[str, Any], *, title: str = "") -> str:
    """The summary table printed by ``dispatch simulate`` (response times in seconds)."""
    lines = []
    if title:
        lines.append(title)
    lines.append(
        f"calls {summary['calls']}  served {summary['served']}  unserved at horizon "
        f"{summary['unserved']}"
    )
    lines.append("")
    head = (
        f"{'response time (s)':<28} {'calls':>7} {'unserv':>6} {'mean':>7} {'median':>7} {'p90':>7} "
        f"{'p95':>7} {'target':>7} {'wait':>7}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    lines.append(_row("all calls", summary))
    targets = summary.get("targets_s", {})
    for level, st in summary["by_priority"].items():
        t = targets.get(level)
        lines.append(_row(f"priority {level} (target {_s(t)} s)", st))
    for svc, st in summary["by_service"].items():
        lines.append(_row(f"service {svc}", st))
    for name, st in summary["by_type"].items():
        lines.append(_row(f"  {name}", st))
    if summary.get("run_cards"):
        lines.append("")
        lines.append(
            f"run cards {summary['run_cards']}: first arrival vs full complement "
            "(call to the last required unit, calls whose card was filled)"
        )
        for label, st in [("all calls", summary), *summary["by_priority"].items()]:
            name = label if label == "all calls" else f"priority {label}"
            r, f = st["response_s"], st.get("full_complement_s") or {}
            lines.append(
                f"  {name:<14} first arrival mean {_s(r['mean'])} s, p90 {_s(r['p90'])} s;  "
                f"full complement mean {_s(f.get('mean'))} s, p90 {_s(f.get('p90'))} s "
                f"({st.get('complete', 0)}/{st['calls']} complete)"
            )
    units = summary["units"]["per_unit"]
    if units:
        util = sorted(units.items(), key=lambda kv: -(kv[1]["utilisation"] or 0))
        top = ", ".join(f"{u} {_pct(v['utilisation'])}" for u, v in util[:4])
        lines.append("")
        lines.append(
            f"unit utilisation (committed to calls): mean {_pct(summary['units']['utilisation_mean'])};"
            f" busiest {top}"
        )
    mu = summary.get("move_up")
    if mu:
        lines.append(
            f"move-up {mu['policy']}: {mu['relocations']:g} relocations, "
            f"{mu['relocation_km']:.1f} km ({mu['moves_per_unit_per_day']:.2f} moves and "
            f"{mu['km_per_unit_per_day']:.1f} km per unit per day)"
        )
    ci = summary.get("ci95")
    if ci:
        m = ci["response_mean_s"]
        p = ci["response_p90_s"]
        lines.append(
            f"over {summary['replications']} replications: mean response {_s(m['mean'])} s "
            f"± {_s(m['half_width'])}, p90 {_s(p['mean'])} s ± {_s(p['half_width'])} (95% CI)"
        )
    return "\n".join(lines)


def format_comparison(
    summaries: Mapping[str, Mapping[str, Any]],
    differences: Mapping[str, Mapping[str, Any]],
    *,
    reference: str = "fastest",
) -> str:
    """Policy comparison table: each policy's figures and its paired difference from the reference."""
    head = (
        f"{'policy':<24} {'mean s':>8} {'p90 s':>8} {'target':>7} {'unserv':>7}   "
        f"{'mean vs ' + reference + ' (95% CI)':<30} {'p90 vs ' + reference:<22}"
    )
    lines = [head, "-" * len(head)]
    for policy, sm in summaries.items():
        r = sm["response_s"]
        if policy == reference:
            d1 = d2 = "(reference)"
        else:
            dm = differences[policy]["response_mean_s"]["difference"]
            dp = differences[policy]["response_p90_s"]["difference"]
            d1 = _diff(dm)
            d2 = _diff(dp)
        lines.append(
            f"{policy:<24} {_s(r['mean']):>8} {_s(r['p90']):>8} {_pct(sm['within_target']):>7} "
            f"{sm['unserved']:>7}   {d1:<30} {d2:<22}"
        )
    lines.append(
        "differences are paired (same calls for every policy, replication by replication); "
        "positive = slower than " + reference
    )
    return "\n".join(lines)


def _diff(d: Mapping[str, Any]) -> str:
    if d["mean"] is None:
        return "-"
    s = f"{d['mean']:+.1f} s"
    if d["half_width"] is not None:
        s += f" [{d['low']:+.1f}, {d['high']:+.1f}]"
    return s


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, float | np.floating):
        return "" if not math.isfinite(v) else f"{float(v):.3f}"
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


def calls_csv(results: Sequence[SimResult]) -> str:
    """``calls.csv`` text for runs (deterministic: fixed column order and number format)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CALL_COLUMNS)
    for r in results:
        cols = [r.calls[k] for k in CALL_COLUMNS[2:]]
        for i in range(r.n_calls):
            w.writerow([r.policy, r.replication, *(_fmt(c[i]) for c in cols)])
    return buf.getvalue()


def units_csv(results: Sequence[SimResult]) -> str:
    """``units.csv`` text for runs (with move-up: also :data:`MOVE_UP_UNIT_COLUMNS`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names: tuple[str, ...] = UNIT_COLUMNS
    if results and all(k in r.units for r in results for k in MOVE_UP_UNIT_COLUMNS):
        names = (*UNIT_COLUMNS, *MOVE_UP_UNIT_COLUMNS)
    w.writerow(names)
    for r in results:
        cols = [r.units[k] for k in names[2:]]
        for i in range(len(r.units["unit"])):
            w.writerow([r.policy, r.replication, *(_fmt(c[i]) for c in cols)])
    return buf.getvalue()


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def plot_response_by_priority(results: Sequence[SimResult]) -> bytes:
    """PNG: histogram of response times per priority, with each priority's target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = _pool(results)
    levels = sorted(set(calls["priority"].tolist()))
    fig, axes = plt.subplots(
        len(levels), 1, figsize=(7, 2.3 * max(len(levels), 1) + 0.6), squeeze=False
    )
    served = calls["served"] & calls["in_stats"]
    all_rs = calls["response_s"][served] / 60.0
    hi = float(np.percentile(all_rs, 99.5)) if len(all_rs) else 10.0
    bins = np.linspace(0, max(hi, 1.0), 40)
    targets = results[0].targets_s
    for ax, level in zip(axes[:, 0], levels, strict=True):
        m = served & (calls["priority"] == level)
        rs = calls["response_s"][m] / 60.0
        ax.hist(np.clip(rs, 0, bins[-1]), bins=bins, color="#3b75af", edgecolor="white")
        t = targets.get(int(level))
        if t is not None:
            ax.axvline(t / 60.0, color="#c0392b", linestyle="--", label=f"target {t / 60:.0f} min")
        if len(rs):
            p90 = float(np.percentile(rs, 90))
            ax.axvline(p90, color="#2c3e50", linestyle=":", label=f"p90 {p90:.1f} min")
        unserved = int(
            np.count_nonzero(~calls["served"][calls["in_stats"] & (calls["priority"] == level)])
        )
        ax.set_title(f"priority {level}: {len(rs)} calls served, {unserved} unserved", fontsize=10)
        ax.set_ylabel("calls")
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("response time, call to first arrival (minutes)")
    fig.suptitle(
        f"{results[0].scenario} ({results[0].policy}): response-time distribution", fontsize=11
    )
    fig.tight_layout()
    return _png(fig)


def plot_utilisation(results: Sequence[SimResult]) -> bytes:
    """PNG: utilisation per unit (committed to calls, and returning), mean over replications."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    u = results[0].units
    span = max(results[0].horizon_s - results[0].warmup_s, 1e-9)
    busy = np.mean([r.units["utilisation"] for r in results], axis=0)
    ret = np.mean([r.units["returning_s"] for r in results], axis=0) / span
    names = [f"{a} ({v})" for a, v in zip(u["unit"], u["vehicle"], strict=True)]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.5))
    y = np.arange(len(names))
    ax.barh(y, 100 * busy, color="#3b75af", label="committed to a call")
    ax.barh(y, 100 * ret, left=100 * busy, color="#a9c6e3", label="returning (dispatchable)")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of simulated time (%)")
    ax.set_title(f"{results[0].scenario} ({results[0].policy}): unit utilisation", fontsize=11)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def plot_response_by_hour(results: Sequence[SimResult]) -> bytes:
    """PNG: mean and 90th percentile response time by hour of day, with the call count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = _pool(results)
    m = calls["served"] & calls["in_stats"]
    hours = calls["hour"][m]
    rs = calls["response_s"][m] / 60.0
    mean = np.full(24, np.nan)
    p90 = np.full(24, np.nan)
    for h in range(24):
        x = rs[hours == h]
        if len(x):
            mean[h] = x.mean()
            p90[h] = np.percentile(x, 90)
    count = np.bincount(calls["hour"][calls["in_stats"]], minlength=24)[:24] / max(len(results), 1)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax2 = ax.twinx()
    ax2.bar(np.arange(24), count, color="#dddddd", label="calls per replication")
    ax2.set_ylabel("calls")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(np.arange(24), mean, marker="o", color="#3b75af", label="mean")
    ax.plot(
        np.arange(24), p90, marker="s", color="#c0392b", linestyle="--", label="90th percentile"
    )
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour of day")
    ax.set_ylabel("response time (minutes)")
    ax.set_title(f"{results[0].scenario} ({results[0].policy}): response time by hour", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def _pool(results: Sequence[SimResult]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([r.calls[k] for r in results]) for k in results[0].calls}


def _colour(response_s: float, target_s: float) -> str:
    if not math.isfinite(response_s):
        return "#000000"
    f = response_s / target_s
    if f <= 0.5:
        return "#1a9850"
    if f <= 1.0:
        return "#91cf60"
    if f <= 1.5:
        return "#fc8d59"
    return "#d73027"


def map_html(
    result: SimResult,
    *,
    stations: Mapping[str, tuple[float, float]] | None = None,
    closures: Sequence[Mapping[str, Any]] = (),
    max_calls: int = 5000,
) -> str:
    """Interactive Leaflet map in one self-contained file: stations, units, hospitals, calls, closures.

    Leaflet (vendored from the npm registry in ``dispatch/web/vendor/leaflet``, BSD-2-Clause) and the
    data are inlined, so the page renders offline, opened from disk; the OpenStreetMap tiles
    underneath load only when the browser is online (a layer that can be switched off).
    """
    import base64
    import html

    def _html_text(text: Any) -> str:
        return html.escape(str(text))

    vendor = Path(__file__).resolve().parent.parent / "web" / "vendor" / "leaflet"
    css = (vendor / "leaflet.css").read_text(encoding="utf-8")
    for img in sorted((vendor / "images").glob("*.png")):
        uri = "data:image/png;base64," + base64.b64encode(img.read_bytes()).decode("ascii")
        css = css.replace(f"images/{img.name}", uri)
    js = (vendor / "leaflet.js").read_text(encoding="utf-8")
    c = result.calls
    u = result.units
    pts = np.column_stack(
        [np.concatenate([c["lat"], u["lat"]]), np.concatenate([c["lon"], u["lon"]])]
    )
    if len(pts):
        bounds = [
            [float(pts[:, 0].min()), float(pts[:, 1].min())],
            [float(pts[:, 0].max()), float(pts[:, 1].max())],
        ]
    else:
        bounds = [[-1.0, -1.0], [1.0, 1.0]]
    layers: dict[str, list[dict[str, Any]]] = {
        "closures": [],
        "calls": [],
        "stations": [],
        "hospitals": [],
    }
    for cl in closures:
        if cl.get("geometry") is None:
            continue
        window = ""
        start, end = cl.get("start_h"), cl.get("end_h")
        if start is not None or end is not None:
            window = f" (hours {start or 0:g} to {'end' if end is None else format(end, 'g')})"
        layers["closures"].append(
            {"geometry": cl["geometry"], "tip": f"closed: {cl['label']}{window}"}
        )
    idx = np.flatnonzero(c["in_stats"])
    if len(idx) > max_calls:  # keep the file small: an even sample of the calls
        idx = idx[np.linspace(0, len(idx) - 1, max_calls).astype(int)]
    for i in idx:
        rs = float(c["response_s"][i])
        tip = f"{c['type'][i]} (P{c['priority'][i]}) at {_clock(float(c['time_s'][i]))}: " + (
            f"response {rs:.0f} s by {c['unit'][i]}" if c["served"][i] else "unserved at horizon"
        )
        layers["calls"].append({
            "lat": float(c["lat"][i]), "lon": float(c["lon"][i]), "tip": tip,
            "colour": _colour(rs, float(c["target_s"][i])),
        })  # fmt: skip
    by_station: dict[str, list[str]] = {}
    for uid, st, veh in zip(u["unit"], u["station"], u["vehicle"], strict=True):
        by_station.setdefault(str(st), []).append(f"{uid} ({veh})")
    homes = {
        str(st): (float(la), float(lo))
        for st, la, lo in zip(u["station"], u["lat"], u["lon"], strict=True)
    }
    for name, pos in {**(stations or {}), **homes}.items():
        units_here = by_station.get(name, [])
        layers["stations"].append({
            "lat": pos[0], "lon": pos[1],
            "tip": f"station: {name}: " + (", ".join(units_here) or "no unit"),
        })  # fmt: skip
    for h in result.hospitals:
        caps = ", ".join(h.capabilities) or "any patient"
        layers["hospitals"].append(
            {"lat": h.lat, "lon": h.lon, "tip": f"hospital: {h.name} ({caps})"}
        )
    data = json.dumps({"bounds": bounds, **layers}).replace("</", "<\\/")
    legend = (
        f"<b>{_html_text(result.scenario)}</b> ({_html_text(result.policy)})<br>"
        "response time vs target:<br>"
        '<span style="color:#1a9850">&#9679;</span> &le; half &nbsp;'
        '<span style="color:#91cf60">&#9679;</span> &le; target &nbsp;'
        '<span style="color:#fc8d59">&#9679;</span> &le; 1.5&times; &nbsp;'
        '<span style="color:#d73027">&#9679;</span> later &nbsp;'
        '<span style="color:#000000">&#9679;</span> unserved<br>'
        "Map data &copy; OpenStreetMap contributors (ODbL)"
    )
    script = """
const D = DATA;
const map = L.map("map", {preferCanvas: true});
map.fitBounds(D.bounds);
L.control.scale().addTo(map);
const tiles = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
  {maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"}).addTo(map);
const groups = {};
function group(name) { groups[name] = L.layerGroup().addTo(map); return groups[name]; }
const g1 = group("closures");
for (const c of D.closures) {
  L.geoJSON(c.geometry, {style: {color: "#7b3294", fillColor: "#c2a5cf", weight: 2, fillOpacity: 0.35}})
    .bindTooltip(c.tip).addTo(g1);
}
const g2 = group("calls (colour: response vs target)");
for (const c of D.calls) {
  L.circleMarker([c.lat, c.lon], {radius: 4, color: c.colour, fillOpacity: 0.8, weight: 1})
    .bindTooltip(c.tip).addTo(g2);
}
const g3 = group("stations and units");
for (const s of D.stations) {
  L.circleMarker([s.lat, s.lon], {radius: 7, color: "#08519c", fillColor: "#6baed6", fillOpacity: 0.9, weight: 2})
    .bindTooltip(s.tip).addTo(g3);
}
const g4 = group("hospitals");
for (const h of D.hospitals) {
  L.circleMarker([h.lat, h.lon], {radius: 7, color: "#a50f15", fillColor: "#fb6a4a", fillOpacity: 0.9, weight: 2})
    .bindTooltip(h.tip).addTo(g4);
}
L.control.layers({}, {"OpenStreetMap tiles (online)": tiles, ...groups}, {collapsed: false}).addTo(map);
""".replace("DATA", data)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_html_text(result.scenario)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{css}</style><style>html,body,#map{{height:100%;margin:0}}"
        "#legend{position:fixed;bottom:20px;left:20px;z-index:9999;background:white;"
        "padding:6px 10px;border:1px solid #999;font:12px sans-serif}</style>"
        "<!-- Leaflet 1.9.4 (c) Volodymyr Agafonkin, CloudMade; BSD-2-Clause; inlined -->"
        f'<script>{js}</script></head><body><div id="map"></div>'
        f'<div id="legend">{legend}</div><script>{script}</script></body></html>\n'
    )


def map_geojson(
    result: SimResult,
    *,
    stations: Mapping[str, tuple[float, float]] | None = None,
    closures: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The map's layers as one GeoJSON FeatureCollection (lon/lat): every call with its response
    time, stations with their units, hospitals and closures. Opens offline in QGIS or any GIS,
    where ``map.html`` needs the network for Leaflet and its tiles."""
    c = result.calls
    u = result.units
    feats: list[dict[str, Any]] = []

    def point(lat: float, lon: float, props: dict[str, Any]) -> None:
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                      "properties": props})  # fmt: skip

    for i in np.flatnonzero(c["in_stats"]).tolist():
        served = bool(c["served"][i])
        point(float(c["lat"][i]), float(c["lon"][i]), {
            "layer": "call", "type": str(c["type"][i]), "priority": int(c["priority"][i]),
            "time_s": round(float(c["time_s"][i]), 3), "served": served,
            "response_s": round(float(c["response_s"][i]), 3) if served else None,
            "target_s": float(c["target_s"][i]), "unit": str(c["unit"][i]) if served else None,
        })  # fmt: skip
    by_station: dict[str, list[str]] = {}
    homes: dict[str, tuple[float, float]] = dict(stations or {})
    for uid, st, veh, la, lo in zip(u["unit"], u["station"], u["vehicle"], u["lat"], u["lon"],
                                    strict=True):  # fmt: skip
        by_station.setdefault(str(st), []).append(f"{uid} ({veh})")
        homes[str(st)] = (float(la), float(lo))
    for name, (la, lo) in homes.items():
        point(la, lo, {"layer": "station", "name": name, "units": by_station.get(name, [])})
    for h in result.hospitals:
        point(h.lat, h.lon, {"layer": "hospital", "name": h.name,
                             "capabilities": list(h.capabilities)})  # fmt: skip
    for cl in closures:
        if cl.get("geometry") is not None:
            feats.append({"type": "Feature", "geometry": cl["geometry"],
                          "properties": {"layer": "closure", "label": cl.get("label", ""),
                                         "start_h": cl.get("start_h"), "end_h": cl.get("end_h")}})  # fmt: skip
    return json.dumps({"type": "FeatureCollection", "features": feats}) + "\n"


def _clock(t_s: float) -> str:
    d, rem = divmod(int(t_s), 86400)
    h, rem = divmod(rem, 3600)
    mnt = rem // 60
    return (f"day {d + 1} " if d else "") + f"{h:02d}:{mnt:02d}"


#: Every file name an output set may hold (what a later run may replace or remove in its folder).
OUTPUT_FILES = (
    "calls.csv", "units.csv", "summary.json", "response_by_priority.png", "utilisation.png",
    "response_by_hour.png", "map.html", "map.geojson", "manifest.json",
)  # fmt: skip


def _short(p: Path) -> str:
    s = str(p)
    return s if len(s) <= 80 else s[:30] + "..." + s[-47:]


def _manifest(summary: Mapping[str, Any], files: Sequence[Path]) -> str:
    """``manifest.json``: the run (from the summary) and every file of the set with its hash."""
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    run = {
        k: summary[k] for k in ("scenario", "map", "policy", "seed", "horizon_h") if k in summary
    }
    doc = {
        "format": "dispatch simulate output set",
        "run": run,
        "run_id": digest.get("summary.json", "")[:16],
        "files": {p.name: {"bytes": p.stat().st_size, "sha256": digest[p.name]} for p in files},
    }
    return json.dumps(doc, indent=2) + "\n"


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration, then deliver them to the handlers in force before
    (in the main thread; elsewhere signals cannot be handled and this is a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        pending.append(signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s, h in old.items():
        if h is not None:
            signal.signal(s, hold)
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None:
                signal.signal(s, h)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_outputs(
    out_dir: str | Path,
    results_by_policy: Mapping[str, Sequence[SimResult]],
    summary: Mapping[str, Any],
    *,
    main_policy: str,
    stations: Mapping[str, tuple[float, float]] | None = None,
    closures: Sequence[Mapping[str, Any]] = (),
    plots: bool = True,
    html_map: bool = True,
) -> list[Path]:
    """Write CSVs, JSON summary, PNG plots and the HTML map to ``out_dir`` as one set.

    Plots and the map show ``main_policy`` (the first replication for the map, all replications
    pooled for the plots). Returns the paths written (``manifest.json`` last).

    The set is built in a temporary folder beside ``out_dir`` (each file with
    :func:`dispatch.io.atomic.atomic_write`), then moved into place with SIGINT and SIGTERM held:
    a new ``out_dir`` is the temporary folder renamed (atomic); in an existing one the earlier
    ``manifest.json`` is removed first, each file replaced by a rename, files of an earlier set that
    this one lacks removed, and ``manifest.json`` (the run and every file's SHA-256) written last.
    A folder with a manifest holds one complete set; an interrupted run leaves the earlier set (or
    nothing) and no temporary files.

    Raises
    ------
    OutputError
        ``out_dir`` cannot be written (see :func:`check_output_dir`), or writing failed (a full
        disk): nothing of the new set is left behind.
    """
    out = check_output_dir(out_dir)
    every = [r for rs in results_by_policy.values() for r in rs]
    main = list(results_by_policy[main_policy])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the set gets a folder's usual mode
    except OSError as exc:
        raise OutputError(f"--out {_short(out)!r}: {exc.strerror or exc}") from None
    try:
        written = [
            atomic_write(tmp / "calls.csv", calls_csv(every)),
            atomic_write(tmp / "units.csv", units_csv(every)),
            atomic_write(
                tmp / "summary.json", json.dumps(summary, indent=2, sort_keys=False) + "\n"
            ),
        ]
        if plots:
            written.append(
                atomic_write(tmp / "response_by_priority.png", plot_response_by_priority(main))
            )
            written.append(atomic_write(tmp / "utilisation.png", plot_utilisation(main)))
            written.append(atomic_write(tmp / "response_by_hour.png", plot_response_by_hour(main)))
        if html_map:
            written.append(
                atomic_write(
                    tmp / "map.html", map_html(main[0], stations=stations, closures=closures)
                )
            )
            written.append(
                atomic_write(
                    tmp / "map.geojson", map_geojson(main[0], stations=stations, closures=closures)
                )
            )
        written.append(atomic_write(tmp / "manifest.json", _manifest(summary, written)))
        names = [p.name for p in written]
        with _signals_deferred():
            if not out.exists():
                os.rename(tmp, out)
            else:
                (out / "manifest.json").unlink(missing_ok=True)
                for name in names[:-1]:
                    os.replace(tmp / name, out / name)
                for name in OUTPUT_FILES:
                    if name not in names:
                        (out / name).unlink(missing_ok=True)
                os.replace(tmp / "manifest.json", out / "manifest.json")
                tmp.rmdir()
            _fsync_dir(out)
            _fsync_dir(out.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"--out {_short(out)!r}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / n for n in names]
