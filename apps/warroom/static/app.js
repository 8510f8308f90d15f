// The war room page: renders the server's snapshot (GET /api/snapshot, then every push on the
// server-sent-events stream /api/events). Every number comes from the snapshot; the page only
// ticks countdowns between pushes. Text goes in through textContent only (SKU names and alert
// messages are data, never markup).
"use strict";

const COLORS = ["#f472b6", "#60a5fa", "#34d399", "#fbbf24", "#a78bfa", "#f87171", "#22d3ee", "#fb923c",
  "#a3e635", "#e879f9", "#94a3b8", "#2dd4bf"];
const ALERT_LABELS = {
  FLEX_TRANSFER: "Flex transfer", PURCHASE_LIMIT_TRIGGERED: "Purchase limit", PURCHASE_LIMIT_CLEARED: "Limit cleared",
  REPLENISHMENT: "Replenish", REALLOCATION: "Reallocation", CHANNEL_PAUSED: "Channel paused",
  CHANNEL_RESUMED: "Channel resumed", SYNC_FAILURE: "Sync failure", UNKNOWN: "Alert",
};

let snapshot = null;
let clockOffsetMs = 0; // server clock - page clock, so countdowns agree with the server
const cards = new Map(); // sku -> {root, fields, chart}
let overallChart = null;
let channelColor = {};
let shownAlerts = "";
let shownPoints = "";

// -- small helpers ------------------------------------------------------------------------------------
const $ = (selector) => document.querySelector(selector);
const byTestId = (root, id) => root.querySelector(`[data-testid="${CSS.escape(id)}"]`);
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const serverNow = () => Date.now() + clockOffsetMs;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function clockTime(ms) {
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

function humanDuration(seconds) { // as apps.warroom.talk.human_duration says it
  seconds = Math.max(0, seconds);
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 72 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

function countdown(atMs) {
  if (atMs === null || atMs === undefined) return "not selling";
  const left = Math.max(0, Math.round((atMs - serverNow()) / 1000));
  if (left >= 48 * 3600) return `${Math.round(left / 86400)} days`;
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return h ? `${h}:${mmss}` : mmss;
}

// Heat: cold slate blue when little is sold, amber half way, red when the allocation is gone. No
// green on the way: green means "available" everywhere else on the page.
const HEAT = [[30, 58, 95], [146, 96, 18], [185, 28, 28]];
function heatColor(share) {
  const t = Math.min(1, Math.max(0, share)) * (HEAT.length - 1);
  const i = Math.min(HEAT.length - 2, Math.floor(t)), f = t - i;
  const mix = HEAT[i].map((c, k) => Math.round(c + (HEAT[i + 1][k] - c) * f));
  return `rgb(${mix.join(",")})`;
}

function colorOf(channel) {
  if (!(channel in channelColor)) channelColor[channel] = COLORS[Object.keys(channelColor).length % COLORS.length];
  return channelColor[channel];
}

function channelName(channel) {
  return (snapshot && snapshot.names.channels[channel]) || channel;
}

// -- charts --------------------------------------------------------------------------------------------
function makeChart(canvas, withLegend) {
  return new Chart(canvas, {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      elements: { point: { radius: 0 }, line: { borderWidth: 2, tension: 0 } },
      plugins: {
        legend: { display: withLegend, position: "right",
          labels: { color: "#cbd5e1", boxWidth: 9, boxHeight: 9, padding: 5, font: { size: 10 } } },
        tooltip: { callbacks: { title: (items) => (items.length ? clockTime(items[0].parsed.x) : "") } },
      },
      scales: {
        x: { type: "linear", ticks: { color: "#8fa0ba", maxTicksLimit: 5, maxRotation: 0, callback: (v) => clockTime(v) },
          grid: { color: "#24324d" } },
        y: { beginAtZero: true, ticks: { color: "#8fa0ba", maxTicksLimit: 5, precision: 0 }, grid: { color: "#24324d" } },
      },
    },
  });
}

function setCurve(chart, curve) {
  chart.data.datasets = Object.entries(curve.series).map(([channel, values]) => ({
    label: channelName(channel), borderColor: colorOf(channel), backgroundColor: colorOf(channel),
    data: values.map((y, i) => ({ x: curve.t[i], y })),
  }));
  chart.update("none");
}

// -- header and overall --------------------------------------------------------------------------------
function renderHeader(s) {
  const feed = s.feed || {};
  const dot = byTestId(document, "feed-dot");
  dot.className = "dot " + (feed.state === "live" ? "live" : feed.state === "retrying" ? "down" : "waiting");
  byTestId(document, "feed-state").textContent = feed.error ? `${feed.state}: ${feed.error}` : (feed.state || "?");
  byTestId(document, "stream-orders").textContent = fmt(s.stream.orders);
  byTestId(document, "stream-sold").textContent = fmt(s.overall.sold);
  byTestId(document, "stream-rejected").textContent = fmt(s.stream.rejected);
  byTestId(document, "stream-released").textContent = fmt(s.stream.released);
  byTestId(document, "stream-alerts").textContent = fmt(s.stream.alerts);
  byTestId(document, "undecodable").textContent = fmt(s.stream.undecodable);
  const bad = byTestId(document, "undecodable-box");
  bad.hidden = !s.stream.undecodable;
  bad.title = s.stream.last_error || "";
  byTestId(document, "updated-at").textContent = `updated ${clockTime(s.generated_at)}`;
}

function renderOverall(s) {
  const o = s.overall;
  byTestId(document, "overall-skus").textContent = `${fmt(o.skus)} SKU${o.skus === 1 ? "" : "s"}, ${fmt(o.total)} units`;
  byTestId(document, "overall-available").textContent = fmt(o.available);
  byTestId(document, "overall-reserved").textContent = fmt(o.reserved);
  byTestId(document, "overall-in-transit").textContent = fmt(o.in_transit);
  const low = byTestId(document, "overall-low");
  low.textContent = o.low_skus.length ? `${o.low_skus.length} SKU${o.low_skus.length === 1 ? "" : "s"}` : "none";
  low.parentElement.classList.toggle("on", o.low_skus.length > 0);
  low.parentElement.title = o.low_skus.join(", ");
  byTestId(document, "overall-velocity").textContent = `${o.velocity_per_min} /min`;
  if (!overallChart) overallChart = makeChart(document.getElementById("overall-curve"), true);
  setCurve(overallChart, o.curve);
}

// Long SKU ids (a load test's run-prefixed ones) differ at the end: keep the end in a narrow column.
function tail(text, keep = 12) {
  return text.length > keep ? `…${text.slice(-(keep - 1))}` : text;
}

function renderHeatmap(s) {
  const table = byTestId(document, "heatmap");
  const regions = Object.keys(s.overall.regions);
  const head = el("tr", {}, el("th", { text: "SKU" }));
  for (const r of regions) head.append(el("th", { text: r, title: s.names.regions[r] || r }));
  table.tHead.replaceChildren(head);
  const rows = s.skus.filter((c) => c.has_state).map((c) => row(c.sku, tail(c.sku), c.regions, `region-%s-${c.sku}-`));
  rows.push(row("all", "All SKUs", s.overall.regions, "overall-region-%s-"));
  table.tBodies[0].replaceChildren(...rows);

  function row(key, label, cells, idPattern) {
    const tr = el("tr", { class: key === "all" ? "all" : "" }, el("th", { text: label, title: key === "all" ? label : key }));
    for (const r of regions) {
      const cell = cells[r];
      if (!cell) { tr.append(el("td")); continue; }
      const td = el("td", { title: `${s.names.regions[r] || r}: ${fmt(cell.sold)} sold of ${fmt(cell.allocation)}` },
        el("b", { text: fmt(cell.remaining), "data-testid": idPattern.replace("%s", "remaining") + r }),
        el("small", { text: `${fmt(cell.sold)} sold`, "data-testid": idPattern.replace("%s", "sold") + r }));
      if (cell.in_transit) {
        td.append(el("small", { class: "transit", text: ` +${fmt(cell.in_transit)}`,
          "data-testid": idPattern.replace("%s", "in-transit") + r }));
      }
      td.style.background = heatColor(cell.sell_through);
      if (cell.low) td.classList.add("low");
      tr.append(td);
    }
    return tr;
  }
}

// -- SKU cards -----------------------------------------------------------------------------------------
function state(kind, label, testid) {
  const value = el("b", { "data-testid": testid });
  const note = el("small");
  return { node: el("div", { class: `state ${kind}` }, el("label", { text: label }), value, note), value, note };
}

function buildCard(sku) {
  const fields = {
    total: el("span", { class: "total", "data-testid": `total-${sku}` }),
    limit: el("span", { class: "badge", "data-testid": `limit-${sku}`, hidden: "" }),
    lowBadge: el("span", { class: "badge low", text: "LOW", hidden: "" }),
    sellout: el("b", { "data-testid": `sellout-${sku}` }),
    velocity: el("small", { "data-testid": `velocity-${sku}` }),
    available: state("available", "Available", `available-${sku}`),
    reserved: state("reserved", "Reserved", `reserved-${sku}`),
    low: state("low", "Low", `low-${sku}`),
    transit: state("transit", "In transit", `in-transit-${sku}`),
    bar: el("div", { class: "bar", "data-testid": `bar-${sku}` }),
    chips: el("div", { class: "chips", "data-testid": `channels-${sku}` }),
    countdown: null,
  };
  fields.countdown = el("div", { class: "countdown" }, el("label", { text: "Sells out in" }), fields.sellout, fields.velocity);
  const canvas = el("canvas");
  const root = el("article", { class: "card panel", "data-testid": `sku-card-${sku}` },
    el("header", {}, el("h3", { text: sku }), fields.total, fields.lowBadge, el("span", { class: "spacer" }), fields.limit),
    fields.countdown,
    el("div", { class: "states" }, fields.available.node, fields.reserved.node, fields.low.node, fields.transit.node),
    fields.bar,
    el("div", { class: "chart-box" }, canvas),
    fields.chips);
  return { root, fields, canvas, chart: null };
}

function renderCard(entry, c) {
  const f = entry.fields;
  f.total.textContent = c.has_state ? `${fmt(c.total)} units` : "waiting for the engine's state";
  f.limit.hidden = !c.buyer_limit;
  f.limit.textContent = c.buyer_limit ? `${c.buyer_limit} per buyer` : "";
  f.limit.title = c.buyer_limit ? `purchase limit set by ${c.limit_source || "?"}` : "";
  f.lowBadge.hidden = !c.low;
  f.velocity.textContent = `${c.velocity_per_min} /min`;
  f.countdown.dataset.at = c.sellout_at === null ? "" : String(c.sellout_at);
  f.available.value.textContent = fmt(c.available);
  f.available.note.textContent = `flex ${fmt(c.flex)}`;
  f.reserved.value.textContent = fmt(c.reserved);
  f.reserved.note.textContent = `${fmt(c.paid)} paid`;
  f.reserved.node.title = `reserved = locked ${fmt(c.locked)} (not paid) + paid ${fmt(c.paid)} (not shipped); shipped ${fmt(c.shipped)}`;
  f.low.node.classList.toggle("on", c.low);
  f.low.node.dataset.state = c.low ? "low" : "ok";
  f.low.value.textContent = c.low ? "LOW" : "ok";
  f.low.note.textContent = `< ${fmt(c.low_threshold)}`;
  f.low.node.title = `low when fewer than ${fmt(c.low_threshold)} units are available (${snapshot.rules.low_pct}% of the total)`;
  f.transit.value.textContent = fmt(c.in_transit.units);
  const next = c.in_transit.shipments[0];
  f.transit.note.dataset.eta = next ? String(next.eta) : "";
  f.transit.note.dataset.where = next ? (next.warehouse_name || next.region) : "";
  f.transit.note.setAttribute("data-testid", `in-transit-eta-${c.sku}`);

  const scale = Math.max(1, c.total + c.in_transit.units);
  const part = (cls, n, title) => {
    const span = el("span", { class: cls, title: `${title}: ${fmt(n)}` });
    span.style.width = `${(100 * n) / scale}%`;
    return span;
  };
  f.bar.replaceChildren(part("shipped", c.shipped, "shipped"), part("reserved", c.reserved, "reserved"),
    part(c.low ? "available low" : "available", c.available, "available"), part("transit", c.in_transit.units, "in transit"));

  const chips = [];
  for (const [channel, row] of Object.entries(c.channels)) {
    if (row.sellable === null && !row.sold) continue;
    const swatch = el("span", { text: "■ " });
    swatch.style.color = colorOf(channel);
    chips.push(el("span", { class: `chip${row.paused ? " paused" : ""}`, "data-testid": `channel-${c.sku}-${channel}`,
      title: `${row.name}: may sell ${fmt(row.sellable)}; sold ${fmt(row.sold)}${row.paused ? " (paused)" : ""}` },
    swatch, `${row.name} `, el("b", { text: row.paused ? "paused" : row.sellable === null ? "" : fmt(row.sellable) })));
  }
  f.chips.replaceChildren(...chips);
  if (!entry.chart) entry.chart = makeChart(entry.canvas, false);
  setCurve(entry.chart, c.curve);
}

function renderCards(s) {
  const container = byTestId(document, "sku-cards");
  byTestId(document, "empty").hidden = s.skus.length > 0;
  const hidden = byTestId(document, "hidden-skus");
  hidden.hidden = !s.hidden_skus;
  hidden.textContent = `Showing the ${s.skus.length} best-selling of ${s.sku_count} SKUs; the totals count them all.`;
  const wanted = new Set(s.skus.map((c) => c.sku));
  for (const [sku, entry] of cards) {
    if (!wanted.has(sku)) {
      if (entry.chart) entry.chart.destroy();
      entry.root.remove();
      cards.delete(sku);
    }
  }
  for (const c of s.skus) {
    let entry = cards.get(c.sku);
    if (!entry) {
      entry = buildCard(c.sku);
      cards.set(c.sku, entry);
    }
    container.append(entry.root); // keeps the snapshot's order
    renderCard(entry, c);
  }
}

// -- side: talking points and alerts -------------------------------------------------------------------
function renderTalk(s) {
  const key = JSON.stringify(s.talking_points);
  if (key === shownPoints) return;
  shownPoints = key;
  const list = byTestId(document, "talking-points");
  const items = s.talking_points.map((p) => el("li", { class: p.kind, "data-testid": "talking-point", "data-kind": p.kind, text: p.text }));
  if (!items.length) items.push(el("li", { class: "none", text: "Nothing urgent to say yet." }));
  list.replaceChildren(...items);
}

function renderAlerts(s) {
  const key = s.alerts.map((a) => a.alert_id).join("|");
  if (key === shownAlerts) return;
  shownAlerts = key;
  const list = byTestId(document, "alert-feed");
  list.replaceChildren(...s.alerts.map((a) => el("li", { class: a.type, "data-testid": "alert-item", "data-type": a.type, "data-alert-id": a.alert_id },
    el("time", { text: clockTime(a.raised_at) }),
    el("span", { class: "type", text: `${ALERT_LABELS[a.type] || a.type} · ${a.sku}` }),
    el("span", { class: "message", text: a.message }))));
}

// -- ticking between pushes ----------------------------------------------------------------------------
function tick() {
  if (!snapshot) return;
  const overall = $(".overall .countdown");
  const o = snapshot.overall;
  byTestId(document, "overall-sellout").textContent = countdown(o.sellout_at);
  overall.classList.toggle("soon", o.sellout_at !== null && o.sellout_at - serverNow() < 15 * 60 * 1000);
  for (const [, entry] of cards) {
    const at = entry.fields.countdown.dataset.at;
    entry.fields.sellout.textContent = countdown(at ? Number(at) : null);
    entry.fields.countdown.classList.toggle("soon", !!at && Number(at) - serverNow() < 15 * 60 * 1000);
    const note = entry.fields.transit.note;
    note.textContent = note.dataset.eta
      ? `${note.dataset.where} · ${humanDuration((Number(note.dataset.eta) - serverNow()) / 1000)}` : "none";
  }
}

function render(s) {
  snapshot = s;
  clockOffsetMs = s.generated_at - Date.now();
  renderHeader(s);
  renderOverall(s);
  renderHeatmap(s);
  renderCards(s);
  renderTalk(s);
  renderAlerts(s);
  tick();
  document.body.dataset.version = String(s.version);
}

function connect() {
  fetch("/api/snapshot").then((r) => r.json()).then(render).catch(() => {});
  const events = new EventSource("/api/events");
  events.addEventListener("snapshot", (e) => render(JSON.parse(e.data)));
  events.onerror = () => { // EventSource reconnects by itself; say so meanwhile
    byTestId(document, "feed-dot").className = "dot down";
    byTestId(document, "feed-state").textContent = "reconnecting to the war room server";
  };
}

Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
setInterval(tick, 1000);
connect();
