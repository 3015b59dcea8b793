// The YouCode cache dashboard. Signs in with POST /api/auth/login, keeps the token in
// sessionStorage and sends it as "Authorization: Bearer" on every fetch. Everything the
// server sends is written with textContent, never as HTML.
"use strict";

const TOKEN = "youcode.dashboard.token";
const REFRESH_MS = 1000;
const $ = (id) => document.getElementById(id);

let refreshTimer = null;
let stream = null;

function token() { return sessionStorage.getItem(TOKEN); }

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { raw: text }; }
  return { status: response.status, data };
}

function errorText(reply) {
  const error = reply.data && reply.data.error;
  if (error) return `${reply.status} ${error.code}: ${error.message}`;
  return `${reply.status}`;
}

function show(id, text, kind) {
  const element = $(id);
  element.textContent = text;
  element.hidden = !text;
  element.className = element.className.replace(/\b(error|ok)\b/g, "").trim();
  if (kind) element.classList.add(kind);
}

function signedOut(message) {
  sessionStorage.removeItem(TOKEN);
  clearInterval(refreshTimer);
  refreshTimer = null;
  if (stream) stream.abort();
  stream = null;
  $("board").hidden = true;
  $("alerts").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  setLive(false);
  show("message", message || "", message ? "error" : null);
}

function signedIn() {
  $("signin").hidden = true;
  $("signout").hidden = false;
  show("message", "");
  refresh();
  refreshTimer = setInterval(refresh, REFRESH_MS);
  listen();
}

async function signIn(event) {
  event.preventDefault();
  $("signin-button").disabled = true;
  try {
    const reply = await api("POST", "/api/auth/login", {
      email: $("email").value, password: $("password").value,
    });
    if (reply.status !== 200) { show("message", "Sign-in failed: " + errorText(reply), "error"); return; }
    sessionStorage.setItem(TOKEN, reply.data.token);
    $("password").value = "";
    signedIn();
  } catch (error) {
    show("message", "Sign-in failed: " + error, "error");
  } finally {
    $("signin-button").disabled = false;
  }
}

async function signOut() {
  await api("POST", "/api/auth/logout").catch(() => {});
  signedOut();
}

/// 401 ends the session; 403 means the account is not an admin. True when the reply is usable.
function authorized(reply) {
  if (reply.status === 401) { signedOut("Signed out: " + errorText(reply)); return false; }
  if (reply.status === 403) { signedOut("This account cannot see the dashboard: " + errorText(reply)); return false; }
  return true;
}

async function refresh() {
  let reply;
  try { reply = await api("GET", "/api/admin/dashboard/summary"); } catch (error) {
    show("message", "The server does not answer: " + error, "error");
    return;
  }
  if (!authorized(reply)) return;
  if (reply.status !== 200) { show("message", "Cannot read the figures: " + errorText(reply), "error"); return; }
  if ($("message").classList.contains("error") && $("message").textContent.startsWith("The server")) show("message", "");
  render(reply.data);
}

const number = (n) => n === null || n === undefined ? "–" : Number(n).toLocaleString("en");
const percent = (r) => (r * 100).toFixed(1) + " %";

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function figure(id, text, kind) {
  const element = $(id);
  element.textContent = text;
  element.className = "figure" + (kind ? " " + kind : "");
}

function render(s) {
  $("board").hidden = false;
  $("backend").textContent = "store: " + s.backend;
  const l = s.lookups;
  const total = l.hits + l.misses + l.stale + l.bypasses;
  figure("hit-ratio", total ? percent(l.hitRatio) : "–");
  $("lookups-detail").textContent = "since start";
  figure("lookups", number(total));
  $("outcomes").textContent = `${number(l.hits)} hit · ${number(l.misses)} miss · ${number(l.stale)} stale · ${number(l.bypasses)} bypass`;
  figure("keys", number(s.store.keys));
  figure("memory", bytes(s.store.memoryBytes));
  figure("store-health", s.store.health, s.store.health === "ok" ? "ok" : s.store.health === "off" ? "warn" : "bad");
  $("store-errors").textContent = `${number(s.storeErrors)} store errors`;
  figure("breaker", s.breakerOpen ? "open" : "closed", s.breakerOpen ? "bad" : "ok");
  figure("pending", s.pendingInvalidations ? "yes" : "none", s.pendingInvalidations ? "bad" : "ok");
  $("invalidations").textContent = `${number(s.invalidations)} tags invalidated`;
  figure("db-queries", number(s.dbQueries));
  renderAlerts(s.alerts);
  renderChart(s.chart);
  renderRoutes(s.routes);
  if (!$("events").children.length) s.recentInvalidations.forEach(addEvent);
}

function renderAlerts(alerts) {
  const banner = $("alerts");
  banner.replaceChildren();
  banner.hidden = alerts.length === 0;
  if (!alerts.length) return;
  const title = document.createElement("strong");
  title.textContent = alerts.length === 1 ? "1 alert" : `${alerts.length} alerts`;
  const list = document.createElement("ul");
  for (const alert of alerts) {
    const item = document.createElement("li");
    item.textContent = `${alert.kind} (since ${new Date(alert.since).toLocaleTimeString()}): ${alert.message}`;
    list.append(item);
  }
  banner.append(title, list);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

/// The chart's span: the history the server has, in whole minutes, from 1 to 5.
function chartSpan(points) {
  const oldest = points.length ? points[0].secondsAgo : 0;
  return Math.min(300, Math.max(60, Math.ceil(oldest / 60) * 60));
}

function renderChart(points) {
  const chart = $("chart");
  const W = Math.max(chart.clientWidth, 300);
  const H = 200;
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const [left, right, top, bottom] = [40, 12, 8, 22];
  const span = chartSpan(points);
  const x = (ago) => left + (W - left - right) * (1 - Math.min(ago, span) / span);
  const y = (ratio) => top + (H - top - bottom) * (1 - ratio);
  const parts = [];
  for (const ratio of [0, 0.5, 1]) {
    parts.push(svg("line", { class: "grid", x1: left, x2: W - right, y1: y(ratio), y2: y(ratio) }));
    parts.push(svg("text", { class: "axis", x: 2, y: y(ratio) + 4 }, ratio * 100 + " %"));
  }
  for (let i = 0; i <= 6; i++) {
    const ago = span - (span / 6) * i;
    const label = ago === 0 ? "now" : ago % 60 === 0 ? `-${ago / 60} min` : `-${ago} s`;
    const anchor = i === 0 ? "start" : i === 6 ? "end" : "middle";
    parts.push(svg("text", { class: "axis", x: x(ago), y: H - 4, "text-anchor": anchor }, label));
  }
  // One line per run of seconds with lookups, over a shaded area.
  let line = "";
  let area = "";
  let run = [];
  const flush = () => {
    if (run.length === 1) run.push({ ...run[0], secondsAgo: Math.max(run[0].secondsAgo - 0.5, 0) });
    if (run.length) {
      const path = run.map((p, i) => (i ? "L" : "M") + x(p.secondsAgo).toFixed(1) + "," + y(p.hitRatio).toFixed(1)).join("");
      line += path;
      area += path + `L${x(run[run.length - 1].secondsAgo).toFixed(1)},${y(0)}L${x(run[0].secondsAgo).toFixed(1)},${y(0)}Z`;
    }
    run = [];
  };
  for (const point of points) {
    if (point.hitRatio === null) flush(); else run.push(point);
  }
  flush();
  if (area) parts.push(svg("path", { class: "area", d: area }));
  if (line) parts.push(svg("path", { class: "line", d: line }));
  chart.replaceChildren(...parts);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function renderRoutes(routes) {
  const rows = routes.map((r) => {
    const tr = document.createElement("tr");
    tr.append(cell(`${r.method} ${r.route}`), cell(number(r.requests)), cell(number(r.hits)),
      cell(number(r.misses)), cell(number(r.stale)), cell(number(r.bypasses)),
      cell(number(r.serverErrors)), cell(r.meanMs.toFixed(2)), cell(r.maxMs.toFixed(1)));
    return tr;
  });
  $("routes").tBodies[0].replaceChildren(...rows);
}

const SOURCES = { write: "write", relay: "relay", adminTags: "admin: tags", adminClear: "admin: clear" };

function addEvent(event) {
  const item = document.createElement("li");
  const time = document.createElement("span");
  time.textContent = new Date(event.at).toLocaleTimeString() + " ";
  const source = document.createElement("span");
  source.className = "source";
  source.textContent = SOURCES[event.source] || event.source;
  item.append(time, source);
  const what = event.source === "adminClear"
    ? [`${event.count} keys deleted`]
    : event.tags;
  for (const tag of what) {
    const code = document.createElement("code");
    code.textContent = tag;
    item.append(" ", code);
  }
  if (!event.applied) item.append(" (pending)");
  const list = $("events");
  list.prepend(item);
  while (list.children.length > 50) list.lastChild.remove();
}

function setLive(on) {
  $("live").textContent = on ? "live" : "offline";
  $("live").className = "pill " + (on ? "on" : "muted");
}

/// Reads the server-sent events with fetch, so that the token goes in a header, never in a
/// URL; reconnects after a pause when the stream ends.
async function listen() {
  if (stream || !token()) return;
  const controller = new AbortController();
  stream = controller;
  try {
    const response = await fetch("/api/admin/dashboard/events", {
      headers: { Authorization: "Bearer " + token(), Accept: "text/event-stream" },
      signal: controller.signal,
    });
    if (response.status !== 200) {
      stream = null;
      const text = await response.text();
      let data = null;
      try { data = JSON.parse(text); } catch (_) { /* not JSON */ }
      authorized({ status: response.status, data });
      return;
    }
    setLive(true);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        dispatch(block);
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
  }
  setLive(false);
  if (stream === controller) {
    stream = null;
    if (token()) setTimeout(listen, 2000);
  }
}

function dispatch(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (name === "invalidation") addEvent(JSON.parse(data.join("\n")));
  else if (name === "lagged") show("action-result", `The live list missed ${data.join("")} invalidations.`, "error");
}

async function action(button, run) {
  button.disabled = true;
  try {
    const text = await run();
    if (text !== null) show("action-result", text, "ok");
  } catch (error) {
    show("action-result", String(error), "error");
  } finally {
    button.disabled = false;
    refresh();
  }
}

/// The answer of an action: its JSON on success, the error's message otherwise (a 404 for a
/// route this server does not have yet included).
function outcome(label, reply) {
  if (!authorized(reply)) return null;
  if (reply.status >= 200 && reply.status < 300) return `${label}: ${JSON.stringify(reply.data)}`;
  throw `${label} failed: ${errorText(reply)}`;
}

function setUp() {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("clear").addEventListener("click", () => action($("clear"), async () =>
    outcome("Cleared", await api("POST", "/api/admin/cache/clear"))));
  $("invalidate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    action($("invalidate"), async () =>
      outcome("Invalidated", await api("POST", "/api/admin/cache/invalidate", { tags: [$("tag").value] })));
  });
  $("warm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    action($("warm"), async () =>
      outcome("Warmed", await api("POST", "/api/admin/cache/warm", { top: Number($("warm-top").value) })));
  });
  if (token()) signedIn(); else signedOut();
}

setUp();
