/* asicfleet dashboard: each page fetches its figures from /api/... and refreshes them every few seconds.
   No inline script (the CSP forbids it): a page says what it is in <body data-page=...>. Text from the
   fleet goes into the page as text nodes only, never as HTML. */
"use strict";

const body = document.body;
const REFRESH_MS = Number(body.dataset.refreshMs || 5000);
const CSRF = body.dataset.csrf || "";
const charts = {};  // id -> uPlot, kept across refreshes (also read by the browser test)
window.dashboardCharts = charts;

// ----- helpers --------------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function rate(ths) {  // TH/s in the unit that reads best
  if (ths === null || ths === undefined) return "–";
  if (Math.abs(ths) >= 1e6) return num(ths / 1e6, 2) + " EH/s";
  if (Math.abs(ths) >= 1e3) return num(ths / 1e3, 2) + " PH/s";
  return num(ths, 1) + " TH/s";
}

function watts(w) {
  if (w === null || w === undefined) return "–";
  if (w >= 1e6) return num(w / 1e6, 2) + " MW";
  if (w >= 1e3) return num(w / 1e3, 1) + " kW";
  return num(w, 0) + " W";
}

function pct(ratio) {
  return ratio === null || ratio === undefined ? "–" : num(ratio * 100, 1) + " %";
}

function when(seconds) {
  if (!seconds) return "–";
  const date = new Date(seconds * 1000);
  const ago = (Date.now() - date.getTime()) / 1000;
  const stamp = date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  if (ago < 90) return `${Math.max(0, Math.round(ago))} s ago`;
  if (ago < 5400) return `${Math.round(ago / 60)} min ago`;
  return stamp;
}

function badge(status) {
  return el("span", { class: `badge ${status}`, text: status });
}

function banner(message) {
  const node = document.getElementById("banner");
  node.textContent = message || "";
  node.hidden = !message;
}

async function getJSON(url) {
  const reply = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(data.error || `${reply.status} ${reply.statusText}`);
  return data;
}

function poll(refresh) {  // now, then every REFRESH_MS; a failure shows a banner and the next round tries again
  let timer = null;
  const round = async () => {
    clearTimeout(timer);
    try {
      await refresh();
      banner("");
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      banner(String(error.message || error));
    }
    timer = setTimeout(round, REFRESH_MS);
  };
  round();
  return round;  // calling it refreshes at once (after a filter change)
}

function fillBody(table, rows) {  // rows: arrays of cells (text, Node, or [content, class])
  const tbody = table.tBodies[0];
  const fresh = document.createElement("tbody");
  for (const cells of rows) {
    const tr = el("tr");
    for (const cell of cells) {
      const [content, cls] = Array.isArray(cell) ? cell : [cell, null];
      tr.append(el("td", { class: cls }, content));
    }
    fresh.append(tr);
  }
  table.replaceChild(fresh, tbody);
}

function emptyRow(table, text) {
  fillBody(table, []);
  const cols = table.tHead.rows[0].cells.length;
  table.tBodies[0].append(el("tr", {}, el("td", { colspan: cols, class: "muted", text })));
}

// ----- charts (uPlot) -------------------------------------------------------------------------------
const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16"];

function chart(container, id, title, times, series, unit) {
  // series: [{label, values, dash}]; rebuilt when the series change, else given the new data
  let holder = document.getElementById(id);
  if (!holder) {
    holder = el("div", { id, class: "chart" });
    container.append(holder);
  }
  const data = [times, ...series.map((s) => s.values)];
  const shape = series.map((s) => s.label).join("|");
  const existing = charts[id];
  if (times.length && series.every((s) => s.values.every((v) => v === null || v === undefined))) {
    if (existing) { existing.destroy(); delete charts[id]; }  // a firmware that does not report it
    holder.replaceChildren(el("h3", { text: title }), el("p", { class: "muted", text: "not reported by this miner" }));
    return null;
  }
  if (!existing && holder.querySelector("p.muted")) holder.replaceChildren();
  if (existing && existing._shape === shape) {
    existing.setData(data);
    return existing;
  }
  if (existing) existing.destroy();
  holder.replaceChildren();
  const width = Math.max(320, Math.min(holder.clientWidth || container.clientWidth || 600, 900));
  const options = {
    title, width, height: 220,
    scales: { x: { time: true } },
    axes: [{}, { label: unit, size: 60 }],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || PALETTE[i % PALETTE.length], width: 2, dash: s.dash, spanGaps: false,
      value: (u, v) => (v === null || v === undefined ? "–" : num(v, unit === "W" ? 0 : 1) + " " + unit),
    }))],
  };
  const plot = new uPlot(options, data, holder);
  plot._shape = shape;
  charts[id] = plot;
  return plot;
}

// ----- the pages -------------------------------------------------------------------------------------
const pages = {};

pages.fleet = () => {
  const cards = document.getElementById("sites");
  const chartBox = document.getElementById("site-charts");
  poll(async () => {
    const totals = await getJSON("/api/totals");
    cards.replaceChildren();
    if (!totals.sites.length) {
      cards.append(el("p", { class: "muted", text: "No miners known yet: run a scan (asicfleet scan --distributed) "
        + "or start the collection." }));
    }
    for (const site of totals.sites) {
      const ratio = site.ratio;
      const health = ratio === null ? "" : ratio < 0.9 ? "bad" : ratio < 0.97 ? "warn" : "good";
      cards.append(el("article", { class: "card site", "data-site": site.site },
        el("h2", {}, site.site === "all" ? "All sites" : `Site ${site.site}`),
        el("div", { class: "big" }, el("span", { class: "online", text: site.online }), " online ",
          el("span", { class: site.offline ? "bad" : "muted", text: site.offline }), " offline"),
        el("dl", {},
          el("dt", {}, "miners"), el("dd", { class: "miners" }, String(site.miners)),
          el("dt", {}, "degraded"), el("dd", { class: site.degraded ? "warn" : "" }, String(site.degraded)),
          el("dt", {}, "hash rate"), el("dd", { class: "hashrate" }, rate(site.hashrate)),
          el("dt", {}, "expected"), el("dd", {}, rate(site.expected_all)),
          el("dt", {}, "of expected"), el("dd", { class: health }, pct(ratio)),
          el("dt", {}, "power"), el("dd", { class: "power" }, watts(site.power)),
          el("dt", {}, "efficiency"), el("dd", {}, site.efficiency === null ? "–" : num(site.efficiency, 1) + " J/TH")),
        site.other_algos ? el("p", { class: "muted small" },
          `${site.other_algos} miners of other algorithms: counted, and in the power, not in the hash rates`) : null,
        el("a", { href: site.site === "all" ? "/miners" : `/miners?site=${encodeURIComponent(site.site)}` },
          "miners →")));
    }
    const history = await getJSON("/api/site-history?hours=24");
    for (const [site, h] of Object.entries(history)) {
      chart(chartBox, `site-${site}`, `Site ${site}`, h.times,
        [{ label: "hash rate", values: h.hashrate }, { label: "expected", values: h.expected, dash: [6, 4] }],
        "TH/s");
    }
  });
};

pages.miners = () => {
  const form = document.getElementById("filters");
  const table = document.getElementById("miners");
  const params = new URLSearchParams(location.search);
  const state = { sort: params.get("sort") || "ip", page: Number(params.get("page") || 1) };
  for (const name of ["q", "status", "site", "make", "per_page"]) {
    if (params.get(name)) form.elements[name].value = params.get(name);
  }
  let knownSites = "";
  const options = async () => {  // sites and makes for the selects, from the totals
    const totals = await getJSON("/api/totals");
    const sites = totals.sites.map((s) => s.site).filter((s) => s !== "all");
    const makes = [...new Set(totals.sites.flatMap((s) => Object.keys(s.makes)))].sort();
    const key = sites.join(",") + "|" + makes.join(",");
    if (key === knownSites) return;
    knownSites = key;
    for (const [select, values] of [[form.elements.site, sites], [form.elements.make, makes]]) {
      const chosen = select.value || params.get(select.name) || "";
      while (select.options.length > 1) select.remove(1);
      for (const value of values) select.add(new Option(value, value));
      select.value = chosen;
    }
  };
  const query = () => {
    const q = new URLSearchParams();
    for (const name of ["q", "status", "site", "make", "per_page"]) {
      if (form.elements[name].value) q.set(name, form.elements[name].value);
    }
    q.set("sort", state.sort);
    q.set("page", state.page);
    return q;
  };
  const refresh = poll(async () => {
    const q = query();
    history.replaceState(null, "", "/miners?" + q.toString());
    const [page] = await Promise.all([getJSON("/api/miners?" + q.toString()), options()]);
    state.page = page.page;
    document.getElementById("matched").textContent =
      `${page.matched.toLocaleString("en")} of ${page.total.toLocaleString("en")} miners`;
    document.getElementById("pageinfo").textContent = `page ${page.page} of ${page.pages}`;
    document.getElementById("prev").disabled = page.page <= 1;
    document.getElementById("next").disabled = page.page >= page.pages;
    for (const th of table.tHead.rows[0].cells) {
      const key = th.dataset.sort;
      th.classList.toggle("asc", state.sort === key);
      th.classList.toggle("desc", state.sort === "-" + key);
    }
    if (!page.rows.length) {
      emptyRow(table, page.total ? "No miner matches the filters." : "No miners known yet.");
      return;
    }
    fillBody(table, page.rows.map((r) => [
      el("a", { href: `/miners/${r.ip}`, class: "ip" }, r.ip), r.site, r.make, r.model, r.firmware, badge(r.status),
      [r.algo === "SHA256" ? num(r.hashrate, 1) : r.hashrate_text || "–", "num"],
      [pct(r.ratio), r.ratio !== null && r.ratio < 0.9 ? "num bad" : "num"],
      [num(r.power, 0), "num"], [num(r.efficiency, 1), "num"], [num(r.temperature, 0), "num"],
      [r.boards ? `${r.boards_down}/${r.boards}` : "–", r.boards_down ? "num bad" : "num"],
      [num(r.fan_min_rpm, 0), "num"], [r.pool || "–", "pool"], when(r.last_seen),
    ]));
    table.tBodies[0].dataset.rows = String(page.rows.length);
  });
  let typing = null;
  form.addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.page = 1; refresh(); }, event.target.name === "q" ? 250 : 0);
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); state.page = 1; refresh(); });
  for (const th of table.tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = state.sort === key ? "-" + key : key;
      state.page = 1;
      refresh();
    });
  }
  document.getElementById("prev").addEventListener("click", () => { state.page -= 1; refresh(); });
  document.getElementById("next").addEventListener("click", () => { state.page += 1; refresh(); });
};

pages.miner = () => {
  const ip = body.dataset.ip;
  const chartBox = document.getElementById("miner-charts");
  const hours = document.getElementById("hours");
  const buttons = document.getElementById("action-buttons");
  let actionsShown = false;
  const refresh = poll(async () => {
    const [m, h, r, f] = await Promise.all([
      getJSON(`/api/miners/${ip}`), getJSON(`/api/miners/${ip}/history?hours=${hours.value}`),
      getJSON(`/api/miners/${ip}/rollouts`), getJSON(`/api/miners/${ip}/firings`)]);
    const row = m.row;
    const status = document.getElementById("status-badge");
    status.className = `badge ${row.status}`;
    status.textContent = row.status;
    const summary = document.getElementById("summary");
    summary.replaceChildren(...[
      ["hash rate", row.algo === "SHA256" ? rate(row.hashrate) : `${row.hashrate_text || "–"} (${row.algo})`],
      ["expected", row.algo === "SHA256" ? rate(row.expected_hashrate) : "–"], ["of expected", pct(row.ratio)],
      ["power", watts(row.power)], ["efficiency", row.efficiency === null ? "–" : num(row.efficiency, 1) + " J/TH"],
      ["hottest board", row.temperature === null ? "–" : num(row.temperature, 0) + " °C"],
      ["chips", row.chips_working === null ? "–" : `${row.chips_working} of ${row.chips_expected ?? "?"}`],
      ["site", row.site], ["last seen", when(row.last_seen)], ["fault light", row.light === null ? "–" : row.light ? "on" : "off"],
      ["mining", row.mining === null ? "–" : row.mining ? "yes" : "paused"], ["MAC", m.mac || "–"],
    ].map(([label, value]) => el("div", { class: "card small" }, el("div", { class: "muted", text: label }),
      el("div", { class: "value", text: value }))));
    if (buttons && !actionsShown) {
      actionsShown = true;
      for (const action of m.actions) {
        const button = el("button", { type: "button", "data-action": action.name, text: action.label });
        let input = null;
        if (action.parameter) {  // an action that applies a setting: its value beside the button
          input = el("input", { type: "number", min: "1", step: "1", id: `action-${action.name}`,
            "aria-label": `${action.parameter} (${action.unit})`, placeholder: action.unit });
          buttons.append(input);
        }
        button.addEventListener("click", () => act(action, button, input));
        buttons.append(button);
      }
    }
    // charts: the miner, then one per board figure
    chart(chartBox, "chart-hashrate", "Hash rate", h.times,
      [{ label: "hash rate", values: h.hashrate }, { label: "expected", values: h.expected, dash: [6, 4] }], "TH/s");
    chart(chartBox, "chart-power", "Power", h.times, [{ label: "power", values: h.power, color: PALETTE[1] }], "W");
    chart(chartBox, "chart-temperature", "Hottest board", h.times,
      [{ label: "temperature", values: h.temperature, color: PALETTE[3] }], "°C");
    if (h.boards.length) {
      chart(chartBox, "chart-boards-hashrate", "Hash rate per board", h.times,
        h.boards.map((b) => ({ label: `board ${b.position}`, values: b.hashrate })), "TH/s");
      chart(chartBox, "chart-boards-temperature", "Temperature per board", h.times,
        h.boards.map((b) => ({ label: `board ${b.position}`, values: b.temperature })), "°C");
      chart(chartBox, "chart-boards-chips", "Working chips per board", h.times,
        h.boards.map((b) => ({ label: `board ${b.position}`, values: b.chips })), "chips");
    }
    chartBox.dataset.points = String(h.times.length);
    const hr = (v) => (v && typeof v.value === "number" ? num(v.value, 2) + " " + v.unit : "–");
    fillBody(document.getElementById("boards"), m.boards.map((b) => [
      `board ${b.position}`, [hr(b.hashrate), "num"], [hr(b.expected_hashrate), "num"],
      [num(b.board_temperature, 0), "num"], [num(b.outlet_temperature, 0), "num"],
      [b.working_chips === null ? "–" : `${b.working_chips} / ${b.expected_chips ?? "?"}`,
        b.expected_chips && b.working_chips < b.expected_chips ? "num bad" : "num"]]));
    fillBody(document.getElementById("fans"), m.fans.map((fan) => [`fan ${fan.position}`, [num(fan.rpm, 0), "num"]]));
    fillBody(document.getElementById("pools"), m.pools.flatMap((g) => (g.pools || []).map((p) => [
      p.url || "–", p.user || "–", p.active ? "yes" : "no", [num(p.accepted_shares, 0), "num"],
      [num(p.rejected_shares, 0), "num"]])));
    const errors = document.getElementById("errors");
    errors.replaceChildren(...[...m.errors, ...m.messages.map((x) => `${x.severity}: ${x.message}`)]
      .map((text) => el("li", { text })));
    if (!errors.children.length) errors.append(el("li", { class: "muted", text: "none" }));
    const firings = document.getElementById("firings");
    if (!f.available) emptyRow(firings, "The rule engine is not installed here.");
    else if (!f.firings.length) emptyRow(firings, "No rule fired for this miner.");
    else fillBody(firings, f.firings.map(firingCells(false)));
    const rollouts = document.getElementById("miner-rollouts");
    if (!r.rollouts.length) emptyRow(rollouts, "No rollout or action touched this miner.");
    else fillBody(rollouts, r.rollouts.map((x) => [
      x.rollout_id, x.control, badge(x.status),
      x.steps.map((s) => s.step + (s.detail ? ` (${s.detail})` : "")).join(" → ") || "–", when(x.created)]));
  });
  hours.addEventListener("change", () => refresh());

  async function act(action, button, input) {
    const result = document.getElementById("action-result");
    button.disabled = true;
    result.textContent = `${action.label}: checking the miner…`;
    const headers = { "X-CSRF-Token": CSRF, Accept: "application/json" };
    let body;
    if (action.parameter) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify({ [action.parameter]: input && input.value !== "" ? Number(input.value) : null });
    }
    try {
      const reply = await fetch(`/api/miners/${ip}/actions/${action.name}`, {
        method: "POST", credentials: "same-origin", headers, body });
      const data = await reply.json().catch(() => ({}));
      result.textContent = reply.ok ? data.detail : (data.detail || data.error || `${reply.status}`);
      result.className = reply.ok ? "good" : "bad";
    } catch (error) {
      result.textContent = String(error.message || error);
      result.className = "bad";
    } finally {
      button.disabled = false;
      refresh();
    }
  }
};

function firingCells(withMiner) {
  return (x) => {
    const seen = x.values && typeof x.values === "object"
      ? Object.entries(x.values).map(([k, v]) => `${k}=${typeof v === "number" ? num(v, 2) : v}`).join(", ")
      : String(x.values ?? "");
    const cells = [when(x.at), x.rule];
    if (withMiner) cells.push(el("a", { href: `/miners/${x.ip}`, class: "ip" }, x.ip), x.site || "–");
    cells.push(seen, x.action || "–", [x.result || "–", /fail|error/i.test(x.result || "") ? "bad" : ""]);
    return cells;
  };
}

pages.rules = () => {
  const table = document.getElementById("firings");
  poll(async () => {
    const f = await getJSON("/api/firings");
    document.getElementById("rules-note").textContent = f.available ? ""
      : "The rule engine is not installed here: no firings to show.";
    if (!f.firings.length) emptyRow(table, f.available ? "No rule has fired yet." : "–");
    else fillBody(table, f.firings.map(firingCells(true)));
  });
};

pages.scans = () => {
  const table = document.getElementById("scans");
  poll(async () => {
    const { scans } = await getJSON("/api/scans");
    if (!scans.length) { emptyRow(table, "No scans in Redis."); return; }
    fillBody(table, scans.map((s) => [
      s.scan_id, badge(s.status), s.site || "–", s.targets.join(" "),
      `${s.chunks.done || 0}/${s.chunks_total} done` + (s.chunks.failed ? `, ${s.chunks.failed} failed` : ""),
      [`${s.addresses_probed.toLocaleString("en")}/${s.addresses_total.toLocaleString("en")}`, "num"],
      [String(s.miners), "num"], [String(s.errors), s.errors ? "num warn" : "num"], when(s.created)]));
  });
};

pages.rollouts = () => {
  const table = document.getElementById("rollouts");
  poll(async () => {
    const { rollouts } = await getJSON("/api/rollouts");
    if (!rollouts.length) { emptyRow(table, "No rollouts in Redis."); return; }
    fillBody(table, rollouts.map((x) => [
      x.rollout_id, x.control, badge(x.status), x.site || "–", [String(x.total), "num"],
      Object.entries(x.counts).map(([k, v]) => `${v} ${k}`).join(", "), when(x.created)]));
  });
};

const init = pages[body.dataset.page];
if (init) init();
