// SPDX-License-Identifier: MIT
// resmon-view's HTML report: one self-contained page (no network: the
// script and styles are inline) with per-kind totals, an interactive flame
// graph of what is held by stack (click to zoom, hover for count, bytes and
// age, a search box), and a sortable, filterable table of the groups. A
// diff colours growth red and shrinkage blue. Layer: tools (hosted).
//
// For tests, `#selftest=NAME` in the URL clicks the first frame whose name
// contains NAME once the page is drawn, and writes what happened into
// <body data-selftest="...">; script errors land in <body data-error>.
#pragma once

#include <string>

#include "formats.hpp"

namespace resmon::view {

inline std::string html_data(const view& v) {
  std::string s =
      fmt::format("{{\"program\":{},\"pid\":{},\"diff\":{},\"final\":{},\"moment\":{},\"sample\":{},\"kinds\":[",
                  json_string(v.program), v.pid, v.diff, v.final, json_string(moment(v)), v.sample_bytes);
  bool first = true;
  for (const kind_totals& k : v.kinds) {
    s += fmt::format("{}{{\"kind\":{},\"held\":{},\"held_bytes\":{},\"peak\":{},\"total\":{}}}", first ? "" : ",",
                     json_string(k.name), std::int64_t(k.live), std::int64_t(k.live_bytes), k.peak,
                     std::int64_t(k.total));
    first = false;
  }
  s += "],";
  if (v.reachability) {
    const reach_totals& t = totals_by_reach(v);
    s += fmt::format("\"reach\":{{\"definite\":[{},{}],\"indirect\":[{},{}],\"reachable\":[{},{}],\"streams\":{}}},",
                     t.definite.count, t.definite.bytes, t.indirect.count, t.indirect.bytes, t.reachable.count,
                     t.reachable.bytes, t.lost_streams.count);
  }
  s += "\"series\":[";
  for (std::size_t i = 0; i < v.series.size(); ++i)
    s += fmt::format("{}[{:.3f},{}]", i == 0 ? "" : ",", v.series[i].first, v.series[i].second);
  s += "],\"groups\":[";
  first = true;
  for (const group& g : v.groups) {
    s += fmt::format("{}{{\"kind\":{},\"lost\":{},\"count\":{},\"bytes\":{},\"age\":{},\"stack\":[", first ? "" : ",",
                     json_string(g.kind), json_string(g.reach == "reachable" ? "" : g.reach), g.count, g.bytes,
                     g.oldest_age_ns);
    first = false;
    bool ff = true;
    for (const frame& f : g.stack) {
      std::string name = f.function.empty() ? address_name(f) : f.function;
      s += fmt::format("{}[{},{},{},{}]", ff ? "" : ",", json_string(name), json_string(basename_of(f.file)), f.line,
                       json_string(basename_of(f.module)));
      ff = false;
    }
    s += "]}";
  }
  s += "]";
  if (v.has_allocations) {
    // The 200 stacks that acquired the most over the run (RESMON_TEMPORARY).
    s += fmt::format(",\"temporary_ns\":{},\"allocations\":[", v.temporary_ns);
    first = true;
    std::size_t n = 0;
    for (const allocation_group& a : v.allocations) {
      if (n++ == 200) break;
      const frame* f = a.stack.empty() ? nullptr : &a.stack.front();
      std::string name = f == nullptr ? "?" : f->function.empty() ? address_name(*f) : f->function;
      std::string where = f == nullptr       ? ""
                          : !f->file.empty() ? fmt::format("{}:{}", basename_of(f->file), f->line)
                                             : basename_of(f->module);
      s += fmt::format("{}[{},{},{},{},{},{},{},{}]", first ? "" : ",", json_string(a.kind), a.count, a.bytes,
                       a.temporary, a.temporary_bytes, a.held, json_string(name), json_string(where));
      first = false;
    }
    s += "]";
  }
  s += "}";
  // Inside <script>: no "</script>" can appear, nor "<!--".
  std::string out;
  for (char c : s) {
    if (c == '<') out += "\\u003c";
    else out += c;
  }
  return out;
}

inline std::string to_html(const view& v) {
  static const char* head = R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>resmon-view</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}
.sub{color:#666;margin-bottom:12px}
.totals span{display:inline-block;margin:0 16px 8px 0;padding:4px 8px;background:#f3f3f3;border-radius:4px}
.bar{display:flex;gap:12px;align-items:center;margin:8px 0}
#graph{position:relative;border:1px solid #ddd;overflow:hidden;background:#fff}
.node{position:absolute;height:19px;box-sizing:border-box;border:1px solid #fff;overflow:hidden;white-space:nowrap;
  font:11px/17px monospace;padding:0 3px;cursor:pointer;border-radius:2px}
.node.match{outline:2px solid #000;outline-offset:-2px}
#tip{position:fixed;pointer-events:none;background:#333;color:#fff;padding:6px 8px;border-radius:4px;font-size:12px;display:none;max-width:600px;z-index:9}
table{border-collapse:collapse;margin-top:16px;width:100%}
th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;font-size:12px}
th{cursor:pointer;background:#fafafa;user-select:none}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.grow{color:#b00}.shrink{color:#05a}
</style></head><body>
<h1 id="title">resmon-view</h1><div class="sub" id="sub"></div>
<div class="totals" id="totals"></div>
<svg id="series" height="110" style="width:100%;display:none"></svg>
<div class="bar"><label>Kind <select id="kind"></select></label>
<input id="search" placeholder="Search frames" size="30"> <span id="found"></span>
<button id="reset">Reset zoom</button></div>
<div id="graph"></div><div id="tip"></div>
<div class="bar"><input id="filter" placeholder="Filter the table" size="40"></div>
<table id="table"><thead><tr><th data-k="kind">Kind</th><th data-k="count">Count</th><th data-k="bytes">Bytes</th>
<th data-k="age">Oldest</th><th data-k="fn">Function</th><th data-k="where">Where</th></tr></thead><tbody></tbody></table>
<div id="acquired" style="display:none"><h2 style="font-size:15px;margin:20px 0 0">Acquired over the run</h2>
<div class="sub" id="acquired-sub"></div>
<table id="alloc"><thead><tr><th>Kind</th><th>Acquired</th><th>Bytes</th><th>Temporary</th><th>Temporary bytes</th>
<th>Held</th><th>Function</th><th>Where</th></tr></thead><tbody></tbody></table></div>
<script id="data" type="application/json">)HTML";
  static const char* tail = R"HTML(</script>
<script>
"use strict";
window.onerror = function (m) { document.body.dataset.error = String(m); };
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
function human(b) {
  const s = b < 0 ? "-" : ""; b = Math.abs(b);
  if (b < 1024) return s + b + " B";
  const u = ["KiB", "MiB", "GiB", "TiB"]; let i = -1;
  do { b /= 1024; i++; } while (b >= 1024 && i < 3);
  return s + b.toFixed(1) + " " + u[i];
}
function age(ns) {
  const s = ns / 1e9;
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function esc(t) { return String(t).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
$("title").textContent = "resmon-view: " + D.program;
$("sub").textContent = "pid " + D.pid + " \u2014 " + D.moment +
  (D.sample ? " \u2014 memory sampled (one block per " + D.sample + " bytes on average): estimates" : "");
$("totals").innerHTML = D.kinds.filter((k) => k.held || k.total).map((k) =>
  "<span><b>" + esc(k.kind) + "</b> held " + k.held + (k.held_bytes ? " (" + human(k.held_bytes) + ")" : "") +
  (D.diff ? "" : ", peak " + k.peak) + ", acquired " + k.total + "</span>").join("") +
  (D.reach ? "<span id='reach'><b>memory</b> definitely lost " + D.reach.definite[0] + " (" + human(D.reach.definite[1]) +
   "), indirectly lost " + D.reach.indirect[0] + " (" + human(D.reach.indirect[1]) + "), still reachable " +
   D.reach.reachable[0] + " (" + human(D.reach.reachable[1]) + ")" +
   (D.reach.streams ? "; FILE*/DIR* lost " + D.reach.streams : "") + "</span>" : "");
// Held memory over time, the highest point marked.
function drawSeries() {
  const S = D.series, svg = $("series");
  if (!S || S.length < 2 || D.diff) return;
  svg.style.display = "block";
  const W = svg.clientWidth || 800, H = 110, L = 70, B = 18;
  const t1 = S[S.length - 1][0] || 1, m = Math.max(...S.map((p) => p[1])) || 1;
  const x = (t) => L + (W - L - 10) * t / t1, y = (b) => H - B - (H - B - 8) * b / m;
  const top = S.reduce((a, p) => (p[1] > a[1] ? p : a), S[0]);
  svg.innerHTML = "<polyline fill='none' stroke='#c40' stroke-width='1.5' points='" +
    S.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ") + "'/>" +
    "<line x1='" + L + "' y1='" + (H - B) + "' x2='" + (W - 10) + "' y2='" + (H - B) + "' stroke='#999'/>" +
    "<text x='0' y='14' font-size='11'>" + human(m) + "</text><text x='0' y='" + (H - B) + "' font-size='11'>0</text>" +
    "<text x='" + (W - 60) + "' y='" + (H - 3) + "' font-size='11'>" + t1.toFixed(1) + " s</text>" +
    "<circle id='peak' cx='" + x(top[0]).toFixed(1) + "' cy='" + y(top[1]).toFixed(1) + "' r='4' fill='#c40'/>" +
    "<text x='" + Math.min(x(top[0]) + 6, W - 140) + "' y='" + (y(top[1]) + 12) + "' font-size='11'>highest " +
    human(top[1]) + " at " + top[0].toFixed(2) + " s</text>";
}
drawSeries();
const kinds = [...new Set(D.groups.map((g) => g.kind))];
$("kind").innerHTML = kinds.map((k) => "<option>" + esc(k) + "</option>").join("");
if (kinds.includes("memory")) $("kind").value = "memory";

let root = null, zoom = null;
function weight(g) { return Math.abs(g.kind === "memory" || g.bytes ? g.bytes : g.count); }
function build(kind) {
  const r = {name: kind, children: new Map(), value: 0, count: 0, bytes: 0, age: 0, parent: null, depth: 0};
  for (const g of D.groups) {
    if (g.kind !== kind) continue;
    const w = weight(g);
    let n = r;
    const add = (node) => { node.value += w; node.count += g.count; node.bytes += g.bytes; node.age = Math.max(node.age, g.age); };
    add(r);
    for (let i = g.stack.length - 1; i >= 0; i--) {
      const f = g.stack[i];
      const key = f[0];  // one node per function under a parent, whatever the line
      let c = n.children.get(key);
      if (!c) {
        c = {name: f[0], where: f[1] ? f[1] + ":" + f[2] : f[3], children: new Map(), value: 0, count: 0, bytes: 0,
             age: 0, parent: n, depth: n.depth + 1};
        n.children.set(key, c);
      }
      add(c);
      n = c;
    }
  }
  return r;
}
function color(n) {
  if (D.diff) return n.bytes > 0 || (n.bytes === 0 && n.count > 0) ? "#f0a0a0" : "#a0c0f0";
  let h = 0;
  for (const c of n.name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return "hsl(" + (20 + h % 40) + ",80%," + (62 + h % 15) + "%)";
}
function draw() {
  const g = $("graph");
  g.innerHTML = "";
  const width = g.clientWidth || 1000;
  const q = $("search").value;
  let matched = 0, rows = 0;
  const ancestors = [];
  for (let a = zoom; a; a = a.parent) ancestors.unshift(a);
  const place = (n, x, w) => {
    rows = Math.max(rows, n.depth + 1);
    if (w < 1) return;
    const d = document.createElement("div");
    d.className = "node";
    d.style.left = x + "px"; d.style.width = w + "px"; d.style.top = (n.depth * 20) + "px";
    d.style.background = color(n);
    d.textContent = n.name;
    if (q && n.name.includes(q)) { d.classList.add("match"); matched += n.value; }
    d.onclick = () => { zoom = n; draw(); };
    d.onmousemove = (e) => {
      const t = $("tip");
      t.style.display = "block"; t.style.left = (e.clientX + 12) + "px"; t.style.top = (e.clientY + 12) + "px";
      t.innerHTML = "<b>" + esc(n.name) + "</b><br>" + esc(n.where || "") + "<br>" + n.count + " held" +
        (n.bytes ? ", " + human(n.bytes) : "") + (D.diff ? "" : ", oldest " + age(n.age));
    };
    d.onmouseleave = () => { $("tip").style.display = "none"; };
    g.appendChild(d);
    let cx = x;
    const kids = [...n.children.values()].sort((a, b) => b.value - a.value);
    for (const c of kids) {
      const cw = n.value ? w * c.value / n.value : 0;
      place(c, cx, cw);
      cx += cw;
    }
  };
  for (const a of ancestors.slice(0, -1)) {
    rows = Math.max(rows, a.depth + 1);
    const d = document.createElement("div");
    d.className = "node"; d.style.left = "0px"; d.style.width = width + "px"; d.style.top = (a.depth * 20) + "px";
    d.style.background = "#ddd"; d.textContent = a.name; d.onclick = () => { zoom = a; draw(); };
    g.appendChild(d);
  }
  place(zoom, 0, width);
  g.style.height = Math.max(rows * 20, 40) + "px";
  $("found").textContent = q ? "matched " + (zoom.value ? (100 * matched / zoom.value).toFixed(1) : 0) + "%" : "";
  return g.children.length;
}
function reset() { root = build($("kind").value); zoom = root; draw(); }
$("kind").onchange = reset;
$("search").oninput = draw;
$("reset").onclick = () => { zoom = root; draw(); };
window.onresize = draw;

// The table
let sortKey = "bytes", sortDown = true;
function rowsOf() {
  return D.groups.map((g) => ({kind: g.kind + (g.lost ? " (" + g.lost + "ly lost)" : ""), count: g.count, bytes: g.bytes, age: g.age,
    fn: g.stack.length ? g.stack[0][0] : "?", where: g.stack.length ? (g.stack[0][1] ? g.stack[0][1] + ":" + g.stack[0][2] : g.stack[0][3]) : ""}));
}
function table() {
  const f = $("filter").value.toLowerCase();
  const rows = rowsOf().filter((r) => !f || (r.kind + " " + r.fn + " " + r.where).toLowerCase().includes(f));
  rows.sort((a, b) => {
    const x = a[sortKey], y = b[sortKey];
    const c = typeof x === "number" ? (Math.abs(x) - Math.abs(y)) : String(x).localeCompare(String(y));
    return sortDown ? -c : c;
  });
  const cls = (v) => D.diff ? (v > 0 ? "grow" : v < 0 ? "shrink" : "") : "";
  document.querySelector("#table tbody").innerHTML = rows.map((r) =>
    "<tr><td>" + esc(r.kind) + "</td><td class='num " + cls(r.count) + "'>" + (D.diff && r.count > 0 ? "+" : "") + r.count +
    "</td><td class='num " + cls(r.bytes) + "'>" + (r.bytes ? (D.diff && r.bytes > 0 ? "+" : "") + human(r.bytes) : "") +
    "</td><td class='num'>" + (D.diff ? "" : age(r.age)) + "</td><td>" + esc(r.fn) + "</td><td>" + esc(r.where) + "</td></tr>").join("");
}
document.querySelectorAll("#table th").forEach((th) => th.onclick = () => {
  if (sortKey === th.dataset.k) sortDown = !sortDown; else { sortKey = th.dataset.k; sortDown = true; }
  table();
});
$("filter").oninput = table;
if (kinds.length) reset();
table();

// Acquisitions per stack over the run, most first (RESMON_TEMPORARY).
if (D.allocations) {
  $("acquired").style.display = "";
  $("acquired-sub").textContent = "Per call stack: every acquisition, those freed within " + age(D.temporary_ns) +
    " (temporary), and those still held. resmon-view --sort allocations|temporaries lists them all.";
  document.querySelector("#alloc tbody").innerHTML = D.allocations.map((a) =>
    "<tr><td>" + esc(a[0]) + "</td><td class='num'>" + a[1] + "</td><td class='num'>" + (a[2] ? human(a[2]) : "") +
    "</td><td class='num'>" + a[3] + "</td><td class='num'>" + (a[4] ? human(a[4]) : "") + "</td><td class='num'>" + a[5] +
    "</td><td>" + esc(a[6]) + "</td><td>" + esc(a[7]) + "</td></tr>").join("");
}

// #selftest=NAME: click the first frame whose name contains NAME.
const m = /^#selftest=(.*)$/.exec(location.hash);
if (m) {
  const want = decodeURIComponent(m[1]);
  for (const k of kinds) {
    $("kind").value = k; reset();
    const node = [...$("graph").children].find((d) => d.textContent.includes(want));
    if (!node) continue;
    const before = $("graph").children.length;
    node.click();
    document.body.dataset.selftest = "kind=" + k + ";zoomed=" + zoom.name + ";count=" + zoom.count + ";bytes=" +
      zoom.bytes + ";nodes_before=" + before + ";nodes_after=" + $("graph").children.length +
      ";rows=" + document.querySelectorAll("#table tbody tr").length +
      ";acquired_rows=" + document.querySelectorAll("#alloc tbody tr").length +
      ";acquired_first=" + (D.allocations && D.allocations.length ? D.allocations[0][6] : "");
    break;
  }
  if (!document.body.dataset.selftest) document.body.dataset.selftest = "not-found";
}
</script></body></html>
)HTML";
  return std::string(head) + html_data(v) + tail;
}

}  // namespace resmon::view
