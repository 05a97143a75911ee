/* SCALP dashboard behaviour: relative times, state-grid taps, table sort/filter, lazy charts,
   reload on a new render (keeping scroll, sort and filter). Included inline by dashboard.html.j2. */
(function () {
  "use strict";
  var root = document.documentElement;
  var VERSION = root.getAttribute("data-version");
  var params = new URLSearchParams(location.search);
  var POLL_S = Math.max(1, +(params.get("poll") || root.getAttribute("data-poll") || 15));
  var KEY = "scalp-dashboard-state";
  var $ = function (sel, el) { return (el || document).querySelector(sel); };
  var $$ = function (sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); };

  /* ---------- relative times ---------- */
  function rel(ms) {
    var d = (ms - Date.now()) / 1000, a = Math.abs(d), t;
    if (a < 60) t = Math.round(a) + " s";
    else if (a < 3600) t = Math.floor(a / 60) + " min";
    else if (a < 172800) t = Math.floor(a / 3600) + " h " + String(Math.floor(a % 3600 / 60)).padStart(2, "0") + " min";
    else t = (a / 86400).toFixed(1) + " days";
    return d >= 0 ? "in " + t : t + " ago";
  }
  function tick() {
    $$("[data-rel]").forEach(function (el) {
      var ms = +el.getAttribute("data-rel");
      var late = el.hasAttribute("data-overdue") && Date.now() - ms > 120000;
      el.textContent = late ? "overdue by " + rel(ms).replace(" ago", "") : rel(ms);
      el.classList.toggle("overdue", late);
    });
    $$("[data-expires]").forEach(function (el) {
      var ms = +el.getAttribute("data-expires"), gone = ms <= Date.now();
      el.textContent = (gone ? "expired " : "expires ") + rel(ms);
      el.classList.toggle("chip-bad", gone);
    });
  }
  tick();
  setInterval(tick, 30000);

  /* ---------- state grid: tap shows the last candle ---------- */
  var detail = $("#state-detail");
  $$(".grid .st").forEach(function (b) {
    b.addEventListener("click", function () {
      $$(".grid .st.sel").forEach(function (x) { x.classList.remove("sel"); });
      b.classList.add("sel");
      if (detail) detail.textContent = b.getAttribute("data-d");
    });
  });

  /* ---------- summary table: sort and filter ---------- */
  var table = $("#sum");
  var state = { sort: null, dir: 0, q: "", tf: "", promoted: false };
  try {
    var saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (saved && typeof saved === "object") Object.assign(state, saved.table || {});
  } catch (e) { /* private mode: no storage */ }
  var TF = { "1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440 };
  function cellKey(td, type) {
    var s = td ? td.textContent.trim() : "";
    if (type === "num") { var f = parseFloat(s.replace("−", "-")); return isNaN(f) ? null : f; }
    if (type === "tf") return s in TF ? TF[s] : null;
    return s.replace(/^★\s*/, "").toLowerCase() || null;
  }
  function applySort() {
    if (!table || state.sort === null) return;
    var th = $('th[data-col="' + state.sort + '"]', table);
    if (!th) return;
    var type = th.getAttribute("data-type"), col = state.sort, dir = state.dir;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
      return { r: r, k: cellKey(r.cells[col], type), i: i };
    });
    rows.sort(function (a, b) {
      if (a.k === null && b.k === null) return a.i - b.i;
      if (a.k === null) return 1;              /* missing values always last */
      if (b.k === null) return -1;
      if (a.k < b.k) return -dir;
      if (a.k > b.k) return dir;
      return a.i - b.i;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (x) { frag.appendChild(x.r); });
    body.appendChild(frag);
    $$("th[data-col]", table).forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
  }
  function applyFilter() {
    if (!table) return;
    var q = state.q.trim().toLowerCase(), shown = 0, total = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      total++;
      var hay = r._hay || (r._hay = [0, 1, 2, r.cells.length - 1].map(function (i) {
        return r.cells[i].textContent; }).join(" ").toLowerCase());
      var ok = (!q || q.split(/\s+/).every(function (w) { return hay.indexOf(w) >= 0; })) &&
               (!state.tf || r.cells[1].textContent.trim() === state.tf) &&
               (!state.promoted || r.classList.contains("pr"));
      r.hidden = !ok;
      if (ok) shown++;
    });
    var c = $("#row-count");
    if (c) c.textContent = shown === total ? total + " rows" : shown + " of " + total + " rows";
  }
  if (table) {
    $$("th[data-col] button", table).forEach(function (btn) {
      btn.addEventListener("click", function () {
        var th = btn.closest("th"), col = +th.getAttribute("data-col");
        var numeric = th.getAttribute("data-type") === "num";
        if (state.sort === col) state.dir = -state.dir;
        else { state.sort = col; state.dir = numeric && !th.hasAttribute("data-low") ? -1 : 1; }  /* best first */
        applySort(); save();
      });
    });
    var q = $("#q");
    if (q) {
      q.value = state.q;
      q.addEventListener("input", function () { state.q = q.value; applyFilter(); save(); });
    }
    $$(".fchip[data-tf]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-tf") === state.tf));
      b.addEventListener("click", function () {
        state.tf = b.getAttribute("data-tf");
        $$(".fchip[data-tf]").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
        applyFilter(); save();
      });
    });
    var only = $("#only-promoted");
    if (only) {
      only.checked = !!state.promoted;
      only.addEventListener("change", function () { state.promoted = only.checked; applyFilter(); save(); });
    }
    applySort();
    applyFilter();
  }
  function save(extra) {
    try {
      var s = { table: state };
      if (extra) Object.assign(s, extra);
      sessionStorage.setItem(KEY, JSON.stringify(s));
    } catch (e) { /* ignore */ }
  }

  /* ---------- log: newest lines in view ---------- */
  var log = $("pre.log");
  if (log) log.scrollTop = log.scrollHeight;

  /* ---------- charts: fetched and drawn when scrolled near ---------- */
  var cache = {};
  function getData(src) {
    if (!cache[src]) cache[src] = fetch(src).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
    return cache[src];
  }
  var css = getComputedStyle(root);
  function cssVar(name, fallback) { return (css.getPropertyValue(name) || "").trim() || fallback; }
  var GRID = cssVar("--grid", "#e6e9ed");
  var FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11,
               color: cssVar("--muted", "#3b424b") };
  var CONFIG = { displayModeBar: false, responsive: true, scrollZoom: false };
  function baseLayout(h) {
    return { height: h, margin: { l: 52, r: 10, t: 8, b: 30 }, showlegend: false, dragmode: false,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: FONT,
      hovermode: "x unified", hoverlabel: { font: { size: 12 } } };
  }
  function drawEquity(div, d) {
    var e = d.equity;
    var traces = [{ type: "scatter", mode: "lines", x: e.t, y: e.e, line: { color: cssVar("--accent", "#0b63c5"), width: 1.6 },
      name: "Equity", hovertemplate: "%{y:,.2f}<extra>equity</extra>" }];
    var lay = baseLayout(div.clientHeight || 240);
    lay.xaxis = { type: "date", anchor: "y2", gridcolor: GRID, nticks: 5 };
    lay.yaxis = { domain: e.d ? [0.34, 1] : [0, 1], gridcolor: GRID, tickformat: ",.0f", nticks: 5 };
    if (e.d) {
      traces.push({ type: "scatter", mode: "lines", x: e.t, y: e.d, yaxis: "y2", fill: "tozeroy",
        line: { color: "#cf222e", width: 1 }, fillcolor: "rgba(207,34,46,.18)", name: "Drawdown",
        hovertemplate: "%{y:.2f} %<extra>drawdown</extra>" });
      lay.yaxis2 = { domain: [0, 0.26], gridcolor: GRID, ticksuffix: "%", nticks: 3, rangemode: "tozero" };
    } else {
      lay.xaxis.anchor = "y";
    }
    return Plotly.newPlot(div, traces, lay, CONFIG);
  }
  function drawCandles(div, d) {
    var c = d.candles;
    var traces = [{ type: "candlestick", x: c.t, open: c.o, high: c.h, low: c.l, close: c.c, name: "Candles",
      increasing: { line: { color: "#1a7f37", width: 1 }, fillcolor: "#2da44e" },
      decreasing: { line: { color: "#cf222e", width: 1 }, fillcolor: "#fa4549" }, hoverinfo: "x+y" }];
    if (d.entries && d.entries.t.length) traces.push({ type: "scatter", mode: "markers", x: d.entries.t,
      y: d.entries.p, text: d.entries.txt, name: "Entry", hovertemplate: "%{text}<extra></extra>",
      marker: { symbol: "triangle-up", size: 11, color: "#0b63c5", line: { color: "#fff", width: 1 } } });
    if (d.exits && d.exits.t.length) traces.push({ type: "scatter", mode: "markers", x: d.exits.t,
      y: d.exits.p, text: d.exits.txt, name: "Exit", hovertemplate: "%{text}<extra></extra>",
      marker: { symbol: "triangle-down", size: 11, color: "#e36209", line: { color: "#fff", width: 1 } } });
    var lay = baseLayout(div.clientHeight || 280);
    lay.xaxis = { type: "date", rangeslider: { visible: false }, gridcolor: GRID, nticks: 5 };
    lay.yaxis = { gridcolor: GRID, nticks: 6, tickformat: ",.6~g" };
    return Plotly.newPlot(div, traces, lay, CONFIG);
  }
  function message(div, text) { div.innerHTML = '<div class="msg"></div>'; div.firstChild.textContent = text; }
  function draw(div) {
    if (div.getAttribute("data-state")) return;
    div.setAttribute("data-state", "loading");
    if (typeof window.Plotly === "undefined") {
      message(div, "Chart library not loaded yet."); div.removeAttribute("data-state"); return;
    }
    getData(div.getAttribute("data-src")).then(function (d) {
      var p = div.getAttribute("data-kind") === "equity" ? drawEquity(div, d) : drawCandles(div, d);
      return Promise.resolve(p).then(function () { div.setAttribute("data-state", "drawn"); });
    }).catch(function () {
      div.setAttribute("data-state", "failed");
      message(div, "Chart data unavailable; checking for a newer render…");
      checkVersion();
    });
  }
  function startCharts() {
    var charts = $$(".chart[data-src]");
    if (!("IntersectionObserver" in window)) { charts.forEach(draw); return; }
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) { if (en.isIntersecting) { io.unobserve(en.target); draw(en.target); } });
    }, { rootMargin: "400px 0px" });
    charts.forEach(function (c) { io.observe(c); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startCharts);
  else startCharts();
  window.scalpDrawAllCharts = function () { $$(".chart[data-src]").forEach(draw); };

  /* ---------- freshness: poll version.json, reload onto a new render keeping the scroll ---------- */
  try {
    var back = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (back && back.reloadY !== undefined) {
      if ("scrollRestoration" in history) history.scrollRestoration = "manual";
      var y = back.reloadY;
      delete back.reloadY;
      sessionStorage.setItem(KEY, JSON.stringify(back));
      window.scrollTo(0, y);
      window.addEventListener("load", function () { window.scrollTo(0, y); });
    }
  } catch (e) { /* ignore */ }
  var badge = $("#poll-state");
  function checkVersion() {
    return fetch("version.json", { cache: "no-store" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (j) {
      if (badge) badge.hidden = true;
      if (j && j.version && j.version !== VERSION) {
        save({ reloadY: window.scrollY });
        location.reload();
      }
    }).catch(function () { if (badge) badge.hidden = false; });
  }
  setInterval(checkVersion, POLL_S * 1000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") checkVersion();
  });
})();
