// The dispatch console: one page, no build step, vendored Leaflet, talks to the service's /v1 API.
"use strict";

const CLASS_LETTER = { ambulance: "A", fire_engine: "E", ladder: "L", motorbike: "M" };
const ROUTE_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628"];

const map = L.map("map", { zoomControl: true, preferCanvas: false });
const layers = {
  roads: L.layerGroup().addTo(map),
  closures: L.layerGroup().addTo(map),
  units: L.layerGroup().addTo(map),
  incidents: L.layerGroup().addTo(map),
  routes: L.layerGroup().addTo(map),
  drawing: L.layerGroup().addTo(map),
};
// OpenStreetMap raster tiles: optional, only when switched on (the console works offline without them)
const osmTiles = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
  maxZoom: 19,
  attribution: "&copy; OpenStreetMap contributors",
});
L.control.layers({}, {
  "OpenStreetMap tiles (online)": osmTiles,
  "road network (this service)": layers.roads,
  units: layers.units,
  incidents: layers.incidents,
  closures: layers.closures,
  routes: layers.routes,
}, { collapsed: true }).addTo(map);
L.control.scale().addTo(map);

let current = null; // the last placed incident's answer
let drawing = null; // vertices of a closure being drawn
let seq = 0;

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function say(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = cls || "muted";
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const token = $("token").value.trim();
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json().catch(() => ({ code: "bad_response", message: r.statusText }));
  if (!r.ok) throw new Error(`${data.code}: ${data.message}`);
  return data;
}

function unitIcon(u) {
  return L.divIcon({
    className: "",
    html: `<div class="unit-icon ${u.status}">${CLASS_LETTER[u.vehicle] || "?"}</div>`,
    iconSize: [18, 18],
    iconAnchor: [9, 9],
  });
}

async function loadNetwork() {
  const net = await api("GET", "/v1/network");
  L.geoJSON(net, {
    style: (f) => f.properties.kind === "roads"
      ? { color: "#777", weight: 2, opacity: 0.8 }
      : { color: "#aaa", weight: 1, dashArray: "3 3", opacity: 0.8 },
    interactive: false,
  }).addTo(layers.roads);
}

// The state the console shows: records by id, kept up to date by the change stream (/v1/stream).
const state = { units: new Map(), incidents: new Map(), closures: new Map() };
let stream = null;
let renderQueued = false;

async function refresh() {
  // the full state once (and again only if the stream cannot resume); changes then come pushed
  try {
    const health = await api("GET", "/v1/health");
    const [units, incidents, closures] = await Promise.all([
      api("GET", "/v1/units"),
      api("GET", "/v1/incidents"),
      api("GET", "/v1/closures"),
    ]);
    state.units = new Map(units.units.map((u) => [u.id, u]));
    state.incidents = new Map(incidents.incidents.map((i) => [i.id, i]));
    state.closures = new Map(closures.closures.map((c) => [c.id, c]));
    // events after health.seq replace whole records: replaying one already shown changes nothing
    if (seq === 0 || health.seq < seq) seq = health.seq;
    render();
    listen();
  } catch (e) {
    say("service unreachable: " + e.message, "error");
  }
}

function listen() {
  if (stream) return;
  // EventSource reconnects by itself and sends Last-Event-ID: the service replays what was missed
  stream = new EventSource(`/v1/stream?after=${seq}`);
  stream.addEventListener("change", (ev) => {
    const change = JSON.parse(ev.data);
    for (const c of change.changes) {
      const table = state[c.table];
      if (!table) continue;
      if (c.doc === null) table.delete(c.id);
      else table.set(c.id, c.doc);
    }
    seq = change.seq;
    document.body.dataset.seq = String(seq);
    if (!renderQueued) {
      renderQueued = true;
      requestAnimationFrame(() => { renderQueued = false; render(); });
    }
  });
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED) {
      // refused (e.g. a state file that restarted behind us): read everything again
      stream = null;
      seq = 0;
      setTimeout(refresh, 2000);
    }
  };
}

function render() {
  const units = [...state.units.values()];
  const open = [...state.incidents.values()].filter((i) => i.status !== "cleared");
  $("summary").textContent = `${units.length} units, ${open.length} open incidents, change ${seq} (live)`;
  document.body.dataset.seq = String(seq);
  layers.units.clearLayers();
  for (const u of units) {
    L.marker([u.lat, u.lon], { icon: unitIcon(u), title: u.id })
      .bindTooltip(`${u.id} (${u.vehicle}) ${u.status}${u.incident ? " to " + u.incident : ""}`)
      .addTo(layers.units);
  }
  layers.incidents.clearLayers();
  const list = $("incidents");
  list.replaceChildren();
  const byTime = open.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
  for (const i of byTime) {
    const icon = L.divIcon({ className: "", html: '<div class="incident-icon"></div>', iconSize: [14, 14] });
    L.marker([i.lat, i.lon], { icon, title: i.id })
      .bindTooltip(`${i.id}: ${i.type} P${i.priority} ${i.status}`)
      .addTo(layers.incidents);
    if (i.radius_m > 0) L.circle([i.lat, i.lon], { radius: i.radius_m, color: "#d7191c", weight: 1, fillOpacity: 0.05 }).addTo(layers.incidents);
    const li = el("li", `${i.id} ${i.type} P${i.priority} ${i.status} ${i.units.join(", ")} `);
    const next = { open: null, dispatched: "on_scene", on_scene: "cleared" }[i.status];
    if (next) {
      const b = el("button", next.replace("_", " "));
      b.onclick = () => api("PATCH", `/v1/incidents/${encodeURIComponent(i.id)}`, { status: next }).catch((e) => say(e.message, "error"));
      li.appendChild(b);
    }
    list.appendChild(li);
  }
  layers.closures.clearLayers();
  const cl = $("closures");
  cl.replaceChildren();
  const closures = [...state.closures.values()].sort((a, b) => a.seq - b.seq);
  for (const c of closures) {
    if (c.geometry) {
      L.geoJSON(c.geometry, { style: { color: "#7b3294", fillColor: "#c2a5cf", weight: 2, fillOpacity: 0.35 } })
        .bindTooltip(`closed: ${c.label}`).addTo(layers.closures);
    }
    const li = el("li", `${c.label}: ${c.arcs} road segments${c.vehicles ? " for " + c.vehicles.join(", ") : ""} `);
    const b = el("button", "lift");
    b.onclick = () => api("DELETE", `/v1/closures/${encodeURIComponent(c.id)}`).catch((e) => say(e.message, "error"));
    li.appendChild(b);
    cl.appendChild(li);
  }
}

function showAnswer(ans) {
  current = ans;
  const rec = ans.recommendation;
  const chosen = new Set(rec.units.map((u) => u.unit));
  const tbody = $("ranked").querySelector("tbody");
  tbody.replaceChildren();
  for (const r of ans.ranked) {
    const tr = el("tr", null, "ranked-unit" + (chosen.has(r.unit) ? " chosen" : ""));
    for (const v of [r.unit, r.vehicle, r.eta_s, r.drive_s, r.turnout_s]) tr.appendChild(el("td", v));
    tbody.appendChild(tr);
  }
  const info = $("incident-info");
  info.replaceChildren();
  const inc = ans.incident;
  info.appendChild(el("div", `${inc.id}: ${inc.type} P${inc.priority} at ${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}`));
  if (ans.location.samples > 1) info.appendChild(el("div", `ETA = expected over ${ans.location.samples} points in ${ans.location.radius_m} m`, "muted"));
  if (ans.hour !== null && ans.hour !== undefined) {
    const hh = Math.floor(ans.hour), mm = Math.floor((ans.hour - hh) * 60);
    info.appendChild(el("div", `ETAs for ${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")} (${ans.hour_source}, ${ans.time_zone})`, "muted"));
  }
  for (const w of ans.warnings) info.appendChild(el("div", w, "warn"));
  for (const c of rec.coverage || []) info.appendChild(el("div", `coverage (${c.requirement}): ${c.message}`, "warn"));
  const recd = $("recommended");
  recd.replaceChildren();
  recd.appendChild(el("div", "Run card: " + rec.units.map((u) => `${u.unit} (${u.requirement}, ${u.eta_s} s)`).join(", ")));
  for (const s of rec.uncovered) recd.appendChild(el("div", `uncovered: ${s.requirement} x${s.missing}: ${s.reason}`, "warn"));
  if (rec.hospital) recd.appendChild(el("div", `hospital: ${rec.hospital.name} (${rec.hospital.eta_s} s)`));
  layers.routes.clearLayers();
  let n = 0;
  for (const f of (ans.routes ? ans.routes.features : [])) {
    if (f.geometry.type !== "LineString") continue;
    if (f.properties.role === "unit_walk") {  // the crew's on-foot leg from the access point (issue 12)
      L.geoJSON(f, { style: { color: "#222", weight: 3, opacity: 0.8, dashArray: f.properties.dashArray || "6 6", className: "walk" } })
        .bindTooltip(`${f.properties.unit}: on foot ${Math.round(f.properties.walk_s)} s`)
        .addTo(layers.routes);
      continue;
    }
    const colour = f.properties.role === "hospital_route" ? "#555" : ROUTE_COLOURS[n++ % ROUTE_COLOURS.length];
    L.geoJSON(f, { style: { color: colour, weight: 5, opacity: 0.75, className: "route" } })
      .bindTooltip(`${f.properties.unit || "hospital"}: ${Math.round(f.properties.eta_s)} s`)
      .addTo(layers.routes);
  }
  $("dispatch-btn").disabled = rec.units.length === 0;
  say(`${inc.id}: first arrival ${rec.first_arrival_s} s, full complement ${rec.full_complement_s} s`);
}

async function placeIncident(latlng) {
  const id = "WEB-" + Date.now().toString(36).toUpperCase();
  const body = { id, type: $("type").value, location: { lat: latlng.lat, lon: latlng.lng } };
  const radius = parseFloat($("radius").value);
  if (radius > 0) body.location.radius_m = radius;
  say("asking who goes...");
  try {
    showAnswer(await api("POST", "/v1/incidents?routes=true", body));
  } catch (e) {
    say(e.message, "error");
  }
}

map.on("click", (ev) => {
  if (drawing) {
    drawing.push([ev.latlng.lng, ev.latlng.lat]);
    layers.drawing.clearLayers();
    L.polygon(drawing.map(([x, y]) => [y, x]), { color: "#7b3294", dashArray: "4 4" }).addTo(layers.drawing);
    $("finish-btn").disabled = drawing.length < 3;
    return;
  }
  placeIncident(ev.latlng);
});

$("dispatch-btn").onclick = async () => {
  if (!current) return;
  try {
    const r = await api("POST", `/v1/incidents/${encodeURIComponent(current.incident.id)}/dispatch`);
    say(`dispatched ${r.units.map((u) => u.id).join(", ")} to ${r.incident.id}`);
    current = null;
    $("dispatch-btn").disabled = true;
  } catch (e) {
    say(e.message, "error");
  }
};

$("draw-btn").onclick = () => {
  drawing = [];
  layers.drawing.clearLayers();
  $("cancel-btn").disabled = false;
  say("click the map to add the polygon's corners");
};
$("cancel-btn").onclick = () => {
  drawing = null;
  layers.drawing.clearLayers();
  $("finish-btn").disabled = true;
  $("cancel-btn").disabled = true;
};
$("finish-btn").onclick = async () => {
  const ring = drawing.concat([drawing[0]]);
  $("cancel-btn").onclick();
  try {
    const r = await api("POST", "/v1/closures", { geometry: { type: "Polygon", coordinates: [ring] }, label: "drawn in console" });
    say(`closed ${r.closure.arcs} road segments`);
  } catch (e) {
    say(e.message, "error");
  }
};

async function start() {
  const [health, types] = await Promise.all([api("GET", "/v1/health"), api("GET", "/v1/incident-types")]);
  $("mapname").textContent = health.map;
  const [s, w, n, e] = health.bbox;
  map.fitBounds([[s, w], [n, e]]);
  for (const t of types.incident_types) {
    const o = el("option", `${t.type} (${t.service}, P${t.default_priority})`);
    o.value = t.type;
    $("type").appendChild(o);
  }
  $("type").value = "structure_fire";
  await loadNetwork();
  await refresh(); // then the change stream keeps the map current (no polling)
  document.body.dataset.ready = "1";
}

start().catch((e) => say("cannot start: " + e.message, "error"));
