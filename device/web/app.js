// posagent status page: reads /status/state, then follows GET /v1/events with a
// one-time ticket. No external assets, no inline script (the page's CSP forbids it).
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
let es = null;
let lastEventID = "";
let refreshTimer = null;
let scanWanted = false;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function fmtTime(s) {
  if (!s) return "never";
  const d = new Date(s);
  return d.toLocaleString();
}

function fmtAge(sec) {
  if (sec === undefined || sec === null) return "–";
  sec = Math.round(sec);
  if (sec < 120) return sec + " s";
  if (sec < 7200) return Math.round(sec / 60) + " min";
  return Math.round(sec / 3600) + " h";
}

function dl(id, rows) {
  const d = $(id);
  d.replaceChildren();
  for (const [k, v] of rows) {
    d.append(el("dt", {}, k), el("dd", {}, v === undefined || v === null || v === "" ? "–" : String(v)));
  }
}

function renderDevices() {
  const ul = $("devices");
  ul.replaceChildren();
  for (const d of state.devices || []) {
    let cls = "off", note = "not configured";
    if (d.configured) {
      cls = d.connected ? "up" : "down";
      note = d.connected ? (d.status || "connected") : ("unplugged" + (d.error ? ": " + d.error : ""));
    }
    ul.append(el("li", { class: cls, "data-device": d.device, "data-connected": String(!!d.connected) },
      el("span", {}, d.device), el("small", {}, note)));
  }
}

function render() {
  $("terminal").textContent = state.terminal || "";
  renderDevices();
  const j = state.journal || {};
  const by = j.by_state ? Object.entries(j.by_state).map(([k, v]) => k + " " + v).join(", ") : "";
  const page = state.page || {};
  dl("journal", [["records", j.records], ["by state", by || "empty"], ["not at acquirer", j.unacked],
    ["offline outstanding", j.outstanding], ["oldest stored sale", page.oldest_outstanding ? fmtTime(page.oldest_outstanding) : "none"],
    ["hold", j.hold || "no"], ["error", j.error]]);
  const s = state.sync || {}, a = state.acquirer || {};
  dl("sync", [["acquirer", a.online ? "online" : "offline"], ["last success", fmtTime(s.last_ok)],
    ["lag", fmtAge(page.sync_lag_seconds)], ["left to send", s.left], ["last error", s.error || "none"],
    ["clock skew", a.clock_skew_seconds !== undefined ? a.clock_skew_seconds.toFixed(2) + " s" : "–"]]);
  dl("versions", [["agent", state.version], ["terminal", state.terminal], ["uptime", fmtAge(state.uptime_seconds)],
    ["checkout", (state.checkout || {}).phase]]);
  const ol = $("errors");
  ol.replaceChildren();
  const errs = page.errors || [];
  if (errs.length === 0) ol.append(el("li", { class: "empty" }, "none"));
  for (const e of errs) ol.append(el("li", {}, e.line));
  const live = $("live");
  live.className = "badge " + (a.online ? "on" : "off");
  if (es === null) live.textContent = a.online ? "online" : "offline";
}

async function load() {
  const who = await (await fetch("/status/session", { credentials: "same-origin" })).json();
  if (!who.enabled) $("login-error").textContent = "The status page is off: set api.technician_token in the agent's config.";
  const r = who.signed_in ? await fetch("/status/state", { credentials: "same-origin" }) : { status: 401 };
  if (r.status === 401) {
    $("app").hidden = true;
    $("login").hidden = false;
    $("live").textContent = "signed out";
    return false;
  }
  if (!r.ok) throw new Error("status: " + r.status);
  state = await r.json();
  $("login").hidden = true;
  $("app").hidden = false;
  render();
  return true;
}

function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; load().catch(() => {}); }, 300);
}

async function connect() {
  if (es) { es.close(); es = null; }
  const r = await fetch("/v1/events/ticket", { method: "POST", credentials: "same-origin" });
  if (!r.ok) { setTimeout(() => connect().catch(retry), 3000); return; }
  const t = await r.json();
  let u = "/v1/events?ticket=" + encodeURIComponent(t.ticket);
  if (lastEventID) u += "&last_event_id=" + encodeURIComponent(lastEventID);
  es = new EventSource(u);
  const live = $("live");
  es.onopen = () => { live.textContent = "live"; };
  es.onerror = () => {
    live.textContent = "reconnecting…";
    if (es) es.close();
    es = null;
    retry();
  };
  es.addEventListener("device", (m) => {
    lastEventID = m.lastEventId;
    const d = JSON.parse(m.data).data;
    if (state && d && d.device) {
      const i = (state.devices || []).findIndex((x) => x.device === d.device);
      if (i >= 0) state.devices[i] = d; else (state.devices = state.devices || []).push(d);
      renderDevices();
    }
  });
  es.addEventListener("scan", (m) => {
    lastEventID = m.lastEventId;
    if (scanWanted) {
      scanWanted = false;
      result(true, "scanned: " + JSON.stringify(JSON.parse(m.data).data));
    }
  });
  for (const t of ["payment", "receipt", "sync", "acquirer"]) {
    es.addEventListener(t, (m) => { lastEventID = m.lastEventId; refreshSoon(); });
  }
}

function retry() { setTimeout(() => connect().catch(retry), 1000); }

function result(ok, text) {
  const p = $("test-result");
  p.className = "result " + (ok ? "good" : "bad");
  p.textContent = text;
}

async function runTest(btn, path, okText) {
  btn.disabled = true;
  try {
    const r = await fetch(path, { method: "POST", credentials: "same-origin" });
    const body = await r.json();
    if (r.ok) result(true, okText); else result(false, (body.error && body.error.message) || ("error " + r.status));
  } catch (e) {
    result(false, String(e));
  } finally {
    btn.disabled = false;
  }
}

async function start() {
  if (await load()) {
    await connect();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch("/status/session", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: $("token").value }) });
    if (!r.ok) {
      const b = await r.json().catch(() => ({}));
      $("login-error").textContent = (b.error && b.error.message) || ("sign-in failed: " + r.status);
      return;
    }
    $("token").value = "";
    $("login-error").textContent = "";
    start().catch((e) => console.warn(e));
  });
  $("test-print").addEventListener("click", (e) => runTest(e.currentTarget, "/v1/tests/print", "test page printed"));
  $("test-display").addEventListener("click", (e) => runTest(e.currentTarget, "/v1/tests/display", "test pattern on the display"));
  $("test-scan").addEventListener("click", () => { scanWanted = true; result(true, "waiting for a scan: scan any code…"); });
  $("logout").addEventListener("click", async () => {
    await fetch("/status/logout", { method: "POST", credentials: "same-origin" });
    if (es) { es.close(); es = null; }
    location.reload();
  });
  setInterval(() => { if (!$("app").hidden) load().catch(() => {}); }, 10000);
  start().catch((e) => console.warn(e));
});
