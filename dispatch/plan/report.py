"""Coverage outputs: a GeoJSON layer (grid cells or points) and a PNG map of covered/uncovered demand.

Files are written atomically (:mod:`dispatch.io.atomic`).
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.io.atomic import atomic_write
from dispatch.plan.coverage import CoverageResult
from dispatch.plan.demand import Demand
from dispatch.plan.io import Units

if TYPE_CHECKING:
    from dispatch.roads.network import Network


def _status(n_within: int, first_s: float) -> str:
    if not math.isfinite(first_s):
        return "uncoverable"
    return "double" if n_within >= 2 else "covered" if n_within == 1 else "uncovered"


def coverage_geojson(result: CoverageResult, demand: Demand, units: Units | None = None
                     ) -> dict[str, Any]:  # fmt: skip
    """A FeatureCollection: one feature per demand point (its grid cell as a polygon when the demand
    is a grid), with ``status`` (``double``/``covered``/``uncovered``/``uncoverable``), ``first_s``,
    ``units_within`` and ``weight``; plus one point per unit."""
    feats: list[dict[str, Any]] = []
    for i in range(len(demand)):
        if demand.grid is not None and demand.cells is not None:
            r, c = demand.cells[i]
            geom: dict[str, Any] = {"type": "Polygon",
                                    "coordinates": [demand.grid.polygon(int(r), int(c))]}  # fmt: skip
        else:
            geom = {"type": "Point", "coordinates": [float(demand.lon[i]), float(demand.lat[i])]}
        fs = float(result.first_s[i])
        feats.append({
            "type": "Feature",
            "geometry": geom,
            "properties": {
                "layer": "demand",
                "id": demand.ids[i],
                "zone": demand.zone[i],
                "weight": float(demand.weight[i]),
                "first_s": round(fs, 1) if math.isfinite(fs) else None,
                "units_within": int(result.n_within[i]),
                "status": _status(int(result.n_within[i]), fs),
            },
        })  # fmt: skip
    if units is not None:
        for k in range(len(units)):
            feats.append({
                "type": "Feature",
                "geometry": {"type": "Point",
                             "coordinates": [float(units.lon[k]), float(units.lat[k])]},
                "properties": {"layer": "unit", "id": str(units.ids[k]),
                               "vehicle": str(units.vehicle[k]),
                               "turnout_s": float(units.turnout_s[k])},
            })  # fmt: skip
    return {"type": "FeatureCollection", "target_s": result.target_s, "features": feats}


_COLOURS = {
    "double": "#1a9850",
    "covered": "#a6d96a",
    "uncovered": "#d73027",
    "uncoverable": "#777777",
}


def coverage_png(result: CoverageResult, demand: Demand, net: Network, *,
                 units: Units | None = None, title: str = "") -> bytes:  # fmt: skip
    """A PNG map: roads in grey, demand cells/points coloured by status, units as triangles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PolyCollection

    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    ptr, glat, glon = net.geom_ptr, net.geom_lat, net.geom_lon
    segs = [np.column_stack([glon[ptr[a]:ptr[a + 1]], glat[ptr[a]:ptr[a + 1]]])
            for a in range(net.n_arcs) if not net.arc_contraflow[a]]  # fmt: skip
    status = [
        _status(int(n), float(f)) for n, f in zip(result.n_within, result.first_s, strict=True)
    ]
    colours = [_COLOURS[s] for s in status]
    if demand.grid is not None and demand.cells is not None:
        polys = [demand.grid.polygon(int(r), int(c))[:4] for r, c in demand.cells]
        ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="none", alpha=0.55))
    else:
        w = np.asarray(demand.weight, dtype=float)
        ax.scatter(
            demand.lon, demand.lat, c=colours, s=10 + 60 * w / max(w.max(), 1e-12), alpha=0.8
        )
    ax.add_collection(LineCollection(segs, colors="#444444", linewidths=0.4))
    if units is not None and len(units):
        ax.scatter(units.lon, units.lat, marker="^", c="#2166ac", s=60, edgecolors="white",
                   label="units", zorder=5)  # fmt: skip
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=k) for k, c in _COLOURS.items() if k in status]
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    lat0, lon0, lat1, lon1 = net.bbox
    ax.set_xlim(lon0, lon1)
    ax.set_ylim(lat0, lat1)
    ax.set_aspect(1 / math.cos(math.radians((lat0 + lat1) / 2)))
    ax.set_title(title or f"first unit within {result.target_s:g} s: {result.first_share:.1%}",
                 fontsize=10)  # fmt: skip
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_coverage(out_dir: str | os.PathLike[str], summary: dict[str, Any],
                   layers: dict[str, tuple[CoverageResult, Demand]], net: Network,
                   units: Units) -> list[Path]:  # fmt: skip
    """Write ``coverage.json``, and per band ``coverage_BAND.geojson`` and ``coverage_BAND.png``."""
    out = Path(out_dir)
    written = [atomic_write(out / "coverage.json", json.dumps(summary, indent=2) + "\n")]
    for band, (res, dem) in layers.items():
        gj = coverage_geojson(res, dem, units)
        written.append(atomic_write(out / f"coverage_{band}.geojson", json.dumps(gj) + "\n"))
        title = (f"{net.name}, {band}: first unit within {res.target_s:g} s "
                 f"{res.first_share:.1%}, double {res.double_share:.1%}")  # fmt: skip
        png = coverage_png(res, dem, net, units=units, title=title)
        written.append(atomic_write(out / f"coverage_{band}.png", png))
    return written
