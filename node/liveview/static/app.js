// treecast live view: reads the agent's /events stream and draws it. Plain DOM and SVG;
// every string from the stream goes through textContent or setAttribute, never HTML.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const SVGNS = "http://www.w3.org/2000/svg";
const MAX_LOG = 80;

const state = {
  agent: "",
  members: new Map(), // name -> member event
  pushes: new Map(),  // transfer -> push
  order: [],          // transfers, oldest first
  current: null,      // the transfer drawn
};

function newPush(start) {
  return { start, held: {}, results: {}, reattach: [], done: null };
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function human(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function addPush(start) {
  if (state.pushes.has(start.transfer)) return state.pushes.get(start.transfer);
  const p = newPush(start);
  state.pushes.set(start.transfer, p);
  state.order.push(start.transfer);
  while (state.order.length > 20) state.pushes.delete(state.order.shift());
  state.current = start.transfer;
  return p;
}

function apply(ev) {
  switch (ev.type) {
    case "hello": {
      state.agent = ev.agent;
      state.members.clear();
      for (const m of ev.members || []) state.members.set(m.name, m);
      for (const hp of ev.pushes || []) {
        const p = addPush(hp.start);
        for (const [k, v] of Object.entries(hp.held || {})) p.held[k] = Math.max(p.held[k] || 0, v);
        for (const r of hp.results || []) p.results[r.receiver] = r;
        if (p.reattach.length === 0) p.reattach = hp.reattach || [];
        if (hp.done) p.done = hp.done;
      }
      break;
    }
    case "gap":
      logLine({ type: "gap", text: ev.missed + " events missed" });
      break;
    case "member_join":
    case "member_update":
    case "member_gone":
      state.members.set(ev.name, ev);
      break;
    case "push_start":
      addPush(ev);
      break;
    case "progress": {
      const p = state.pushes.get(ev.transfer);
      if (p) p.held[ev.receiver] = Math.max(p.held[ev.receiver] || 0, ev.held);
      break;
    }
    case "result": {
      const p = state.pushes.get(ev.transfer);
      if (p) {
        p.results[ev.receiver] = ev;
        if (ev.ok) p.held[ev.receiver] = p.start.chunks;
      }
      break;
    }
    case "reattach": {
      const p = state.pushes.get(ev.transfer);
      if (p && !p.reattach.some(r => r.stripe === ev.stripe && r.child === ev.child && r.parent === ev.parent)) p.reattach.push(ev);
      break;
    }
    case "push_done": {
      const p = state.pushes.get(ev.transfer);
      if (p) {
        p.done = ev;
        for (const r of ev.receivers) {
          if (!p.results[r.receiver]) p.results[r.receiver] = r;
        }
      }
      break;
    }
  }
  if (ev.type !== "hello" && ev.type !== "gap") logLine(ev);
  schedule();
}

function logLine(ev) {
  const log = document.getElementById("log");
  let text = ev.text;
  if (!text) {
    const f = Object.assign({}, ev);
    for (const k of ["id", "type", "time", "trees", "nodes", "topology", "summary", "receivers"]) delete f[k];
    text = Object.entries(f).map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" ");
  }
  const li = el("li", { "class": "ev-" + ev.type }, (ev.time ? ev.time.slice(11, 23) + " " : "") + ev.type + " " + text);
  log.prepend(li);
  while (log.children.length > MAX_LOG) log.lastChild.remove();
}

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

// nodeState is a receiver's state in push p: its verdict, or how far it is.
function nodeState(p, name) {
  const r = p.results[name];
  if (r) return r.ok ? "verified" : "failed";
  return (p.held[name] || 0) > 0 ? "receiving" : "waiting";
}

function gone(name) {
  const m = state.members.get(name);
  return !!m && m.state !== "alive";
}

function render() {
  document.getElementById("agent").textContent = state.agent;
  const alive = [...state.members.values()].filter(m => m.state === "alive").length;
  document.getElementById("members").textContent = alive + " of " + state.members.size + " members alive";
  const p = state.current && state.pushes.get(state.current);
  renderPushes();
  if (!p) return;
  const s = p.start;
  document.getElementById("push-title").textContent = "Push " + s.transfer + (p.done ? " (done)" : " (running)");
  const verified = Object.values(p.results).filter(r => r.ok).length;
  const failed = Object.values(p.results).filter(r => !r.ok).length;
  document.getElementById("push-meta").textContent =
    `${human(s.size)} in ${s.chunks} chunks of ${human(s.chunk_size)} · ${s.strategy}${s.auto ? " (auto)" : ""} · ` +
    `${s.stripes} stripe(s)${s.parity ? " + " + s.parity + " parity" : ""} · depth ${s.depth} · ` +
    `${s.receivers.length} receivers: ${verified} verified, ${failed} failed` + (p.done ? ` · ${(p.done.elapsed_ms / 1000).toFixed(2)} s` : "");
  renderLegend(s);
  renderTrees(p);
  renderRacks(p);
  renderCopies(s);
}

function renderLegend(s) {
  const lg = document.getElementById("legend");
  lg.replaceChildren();
  for (const t of s.trees) {
    const sp = el("span");
    const i = el("i");
    i.style.background = COLORS[t.stripe % COLORS.length];
    sp.append(i, document.createTextNode((t.parity ? "parity tree " : "stripe ") + t.stripe));
    lg.append(sp);
  }
}

// layout places a tree: leaves on consecutive columns, parents over their children.
function layout(root, kids) {
  const pos = new Map();
  let col = 0, depth = 0;
  const walk = (v, d) => {
    depth = Math.max(depth, d);
    const cs = kids.get(v) || [];
    if (cs.length === 0) { pos.set(v, { x: col++, y: d }); return; }
    for (const c of cs) walk(c, d + 1);
    const xs = cs.map(c => pos.get(c).x);
    pos.set(v, { x: (Math.min(...xs) + Math.max(...xs)) / 2, y: d });
  };
  walk(root, 0);
  return { pos, cols: Math.max(col, 1), rows: depth + 1 };
}

function renderTrees(p) {
  const box = document.getElementById("trees");
  box.replaceChildren();
  const s = p.start;
  const W = 64, H = 58, BW = 52, BH = 20;
  for (const t of s.trees) {
    const color = COLORS[t.stripe % COLORS.length];
    const kids = new Map();
    for (const [a, b] of t.arcs) {
      if (!kids.has(a)) kids.set(a, []);
      kids.get(a).push(b);
    }
    const { pos, cols, rows } = layout(s.source, kids);
    const width = cols * W + 10, height = rows * H + 10;
    const div = el("div", { "class": "tree", "data-stripe": t.stripe });
    div.append(el("h3", {}, (t.parity ? "parity tree " : "stripe ") + t.stripe));
    const g = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
    const at = v => { const q = pos.get(v); return { x: 5 + q.x * W + W / 2, y: 5 + q.y * H + BH / 2 + 4 }; };
    const moved = new Set(p.reattach.filter(r => r.stripe === t.stripe).map(r => r.child));
    for (const [a, b] of t.arcs) {
      const u = at(a), v = at(b);
      g.append(svg("line", { "class": "arc" + (moved.has(b) ? " orphaned" : ""), stroke: color, x1: u.x, y1: u.y + BH / 2, x2: v.x, y2: v.y - BH / 2 }));
    }
    for (const r of p.reattach) {
      if (r.stripe !== t.stripe || !pos.has(r.parent) || !pos.has(r.child)) continue;
      const u = at(r.parent), v = at(r.child);
      const path = `M${u.x},${u.y + BH / 2} C${u.x - 30},${(u.y + v.y) / 2} ${v.x - 30},${(u.y + v.y) / 2} ${v.x},${v.y - BH / 2}`;
      const arc = svg("path", { "class": "arc reattached", stroke: color, d: path });
      arc.append(svg("title", {}, `${r.child} re-attached under ${r.parent} after ${r.failed} failed`));
      g.append(arc);
    }
    for (const [v] of pos) {
      const c = at(v);
      const st = v === s.source ? "source" : nodeState(p, v);
      const classes = [st];
      if (gone(v)) classes.push("gone");
      if (moved.has(v)) classes.push("reattached");
      const n = svg("g", { "class": classes.join(" "), "data-name": v, "data-state": st });
      n.append(svg("rect", { "class": "box", x: c.x - BW / 2, y: c.y - BH / 2, width: BW, height: BH, rx: 3 }));
      const frac = v === s.source ? 1 : Math.min(1, (p.held[v] || 0) / Math.max(1, s.chunks));
      n.append(svg("rect", { "class": "fill", x: c.x - BW / 2 + 1, y: c.y - BH / 2 + 1, width: Math.max(0, (BW - 2) * frac), height: BH - 2, rx: 2 }));
      n.append(svg("text", { x: c.x, y: c.y + 4, "text-anchor": "middle" }, v));
      if (st === "failed" || gone(v)) n.append(svg("text", { "class": "mark", x: c.x + BW / 2 - 2, y: c.y - BH / 2 + 2 }, "✗"));
      n.append(svg("title", {}, `${v}: ${st}, ${p.held[v] || 0}/${s.chunks} chunks` + (p.results[v] && p.results[v].err ? " — " + p.results[v].err : "")));
      g.append(n);
    }
    div.append(g);
    box.append(div);
  }
}

function renderRacks(p) {
  const s = p.start;
  const racks = new Map();
  for (const n of s.nodes) {
    if (n.name === s.source) continue;
    const l = n.labels || {};
    const key = [l.dc, l.pod, l.rack].filter(Boolean).join(" / ") || "(no labels)";
    if (!racks.has(key)) racks.set(key, []);
    racks.get(key).push(n.name);
  }
  const reattached = new Set(p.reattach.map(r => r.child));
  const box = document.getElementById("racks");
  box.replaceChildren();
  for (const [key, names] of [...racks.entries()].sort()) {
    const div = el("div", { "class": "rack" });
    div.append(el("h3", {}, key));
    for (const name of names.sort()) {
      const st = nodeState(p, name);
      const row = el("div", { "class": "node", "data-name": name, "data-state": st, "data-gone": String(gone(name)), "data-reattached": String(reattached.has(name)) });
      const bar = el("div", { "class": "bar" });
      const fill = el("span");
      fill.style.width = (100 * Math.min(1, (p.held[name] || 0) / Math.max(1, s.chunks))).toFixed(1) + "%";
      bar.append(fill);
      let label = st;
      if (gone(name)) label += ", gone";
      if (reattached.has(name)) label += ", re-attached";
      row.append(el("span", { "class": "name" }, name), bar, el("span", { "class": "state" }, label));
      if (p.results[name] && p.results[name].err) row.title = p.results[name].err;
      div.append(row);
    }
    box.append(div);
  }
}

function renderCopies(s) {
  const t = s.topology;
  const box = document.getElementById("copies");
  box.replaceChildren();
  box.append(el("div", { "class": "muted" },
    `${t.hosts} hosts, ${t.switches} switches · max ${t.max.toFixed(2)} (switch-to-switch ${t.max_switch.toFixed(2)}, host ${t.max_host.toFixed(2)}) · total ${t.total.toFixed(2)}, lower bound ${t.lower_bound}`));
  const tb = el("table");
  const head = el("tr");
  head.append(el("th", {}, "arc"), el("th", {}, "copies"));
  tb.append(head);
  for (const a of [...t.arcs].sort((x, y) => y.copies - x.copies || (x.from + x.to).localeCompare(y.from + y.to))) {
    const tr = el("tr", { "class": a.copies > 1.001 ? "hot" : "" });
    tr.append(el("td", {}, a.from + " → " + a.to), el("td", { "class": "num" }, a.copies.toFixed(2)));
    tb.append(tr);
  }
  box.append(tb);
}

function renderPushes() {
  const box = document.getElementById("pushes");
  box.replaceChildren();
  for (const id of [...state.order].reverse()) {
    const p = state.pushes.get(id);
    const d = el("details", { "class": "push", "data-transfer": id });
    const sum = el("summary");
    sum.append(document.createTextNode(`${id} · ${human(p.start.size)} · ${p.start.strategy} · `));
    if (p.done) {
      sum.append(el("span", { "class": p.done.failed ? "bad" : "ok" }, `${p.done.verified} verified, ${p.done.failed} failed in ${(p.done.elapsed_ms / 1000).toFixed(2)} s`));
    } else {
      sum.append(el("span", {}, "running"));
    }
    sum.addEventListener("click", () => { state.current = id; schedule(); });
    d.append(sum);
    if (p.done) {
      const tb = el("table");
      const head = el("tr");
      for (const h of ["receiver", "result", "seconds", "via", "received", "decoded"]) head.append(el("th", {}, h));
      tb.append(head);
      for (const r of p.done.receivers) {
        const tr = el("tr");
        tr.append(el("td", {}, r.receiver), el("td", { "class": r.ok ? "ok" : "bad" }, r.ok ? "verified" : (r.err || "failed")),
          el("td", { "class": "num" }, (r.elapsed_ms / 1000).toFixed(2)), el("td", {}, r.via || ""),
          el("td", { "class": "num" }, human(r.bytes_in || 0)), el("td", { "class": "num" }, String(r.decoded || 0)));
        tb.append(tr);
      }
      d.append(tb);
    }
    box.append(d);
  }
}

function connect() {
  const status = document.getElementById("status");
  const es = new EventSource("events");
  es.onopen = () => { status.textContent = "live"; status.className = "status live"; };
  es.onerror = () => { status.textContent = "reconnecting"; status.className = "status"; };
  es.onmessage = m => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    apply(ev);
  };
}

connect();
