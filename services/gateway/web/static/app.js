// The TradSys page: one WebSocket (/ws) in the protocol of docs/websocket.md.
// Plain JavaScript; charts are SVG built here. No libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const state = { ws: null, nextId: 1, symbol: "", trades: [], candles: [], orders: new Map(), account: 0 };

$("key").value = params.get("api_key") || localStorage.getItem("tradsys-key") || "";
$("symbol").value = params.get("symbol") || localStorage.getItem("tradsys-symbol") || "BTC-USD";

function log(text, cls) {
  const d = document.createElement("div");
  d.textContent = new Date().toLocaleTimeString() + " " + text;
  if (cls) d.className = cls;
  $("log").prepend(d);
  while ($("log").childNodes.length > 50) $("log").lastChild.remove();
}

function send(msg) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) { log("not connected", "err"); return; }
  msg.id = String(state.nextId++);
  state.ws.send(JSON.stringify(msg));
  return msg.id;
}

function setStatus(text, up) {
  $("status").textContent = text;
  $("status").className = "status " + (up ? "up" : "down");
}

function connect() {
  const key = $("key").value.trim();
  const symbol = $("symbol").value.trim();
  localStorage.setItem("tradsys-key", key);
  localStorage.setItem("tradsys-symbol", symbol);
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  state.symbol = symbol; state.trades = []; state.candles = []; state.orders.clear();
  $("sym-title").textContent = symbol;
  renderTrades(); renderCandles(); renderOrders(); renderBook({ bids: [], asks: [] });
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?api_key=" + encodeURIComponent(key);
  const ws = new WebSocket(url);
  state.ws = ws;
  setStatus("connecting", false);
  ws.onopen = () => {
    setStatus("connected", true);
    send({ type: "subscribe", channel: "mesh" });
    send({ type: "subscribe", channel: "trades", symbol });
    send({ type: "subscribe", channel: "book", symbol, depth: 10 });
    send({ type: "subscribe", channel: "candles", symbol, interval: "1m" });
    send({ type: "subscribe", channel: "orders" });
  };
  ws.onclose = (ev) => {
    setStatus("disconnected" + (ev.code ? " (" + ev.code + (ev.reason ? ": " + ev.reason : "") + ")" : ""), false);
    if (ev.code !== 1000) setTimeout(() => { if (state.ws === ws) connect(); }, 2000);
  };
  ws.onmessage = (ev) => handle(JSON.parse(ev.data));
}

function handle(f) {
  switch (f.type) {
  case "welcome": state.account = f.data.account; log("connected as account " + f.data.account); break;
  case "mesh": renderMesh(f.data); break;
  case "trades": state.trades = (f.data || []).slice().reverse(); renderTrades(); break;
  case "trade": state.trades.unshift(f.data); state.trades.length = Math.min(state.trades.length, 50); renderTrades(); break;
  case "book": renderBook(f.data); break;
  case "candles": state.candles = f.data || []; renderCandles(); break;
  case "candle": mergeCandle(f.data); renderCandles(); break;
  case "order": mergeOrder(f.data); break;
  case "ack":
    if (f.data && f.data.order_id) {
      mergeOrder(f.data);
      log("order " + f.data.order_id + " " + f.data.status + (f.data.reject_reasons ? ": " + f.data.reject_reasons.join("; ") : ""),
        f.data.status === "rejected" ? "err" : "");
    }
    break;
  case "error": log("error " + f.code + (f.field ? " (" + f.field + ")" : "") + ": " + f.message, "err"); break;
  }
}

// ---- mesh ----
const palette = ["#4e9af1", "#5fd38d", "#e6c35c", "#c678dd", "#ff8c5a", "#56c8d8", "#ff6b9a", "#a3be8c"];
function mib(b) { return (b / 1048576).toFixed(b < 10485760 ? 1 : 0) + " MiB"; }

function renderMesh(m) {
  $("mesh-leader").textContent = "leader " + m.leader + ", " + m.sessions + " sessions, " + m.waiters + " waiting";
  $("budget-label").textContent = "memory: " + mib(m.used_bytes) + " of " + mib(m.budget_bytes) + " leased";
  const svg = $("budget");
  svg.replaceChildren();
  const W = svg.clientWidth || 800;
  let x = 0;
  const legend = $("budget-legend");
  legend.replaceChildren();
  (m.leases || []).forEach((l, i) => {
    const w = Math.max(1, W * l.bytes / m.budget_bytes);
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", x); r.setAttribute("y", 2); r.setAttribute("width", w); r.setAttribute("height", 30);
    r.setAttribute("fill", palette[i % palette.length]); r.setAttribute("class", "lease");
    const t = document.createElementNS(SVG, "title");
    t.textContent = l.component + " " + mib(l.bytes) + " priority " + l.priority + (l.preemptible ? " (preemptible)" : "") + " held by " + l.owner;
    r.appendChild(t);
    svg.appendChild(r);
    const s = document.createElement("span");
    s.innerHTML = '<i style="background:' + palette[i % palette.length] + '"></i>';
    s.append(l.component + " " + mib(l.bytes) + " p" + l.priority);
    legend.appendChild(s);
    x += w;
  });
  const free = document.createElementNS(SVG, "rect");
  free.setAttribute("x", x); free.setAttribute("y", 2); free.setAttribute("width", Math.max(0, W - x)); free.setAttribute("height", 30);
  free.setAttribute("fill", "#222b35");
  svg.appendChild(free);

  const tb = $("components").tBodies[0];
  tb.replaceChildren(...(m.components || []).map((c) => row([c.name, c.state, mib(c.memory_bytes), c.priority], (tr) => {
    tr.children[1].className = "state-" + c.state;
    if (c.cause) tr.title = c.cause;
  })));
  const lb = $("locks").tBodies[0];
  lb.replaceChildren(...(m.locks || []).map((l) => row([l.name, l.owner, l.fencing_token, (l.waiters || []).length])));
  if (!(m.locks || []).length) lb.replaceChildren(row(["no locks held", "", "", ""]));
  $("mesh-event").textContent = m.last_event ? "last event: " + m.last_event : "";
}

function row(cells, fix) {
  const tr = document.createElement("tr");
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
  if (fix) fix(tr);
  return tr;
}

// ---- market ----
function renderTrades() {
  $("trades").tBodies[0].replaceChildren(...state.trades.map((t) => row(
    [t.sequence, t.price, t.quantity, t.taker_side, t.time ? new Date(t.time).toLocaleTimeString() : ""],
    (tr) => { tr.className = "trade " + t.taker_side; })));
}

function renderBook(b) {
  const rows = [];
  const asks = (b.asks || []).slice().reverse();
  for (const a of asks) rows.push(row(["", a.price, a.quantity], (tr) => { tr.className = "ask"; }));
  for (const x of b.bids || []) rows.push(row([x.quantity, x.price, ""], (tr) => { tr.className = "bid"; }));
  $("book").tBodies[0].replaceChildren(...rows);
}

function mergeCandle(c) {
  const i = state.candles.findIndex((x) => x.open_time === c.open_time);
  if (i >= 0) state.candles[i] = c; else { state.candles.push(c); state.candles.sort((a, b) => a.open_time - b.open_time); }
  if (state.candles.length > 120) state.candles.splice(0, state.candles.length - 120);
}

function renderCandles() {
  const svg = $("candles");
  svg.replaceChildren();
  const W = svg.clientWidth || 900, H = 260, pad = 40;
  const cs = state.candles.map((c) => ({ t: c.open_time, o: +c.open, h: +c.high, l: +c.low, c: +c.close, v: +c.volume, partial: c.partial }));
  if (!cs.length) {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", 10); t.setAttribute("y", 20); t.setAttribute("fill", "#7b8794");
    t.textContent = "no candles yet for " + state.symbol;
    svg.appendChild(t);
    return;
  }
  let lo = Math.min(...cs.map((c) => c.l)), hi = Math.max(...cs.map((c) => c.h));
  if (hi === lo) { hi += 1; lo -= 1; }
  const y = (p) => 10 + (H - 30) * (hi - p) / (hi - lo);
  const step = Math.min(24, (W - pad) / Math.max(cs.length, 20));
  cs.forEach((c, i) => {
    const x = pad + i * step + step / 2;
    const up = c.c >= c.o;
    const color = up ? "#5fd38d" : "#ff6b6b";
    const wick = document.createElementNS(SVG, "line");
    wick.setAttribute("x1", x); wick.setAttribute("x2", x); wick.setAttribute("y1", y(c.h)); wick.setAttribute("y2", y(c.l));
    wick.setAttribute("stroke", color);
    svg.appendChild(wick);
    const body = document.createElementNS(SVG, "rect");
    body.setAttribute("x", x - step * 0.35); body.setAttribute("width", Math.max(1, step * 0.7));
    body.setAttribute("y", y(Math.max(c.o, c.c))); body.setAttribute("height", Math.max(1, Math.abs(y(c.o) - y(c.c))));
    body.setAttribute("fill", color); body.setAttribute("class", "candle" + (c.partial ? " partial" : ""));
    body.setAttribute("data-open-time", c.t);
    const title = document.createElementNS(SVG, "title");
    title.textContent = new Date(c.t).toLocaleString() + " O " + c.o + " H " + c.h + " L " + c.l + " C " + c.c + " V " + c.v;
    body.appendChild(title);
    svg.appendChild(body);
  });
  for (const p of [hi, (hi + lo) / 2, lo]) {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", 2); t.setAttribute("y", y(p) + 4); t.setAttribute("fill", "#7b8794"); t.setAttribute("font-size", "11");
    t.textContent = +p.toFixed(4);
    svg.appendChild(t);
  }
}

// Updates may arrive before or after the call's answer: keep the newest.
function mergeOrder(o) {
  const had = state.orders.get(o.order_id);
  if (!had || !had.sequence || !o.sequence || o.sequence >= had.sequence) state.orders.set(o.order_id, o);
  renderOrders();
}

function renderOrders() {
  const list = [...state.orders.values()].sort((a, b) => Number(b.order_id) - Number(a.order_id)).slice(0, 20);
  $("orders").tBodies[0].replaceChildren(...list.map((o) => row([o.order_id, o.side, o.price || "market", o.quantity, o.filled, o.status, ""], (tr) => {
    tr.className = "order " + o.side;
    if (o.status === "new" || o.status === "accepted" || o.status === "partially_filled") {
      const b = document.createElement("button");
      b.textContent = "cancel";
      b.onclick = () => send({ type: "cancel", order_id: o.order_id });
      tr.lastChild.appendChild(b);
    }
  })));
}

$("order").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const type = $("otype").value;
  const order = { symbol: state.symbol, side: $("side").value, type, quantity: $("qty").value.trim() };
  if (type !== "market") order.price = $("price").value.trim();
  send({ type: "submit", order });
});
$("connect").onclick = connect;
if ($("key").value) connect();
