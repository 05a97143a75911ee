/* SCALP dashboard and strategy pages: theme toggle, health line (running / idle / late, re-judged
   every few seconds and re-read from health.json each poll), relative times, state-grid taps, table
   sort (promoted rows pinned) and filter, section updates (only the sections whose hash changed are
   swapped; focus, scroll positions on both axes and open <details> are kept), and on strategy pages
   the charts: plotly.js loaded after the first paint, every time in UTC (or local, by choice).
   Included inline by dashboard.html.j2 and strategy.html.j2; handlers are delegated, so swapped
   sections need no re-binding. */
(function () {
  "use strict";
  var root = document.documentElement;
  var VERSION = root.getAttribute("data-version");
  var params = new URLSearchParams(location.search);
  var POLL_S = Math.max(1, +(params.get("poll") || root.getAttribute("data-poll") || 15));
  var KEY = "scalp-dashboard-state";
  var $ = function (sel, el) { return (el || document).querySelector(sel); };
  var $$ = function (sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); };
  var store = {
    get: function (k) { try { return localStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode */ } }
  };

  /* ---------- times: UTC text, durations as tools/render/format.fmt_duration ---------- */
  function pad(n) { return String(n).padStart(2, "0"); }
  function hhmm(ms) { var d = new Date(ms); return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC"; }
  function dur(s) {
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(Math.floor(s % 60)) + " s";
    return Math.floor(s / 3600) + " h " + pad(Math.floor(s % 3600 / 60)) + " min";
  }
  function rel(ms) {
    var d = (ms - Date.now()) / 1000, a = Math.abs(d), t;
    if (a < 60) t = Math.round(a) + " s";
    else if (a < 3600) t = Math.floor(a / 60) + " min";
    else if (a < 172800) t = Math.floor(a / 3600) + " h " + pad(Math.floor(a % 3600 / 60)) + " min";
    else t = (a / 86400).toFixed(1) + " days";
    return d >= 0 ? "in " + t : t + " ago";
  }
  function tick() {
    $$("[data-rel]").forEach(function (el) { el.textContent = rel(+el.getAttribute("data-rel")); });
    $$("[data-expires]").forEach(function (el) {
      var ms = +el.getAttribute("data-expires"), gone = ms <= Date.now();
      el.textContent = (gone ? "expired " : "expires ") + rel(ms);
      el.classList.toggle("chip-bad", gone);
    });
  }

  /* ---------- theme: auto (the system's) / light / dark ---------- */
  function themeLabel() {
    var t = root.getAttribute("data-theme") || "auto";
    $$("[data-theme-toggle]").forEach(function (b) { b.textContent = "Theme: " + t; });
  }
  function cycleTheme() {
    var next = { auto: "light", light: "dark", dark: "auto" }[root.getAttribute("data-theme") || "auto"];
    if (next === "auto") root.removeAttribute("data-theme"); else root.setAttribute("data-theme", next);
    store.set("scalp-theme", next);
    themeLabel();
    redrawCharts();
  }

  /* ---------- health line: engine/publish/health.py judge_health, the same words as tools/render/health.py ---------- */
  var health = null, rules = { grace_s: 90, running_factor: 3, running_min_s: 600 };
  function readHealthData() {
    var el = $("#health-data");
    if (!el) return;
    try { var j = JSON.parse(el.textContent); health = j.health; rules = j.rules || rules; } catch (e) { /* keep */ }
  }
  function healthWords(h, now) {
    if (!h) return ["unknown", "No cycle has run yet"];
    if (h.running) {
      var el = Math.max(0, (now - h.started_at_ms) / 1000);
      var limit = Math.max(rules.running_min_s, rules.running_factor * (h.last_duration_s || 0), 2 * (h.interval_s || 0));
      if (el > limit) return ["late", "Late: the cycle has been running for " + dur(el) +
        (h.last_duration_s ? " (usually " + dur(h.last_duration_s) + ")" : "")];
      return ["running", "Running now · for " + dur(el)];
    }
    if (h.next_run_ms === null || h.next_run_ms === undefined) return ["idle", "Idle · single run, no loop"];
    var due = Math.max(h.next_run_ms, h.finished_at_ms || h.started_at_ms), past = (now - due) / 1000;
    if (past < 0) return ["idle", "Idle until " + hhmm(due)];
    if (past <= rules.grace_s) return ["due", "Next cycle due now (" + hhmm(due) + ")"];
    return ["late", "Late: the next cycle was due " + hhmm(due) + ", " + dur(past) + " ago"];
  }
  function renderHealth() {
    var el = $("#hl-state");
    if (!el) return null;
    var w = healthWords(health, Date.now());
    if (el.getAttribute("data-state") !== w[0]) el.setAttribute("data-state", w[0]);
    if (el.textContent !== w[1]) el.textContent = w[1];
    return w;
  }
  function pollHealth() {
    if (!$("#hl-state")) return Promise.resolve(null);
    return fetch("health.json", { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (j && typeof j.started_at_ms === "number" && (!health || j.started_at_ms >= health.started_at_ms)) health = j;
        return renderHealth();
      }).catch(function () { return renderHealth(); });
  }

  /* ---------- summary table: sort (promoted rows pinned) and filter ---------- */
  var state = { sort: null, key: null, dir: 0, q: "", tf: "", promoted: false };
  var saved = {};
  try { saved = JSON.parse(sessionStorage.getItem(KEY) || "{}") || {}; } catch (e) { saved = {}; }
  if (saved.table && typeof saved.table === "object") Object.assign(state, saved.table);
  function save() {
    try { saved.table = state; sessionStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* ignore */ }
  }
  function sortKey(r, th) {
    if (state.key) {
      var v = r.getAttribute("data-" + state.key) || "";
      return state.key === "tf" ? +v : v.toLowerCase();
    }
    var s = r.cells[state.sort] ? r.cells[state.sort].firstChild : null;
    s = s ? (s.nodeValue || s.textContent || "").trim() : "";
    if (th.getAttribute("data-type") === "num") { var f = parseFloat(s.replace("−", "-")); return isNaN(f) ? null : f; }
    return s.toLowerCase() || null;
  }
  function applySort() {
    var table = $("#sum");
    if (!table || (state.sort === null && !state.key)) return;
    var th = state.key ? $('th[data-col="0"]', table) : $('th[data-col="' + state.sort + '"]', table);
    if (!th) return;
    var dir = state.dir, body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
      return { r: r, k: sortKey(r, th), i: i, p: r.classList.contains("pr") ? 0 : 1 };
    });
    rows.sort(function (a, b) {
      if (a.p !== b.p) return a.p - b.p;                  /* promoted rows stay on top */
      if (a.k === null && b.k === null) return a.i - b.i;
      if (a.k === null) return 1;                          /* missing values always last */
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
    $$("button[data-key]", table).forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-key") === state.key); });
  }
  function applyFilter() {
    var table = $("#sum");
    if (!table) return;
    var q = state.q.trim().toLowerCase(), shown = 0, total = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      total++;
      var hay = r._hay || (r._hay = [r.getAttribute("data-pair"), r.cells[0].textContent,
        r.cells[r.cells.length - 1].textContent].join(" ").toLowerCase());
      var tf = r.cells[0].querySelector("span");
      var ok = (!q || q.split(/\s+/).every(function (w) { return hay.indexOf(w) >= 0; })) &&
               (!state.tf || (tf && tf.textContent.split(" · ")[0] === state.tf)) &&
               (!state.promoted || r.classList.contains("pr"));
      r.hidden = !ok;
      if (ok) shown++;
    });
    var c = $("#row-count");
    if (c) c.textContent = shown === total ? total + " rows" : shown + " of " + total + " rows";
  }
  function syncControls() {
    var q = $("#q");
    if (q && q !== document.activeElement) q.value = state.q;
    $$(".fchip[data-tf]").forEach(function (b) { b.setAttribute("aria-pressed", String(b.getAttribute("data-tf") === state.tf)); });
    var only = $("#only-promoted");
    if (only) only.checked = !!state.promoted;
    var det = $("details[data-open-wide]");
    if (det && !det._init) {
      det._init = true;
      var pref = saved.tableOpen;
      det.open = pref === undefined ? window.matchMedia("(min-width: 720px)").matches : !!pref;
    }
    applySort();
    applyFilter();
  }

  /* ---------- delegated interaction ---------- */
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!(t instanceof Element)) return;
    var b = t.closest("button, [data-range]");
    if (!b) return;
    if (b.hasAttribute("data-theme-toggle")) { cycleTheme(); return; }
    if (b.hasAttribute("data-tz-toggle")) { toggleTz(); return; }
    if (b.hasAttribute("data-range")) { setRange(b.getAttribute("data-target"), b.getAttribute("data-range")); return; }
    if (b.classList.contains("st") && b.closest(".grid")) {
      $$(".grid .st.sel").forEach(function (x) { x.classList.remove("sel"); });
      b.classList.add("sel");
      var d = $("#state-detail");
      if (d) d.textContent = b.getAttribute("data-d");
      return;
    }
    if (b.classList.contains("fchip") && b.hasAttribute("data-tf")) {
      state.tf = b.getAttribute("data-tf"); syncControls(); save(); return;
    }
    var th = b.closest("#sum th[data-col]");
    if (th) {
      var col = +th.getAttribute("data-col"), key = b.getAttribute("data-key");
      var numeric = th.getAttribute("data-type") === "num";
      if (key) {
        if (state.key === key) state.dir = -state.dir; else { state.key = key; state.sort = 0; state.dir = 1; }
      } else {
        if (state.sort === col && !state.key) state.dir = -state.dir;
        else { state.key = null; state.sort = col; state.dir = numeric && !th.hasAttribute("data-low") ? -1 : 1; }  /* best first */
      }
      applySort(); save();
    }
  });
  document.addEventListener("input", function (ev) {
    if (ev.target && ev.target.id === "q") { state.q = ev.target.value; applyFilter(); save(); }
  });
  document.addEventListener("change", function (ev) {
    if (ev.target && ev.target.id === "only-promoted") { state.promoted = ev.target.checked; applyFilter(); save(); }
  });
  document.addEventListener("toggle", function (ev) {
    if (ev.target && ev.target.id === "table-open" && ev.target._init) {
      saved.tableOpen = ev.target.open; save();
    }
  }, true);

  /* ---------- section updates: swap only what changed, keep focus, scroll and open details ---------- */
  var badge = $("#poll-state"), updating = false;
  function keepState(oldSec, newSec) {
    /* open/closed <details> and scroll positions (both axes) by id, or by position for unnamed boxes */
    $$("details[id]", oldSec).forEach(function (d) {
      var n = newSec.querySelector("#" + CSS.escape(d.id));
      if (n) n.open = d.open;
    });
    var scrolled = [];
    var boxes = $$(".table-wrap, pre.log", oldSec), nboxes = $$(".table-wrap, pre.log", newSec);
    boxes.forEach(function (el, i) {
      var n = el.id ? newSec.querySelector("#" + CSS.escape(el.id)) : nboxes[i];
      if (n && (el.scrollLeft || el.scrollTop)) scrolled.push([n, el.scrollLeft, el.scrollTop]);
    });
    /* the focused element (a filter being typed in) is moved into the new section as it is, caret included */
    var a = document.activeElement;
    if (a && a.id && oldSec.contains(a)) {
      var twin = newSec.querySelector("#" + CSS.escape(a.id));
      if (twin) {
        var sel = null;
        try { sel = [a.selectionStart, a.selectionEnd]; } catch (e) { /* not a text field */ }
        twin.replaceWith(a);
        refocus = [a, sel];
      }
    }
    return scrolled;
  }
  var refocus = null;
  function restoreFocus() {
    if (!refocus) return;
    var a = refocus[0], sel = refocus[1];
    refocus = null;
    if (!a.isConnected || document.activeElement === a) return;
    a.focus({ preventScroll: true });
    if (sel && sel[0] !== null) { try { a.setSelectionRange(sel[0], sel[1]); } catch (e) { /* ignore */ } }
  }
  function applyUpdate(doc, newVersion) {
    var anchor = null, top = 0;
    var sections = $$("section[id]");
    for (var i = 0; i < sections.length; i++) {            /* the first section in view anchors the scroll */
      var r = sections[i].getBoundingClientRect();
      if (r.bottom > 0) { anchor = sections[i].id; top = r.top; break; }
    }
    var changed = [];
    $$("section[id]", doc).forEach(function (ns) {
      var cur = document.getElementById(ns.id);
      if (cur && cur.getAttribute("data-h") === ns.getAttribute("data-h")) return;
      var fresh = document.importNode(ns, true);
      if (cur) {
        var scrolled = keepState(cur, fresh);
        cur.replaceWith(fresh);
        restoreFocus();
        scrolled.forEach(function (s) { s[0].scrollLeft = s[1]; s[0].scrollTop = s[2]; });
      } else {                                              /* a new section: after its predecessor */
        var prev = ns.previousElementSibling;
        while (prev && !(prev.id && document.getElementById(prev.id))) prev = prev.previousElementSibling;
        var parentId = ns.parentElement && ns.parentElement.tagName.toLowerCase();
        var parent = parentId === "header" ? $("header.top") : $("main");
        if (prev) document.getElementById(prev.id).after(fresh); else if (parent) parent.prepend(fresh);
      }
      changed.push(ns.id);
    });
    $$("section[id]").forEach(function (s) {            /* sections whose data is gone */
      if (!doc.getElementById(s.id)) { s.remove(); changed.push(s.id); }
    });
    var nav = doc.querySelector("nav.jump"), curNav = $("nav.jump");
    if (nav && curNav && nav.innerHTML !== curNav.innerHTML) curNav.innerHTML = nav.innerHTML;
    if (anchor && document.getElementById(anchor)) {
      var dy = document.getElementById(anchor).getBoundingClientRect().top - top;
      if (Math.abs(dy) > 0.5) window.scrollBy(0, dy);
    }
    VERSION = newVersion;
    root.setAttribute("data-version", newVersion);
    var v = $("#version"); if (v) v.textContent = newVersion;
    var now = new Date();
    var u = $("#updated");
    if (u) u.textContent = "updated " + pad(now.getHours()) + ":" + pad(now.getMinutes()) + ":" + pad(now.getSeconds()) +
      (changed.length ? " (" + changed.join(", ") + ")" : "") + ".";
    readHealthData(); renderHealth(); tick(); syncControls(); startCharts();
    document.dispatchEvent(new CustomEvent("scalp:updated", { detail: { sections: changed, version: newVersion } }));
    return changed;
  }
  function checkVersion() {
    if (updating) return Promise.resolve(null);
    return fetch("version.json", { cache: "no-store" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (j) {
      if (badge) badge.hidden = true;
      if (!j || !j.version || j.version === VERSION) return null;
      updating = true;
      return fetch(location.pathname + "?v=" + encodeURIComponent(j.version), { cache: "no-store" }).then(function (r) {
        if (r.status === 404) {
          var u = $("#updated"); if (u) u.textContent = "This page is no longer rendered (the strategy left the dashboard).";
          VERSION = j.version; return null;
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text().then(function (text) {
          var doc = new DOMParser().parseFromString(text, "text/html");
          var nv = doc.documentElement.getAttribute("data-version") || j.version;
          return applyUpdate(doc, nv);
        });
      });
    }).catch(function () { if (badge) badge.hidden = false; }).then(function (x) { updating = false; return x; });
  }

  /* ---------- charts (strategy pages): plotly.js after the first paint, times in UTC ---------- */
  var cache = {}, plotlyState = null;
  function tzMode() { return store.get("scalp-tz") === "local" ? "local" : "utc"; }
  function tzLabel() {
    if (tzMode() === "utc") return "UTC";
    var off = -new Date().getTimezoneOffset(), s = off >= 0 ? "+" : "-";
    off = Math.abs(off);
    return "local, UTC" + s + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }
  function toAxis(ms) {                 /* plotly draws date strings as they are: no zone conversion */
    var shift = tzMode() === "local" ? -new Date(ms).getTimezoneOffset() * 60000 : 0;
    return new Date(ms + shift).toISOString().slice(0, 19).replace("T", " ");
  }
  function toggleTz() {
    store.set("scalp-tz", tzMode() === "utc" ? "local" : "utc");
    $$("[data-tz-toggle]").forEach(function (b) { b.textContent = "Chart times: " + (tzMode() === "utc" ? "UTC" : "local"); });
    redrawCharts();
  }
  function getData(src) {
    if (!cache[src]) cache[src] = fetch(src).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
    return cache[src];
  }
  function cssVar(name, fallback) { return (getComputedStyle(root).getPropertyValue(name) || "").trim() || fallback; }
  function baseLayout(h) {
    var fg = cssVar("--fg", "#17191c");
    return { height: h, margin: { l: 56, r: 10, t: 8, b: 44 }, showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: cssVar("--muted", "#545d69") },
      hovermode: "x unified",
      hoverlabel: { bgcolor: cssVar("--card", "#fff"), bordercolor: cssVar("--line", "#d5dae0"), font: { size: 13, color: fg } } };
  }
  function xAxis(extra) {
    var x = { type: "date", gridcolor: cssVar("--grid", "#e6e9ed"), nticks: 5, hoverformat: "%Y-%m-%d %H:%M " + (tzMode() === "utc" ? "UTC" : "local"),
      title: { text: "Time (" + tzLabel() + ")", font: { size: 12 } } };
    return Object.assign(x, extra || {});
  }
  function drawEquity(div, d) {
    var e = d.equity, xs = e.t.map(toAxis);
    var traces = [{ type: "scatter", mode: "lines", x: xs, y: e.e, line: { color: cssVar("--accent", "#0a58b0"), width: 1.6 },
      name: "Equity", hovertemplate: "%{y:,.2f}<extra>equity</extra>" }];
    var lay = baseLayout(div.clientHeight || 280);
    lay.dragmode = false;
    lay.xaxis = xAxis({ anchor: e.d ? "y2" : "y" });
    lay.yaxis = { domain: e.d ? [0.36, 1] : [0, 1], gridcolor: cssVar("--grid", "#e6e9ed"), tickformat: ",.0f", nticks: 5 };
    if (e.d) {
      traces.push({ type: "scatter", mode: "lines", x: xs, y: e.d, yaxis: "y2", fill: "tozeroy",
        line: { color: cssVar("--down", "#cf222e"), width: 1 }, name: "Drawdown",
        hovertemplate: "%{y:.2f} %<extra>drawdown</extra>" });
      lay.yaxis2 = { domain: [0, 0.28], gridcolor: cssVar("--grid", "#e6e9ed"), ticksuffix: "%", nticks: 3, rangemode: "tozero" };
    }
    return Plotly.newPlot(div, traces, lay, { displayModeBar: false, responsive: true, scrollZoom: false });
  }
  function yRange(c, lo, hi) {
    var mn = Infinity, mx = -Infinity;
    for (var i = 0; i < c.t.length; i++) if (c.t[i] >= lo && c.t[i] <= hi) { mn = Math.min(mn, c.l[i]); mx = Math.max(mx, c.h[i]); }
    if (!isFinite(mn)) return null;
    var pad5 = (mx - mn) * 0.06 || mx * 0.001;
    return [mn - pad5, mx + pad5];
  }
  function drawCandles(div, d) {
    var c = d.candles, xs = c.t.map(toAxis);
    var traces = [{ type: "candlestick", x: xs, open: c.o, high: c.h, low: c.l, close: c.c, name: "Candles",
      increasing: { line: { color: cssVar("--up", "#1a7f37"), width: 1 } },
      decreasing: { line: { color: cssVar("--down", "#cf222e"), width: 1 } }, hoverinfo: "x+y" }];
    var mark = cssVar("--card", "#fff");
    if (d.entries && d.entries.t.length) traces.push({ type: "scatter", mode: "markers", x: d.entries.t.map(toAxis),
      y: d.entries.p, text: d.entries.txt, name: "Entry", hovertemplate: "%{text}<extra>entry</extra>",
      marker: { symbol: "triangle-up", size: 13, color: cssVar("--mark-in", "#0b63c5"), line: { color: mark, width: 1 } } });
    if (d.exits && d.exits.t.length) traces.push({ type: "scatter", mode: "markers", x: d.exits.t.map(toAxis),
      y: d.exits.p, text: d.exits.txt, name: "Exit", hovertemplate: "%{text}<extra>exit</extra>",
      marker: { symbol: "triangle-down", size: 13, color: cssVar("--mark-out", "#c24e00"), line: { color: mark, width: 1 } } });
    var lay = baseLayout(div.clientHeight || 340);
    lay.dragmode = "pan";
    var fit = d.fit || [c.t[0], c.t[c.t.length - 1]];
    lay.xaxis = xAxis({ rangeslider: { visible: false }, range: [toAxis(fit[0]), toAxis(fit[1])] });
    lay.yaxis = { gridcolor: cssVar("--grid", "#e6e9ed"), nticks: 6, tickformat: ",.6~g", range: yRange(c, fit[0], fit[1]) };
    div._candles = c; div._fit = fit;
    return Plotly.newPlot(div, traces, lay, { displayModeBar: false, responsive: true, scrollZoom: true }).then(function () {
      div.on("plotly_relayout", function (ev) {           /* keep the prices in view while panning or zooming */
        if (div._busy || !ev || ev["yaxis.range[0]"] !== undefined) return;
        var r = div.layout.xaxis.range, lo = Date.parse(r[0] + "Z"), hi = Date.parse(r[1] + "Z");
        if (tzMode() === "local") { lo += new Date(lo).getTimezoneOffset() * 60000; hi += new Date(hi).getTimezoneOffset() * 60000; }
        var y = yRange(c, lo, hi);
        if (y) { div._busy = true; Plotly.relayout(div, { "yaxis.range": y }).then(function () { div._busy = false; }); }
      });
    });
  }
  function setRange(id, how) {
    var div = document.getElementById(id);
    if (!div || !div._candles || !window.Plotly) return;
    var c = div._candles, r = div.layout.xaxis.range, lo = Date.parse(r[0] + "Z"), hi = Date.parse(r[1] + "Z");
    if (how === "fit") { lo = div._fit[0]; hi = div._fit[1]; }
    else if (how === "all") { lo = c.t[0]; hi = c.t[c.t.length - 1]; }
    else { var mid = (lo + hi) / 2, half = (hi - lo) / 2 * (how === "in" ? 0.5 : 2); lo = mid - half; hi = mid + half; }
    var y = yRange(c, lo, hi);
    var upd = { "xaxis.range": [toAxis(lo), toAxis(hi)] };
    if (y) upd["yaxis.range"] = y;
    div._busy = true;
    Plotly.relayout(div, upd).then(function () { div._busy = false; });
  }
  function message(div, text) { div.innerHTML = '<div class="msg"></div>'; div.firstChild.textContent = text; }
  function draw(div, force) {
    if (div.getAttribute("data-state") && !force) return;
    div.setAttribute("data-state", "loading");
    getData(div.getAttribute("data-src")).then(function (d) {
      if (force && window.Plotly) Plotly.purge(div);
      var p = div.getAttribute("data-kind") === "equity" ? drawEquity(div, d) : drawCandles(div, d);
      return Promise.resolve(p).then(function () { div.setAttribute("data-state", "drawn"); });
    }).catch(function () {
      div.setAttribute("data-state", "failed");
      message(div, "Chart data unavailable; checking for a newer render…");
      checkVersion();
    });
  }
  function loadPlotly() {
    var src = root.getAttribute("data-plotly");
    if (!src) return Promise.resolve(false);
    if (!plotlyState) plotlyState = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src; s.async = true;
      s.onload = function () { resolve(true); };
      s.onerror = function () { reject(new Error("plotly.js did not load")); };
      document.head.appendChild(s);
    });
    return plotlyState;
  }
  function startCharts() {
    var charts = $$(".chart[data-src]").filter(function (c) { return !c.getAttribute("data-state"); });
    if (!charts.length) return;
    loadPlotly().then(function () { charts.forEach(function (c) { draw(c); }); })
      .catch(function () { charts.forEach(function (c) { message(c, "Chart library did not load."); }); });
  }
  function redrawCharts() {
    if (!window.Plotly) return;
    $$(".chart[data-state=drawn]").forEach(function (c) { draw(c, true); });
  }
  window.scalpDrawAllCharts = function () { return loadPlotly().then(function () { $$(".chart[data-src]").forEach(function (c) { draw(c); }); }); };

  /* ---------- start ---------- */
  themeLabel();
  $$("[data-tz-toggle]").forEach(function (b) { b.textContent = "Chart times: " + (tzMode() === "utc" ? "UTC" : "local"); });
  readHealthData();
  renderHealth();
  tick();
  syncControls();
  var log = $("pre.log");
  if (log) log.scrollTop = log.scrollHeight;
  /* after the first paint: the chart library (strategy pages) is not on the critical path */
  function afterPaint() { requestAnimationFrame(function () { setTimeout(startCharts, 0); }); }
  if (document.readyState === "complete") afterPaint(); else window.addEventListener("load", afterPaint);
  setInterval(function () { renderHealth(); tick(); }, 5000);
  setInterval(function () { pollHealth(); checkVersion(); }, POLL_S * 1000);
  pollHealth();
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { pollHealth(); checkVersion(); }
  });
  window.scalp = { pollHealth: pollHealth, renderHealth: renderHealth, checkVersion: checkVersion, healthWords: healthWords,
    toAxis: toAxis };
})();
