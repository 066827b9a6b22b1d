// The supervisor page: reads the API with the tab's token, listens to the bus for changes
// (polling every few seconds when it cannot), and offers the changes the token may make.
"use strict";

const TOKEN_KEY = "redial.token";
const POLL_MS = 5000;
const SLOW_MS = 30000;
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const LIVE = ["scheduled", "due", "leased"];

const $ = (id) => document.getElementById(id);
let me = null;
let live = false;
let lastSlow = 0;
let pending = null;
let lastSearch = null;
/** The service's clock, as the last overview read it: "today" is its day, not the browser's. */
let serverNow = new Date();

class Unauthorized extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** A call to the API: its JSON, or an Error with the service's own message. */
async function api(path, method = "GET", body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let reply = null;
  try {
    reply = await response.json();
  } catch (_) {
    reply = null;
  }
  if (response.status === 401) {
    askToken(reply && reply.error ? reply.error.detail : "");
    throw new Unauthorized("a token is needed");
  }
  if (!response.ok) {
    const e = reply && reply.error;
    throw new Error(e ? `${e.message} ${e.detail}` : `HTTP ${response.status}`);
  }
  return reply;
}

function askToken(why) {
  $("token-error").textContent = token() ? why : "";
  const dialog = $("token-dialog");
  if (!dialog.open) dialog.showModal();
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-input").value = "";
  $("token-dialog").close();
  start();
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

function can(action) {
  const roles = (me && me.roles) || [];
  const any = (...wanted) => wanted.some((r) => roles.includes(r));
  if (action === "cancel") return any("admin", "supervisor", "dialer");
  return any("admin", "supervisor");
}

function status(text) {
  const time = new Date().toLocaleTimeString([], { hour12: false });
  $("status").textContent = `${text} · updated ${time}`;
}

// ---- what the page shows -------------------------------------------------------------

async function refreshCounters() {
  const overview = await api(`/v1/overview?tz=${encodeURIComponent(ZONE)}`);
  serverNow = new Date(overview.at);
  for (const [name, value] of Object.entries(overview.counts)) {
    const cell = $(`count-${name}`);
    if (cell) cell.textContent = String(value);
  }
  const bars = overview.next_hour.map((slice) => ({
    label: new Date(slice.from).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }),
    value: slice.windows,
    text: String(slice.windows),
  }));
  chart($("next-hour"), bars, "Live windows opening in each five minutes (your local time).", false);
  status(live ? "Live: the bus pushes changes" : `Polling every ${POLL_MS / 1000} s`);
}

function day(offset) {
  const d = new Date(serverNow);
  d.setDate(d.getDate() + offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The rows of a report as objects keyed by its columns. */
function records(report) {
  return report.rows.map((row) => Object.fromEntries(report.columns.map((c, i) => [c, row[i]])));
}

async function refreshSlow() {
  lastSlow = Date.now();
  const tz = encodeURIComponent(ZONE);
  const sla = records(await api(`/v1/reports/sla?from=${day(-7)}&to=${day(0)}&by=day&tz=${tz}`));
  const byDay = new Map(sla.map((r) => [r.day, r]));
  const days = [];
  for (let i = -7; i <= 0; i += 1) days.push(day(i));
  const label = (d) => (d === day(0) ? "today" : d.slice(5));
  chart(
    $("sla-in-window"),
    days.map((d) => {
      const r = byDay.get(d);
      return { label: label(d), value: r ? r.in_window_pct : 0, text: r ? `${r.in_window_pct}%` : "–" };
    }),
    "First redial handed out inside the window, % of callbacks.",
    false,
    100,
  );
  chart(
    $("sla-lag"),
    days.map((d) => {
      const r = byDay.get(d);
      const lag = r && r.lag_p95_s !== null ? r.lag_p95_s : null;
      return { label: label(d), value: lag || 0, text: lag === null ? "–" : `${lag} s` };
    }),
    "Window start to first lease, 95th percentile, seconds.",
    true,
  );
  const agents = records(await api(`/v1/reports/agents?tz=${tz}`));
  const body = $("agents").tBodies[0];
  body.replaceChildren(
    ...agents.map((a) =>
      row([a.agent, a.owned, a.due_now, a.callbacks, a.made_in_window, a.missed], [1, 2, 3, 4, 5]),
    ),
  );
  if (agents.length === 0) body.append(row(["No agent has callbacks today."], []));
}

function row(cells, numeric) {
  const tr = document.createElement("tr");
  cells.forEach((value, i) => {
    const td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "–" : String(value);
    if (numeric.includes(i)) td.className = "n";
    tr.append(td);
  });
  return tr;
}

/** A bar chart in SVG, every bar labelled with its value, so it reads without colour. */
function chart(figure, bars, caption, alt, max) {
  const width = 360;
  const height = 150;
  const top = 18;
  const bottom = 22;
  const slot = width / Math.max(bars.length, 1);
  const highest = max || Math.max(1, ...bars.map((b) => b.value));
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${caption} ${bars.map((b) => `${b.label}: ${b.text}`).join(", ")}`);
  const text = (x, y, value) => {
    const t = document.createElementNS(svgNs, "text");
    t.setAttribute("x", x);
    t.setAttribute("y", y);
    t.setAttribute("text-anchor", "middle");
    t.textContent = value;
    return t;
  };
  bars.forEach((b, i) => {
    const h = ((height - top - bottom) * b.value) / highest;
    const x = i * slot + slot * 0.15;
    const rect = document.createElementNS(svgNs, "rect");
    rect.setAttribute("class", alt ? "bar alt" : "bar");
    rect.setAttribute("x", x);
    rect.setAttribute("y", height - bottom - h);
    rect.setAttribute("width", slot * 0.7);
    rect.setAttribute("height", Math.max(h, 0));
    svg.append(rect, text(x + slot * 0.35, height - bottom - h - 4, b.text));
    // Every other label when there are many, so that they do not run into each other.
    if (bars.length <= 8 || i % 2 === 0) svg.append(text(x + slot * 0.35, height - 6, b.label));
  });
  const caption_ = document.createElement("figcaption");
  caption_.textContent = caption;
  figure.replaceChildren(svg, caption_);
}

async function refresh(slow) {
  try {
    await refreshCounters();
    if (slow || Date.now() - lastSlow > SLOW_MS) await refreshSlow();
  } catch (e) {
    if (!(e instanceof Unauthorized)) $("status").textContent = `Cannot read the service: ${e.message}`;
  }
}

/** Many pushes in a burst make one refresh. */
function soon() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    refresh(false);
  }, 500);
}

// ---- search, history and changes ------------------------------------------------------

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  lastSearch = { by: $("search-by").value, value: $("search-value").value.trim() };
  search();
});

async function search() {
  if (!lastSearch) return;
  const { by, value } = lastSearch;
  const message = $("search-message");
  try {
    const page = await api(`/v1/callbacks?${by}=${encodeURIComponent(value)}&limit=200`);
    const body = $("results").tBodies[0];
    body.replaceChildren(...page.callbacks.map(resultRow));
    $("results").hidden = page.callbacks.length === 0;
    message.className = "";
    message.textContent =
      page.callbacks.length === 0
        ? `No callbacks for ${value}.`
        : `${page.callbacks.length} callback(s)${page.next ? " (first 200)" : ""}.`;
  } catch (e) {
    if (e instanceof Unauthorized) return;
    message.className = "error";
    message.textContent = e.message;
  }
}

function button(text, onClick, extra) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (extra) Object.assign(b, extra);
  b.addEventListener("click", onClick);
  return b;
}

function resultRow(cb) {
  const tr = row(
    [cb.id, cb.state, cb.UserID, cb.AccountNumber, `${cb.local_start} – ${cb.local_end.slice(11)} (${cb.timezone})`, cb.attempts],
    [0, 5],
  );
  tr.id = `callback-${cb.id}`;
  const actions = document.createElement("td");
  const box = document.createElement("div");
  box.className = "actions";
  box.append(button("History", () => history(cb.id), { id: `history-${cb.id}` }));
  const isLive = LIVE.includes(cb.state);
  if (isLive && can("reschedule")) box.append(button("Reschedule", () => reschedule(tr, cb)));
  if (isLive && can("reassign")) box.append(button("Reassign", () => reassign(tr, cb)));
  if (isLive && can("cancel")) box.append(button("Cancel", () => cancel(tr, cb), { id: `cancel-${cb.id}` }));
  actions.append(box);
  tr.append(actions);
  return tr;
}

/** A form on its own row under the callback's, replacing any other. */
function underRow(tr, build) {
  document.querySelectorAll("tr.under").forEach((r) => r.remove());
  const under = document.createElement("tr");
  under.className = "under";
  const td = document.createElement("td");
  td.colSpan = 7;
  const form = document.createElement("form");
  form.className = "inline-form";
  const error = document.createElement("p");
  error.className = "error";
  error.setAttribute("role", "alert");
  build(form, async (change) => {
    try {
      await change();
      under.remove();
      await search();
      refresh(true);
    } catch (e) {
      if (!(e instanceof Unauthorized)) error.textContent = e.message;
    }
  });
  form.append(button("Keep as is", () => under.remove()));
  td.append(form, error);
  under.append(td);
  tr.after(under);
  return form;
}

function input(label, attributes) {
  const l = document.createElement("label");
  l.textContent = label;
  const i = document.createElement("input");
  Object.assign(i, attributes);
  l.append(i);
  return [l, i];
}

function cancel(tr, cb) {
  underRow(tr, (form, submit) => {
    const [label, reason] = input("Reason (optional)", { id: `cancel-reason-${cb.id}` });
    const yes = button(`Yes, cancel callback ${cb.id}`, () =>
      submit(() => api(`/v1/callbacks/${cb.id}/cancel`, "POST", reason.value ? { reason: reason.value } : {})),
      { id: `confirm-cancel-${cb.id}`, className: "danger" },
    );
    form.append(label, yes);
  });
}

function reschedule(tr, cb) {
  underRow(tr, (form, submit) => {
    const [d, m, y] = cb.local_start.slice(0, 10).split("/");
    const [dayLabel, date] = input("Date", { type: "date", required: true, value: `${y}-${m}-${d}` });
    const [fromLabel, from] = input("From", { type: "time", required: true, value: cb.local_start.slice(11) });
    const [toLabel, to] = input("To", { type: "time", required: true, value: cb.local_end.slice(11) });
    const [reasonLabel, reason] = input("Reason (optional)", {});
    const go = button("Move", () => {
      const [yy, mm, dd] = date.value.split("-");
      const lcmDate = `${dd}/${mm}/${yy}`;
      const body = {
        StartDate: lcmDate, StartTime: from.value, EndDate: lcmDate, EndTime: to.value,
        TimeZone: cb.timezone,
      };
      if (reason.value) body.reason = reason.value;
      submit(() => api(`/v1/callbacks/${cb.id}/reschedule`, "POST", body));
    });
    form.append(dayLabel, fromLabel, toLabel, reasonLabel, go);
  });
}

function reassign(tr, cb) {
  underRow(tr, (form, submit) => {
    const [toLabel, to] = input("To agent (UserID)", { required: true });
    const [reasonLabel, reason] = input("Reason (optional)", {});
    const go = button("Reassign", () => {
      const body = { UserID: to.value.trim() };
      if (reason.value) body.reason = reason.value;
      submit(() => api(`/v1/callbacks/${cb.id}/reassign`, "POST", body));
    });
    form.append(toLabel, reasonLabel, go);
  });
}

async function history(id) {
  try {
    const h = await api(`/v1/callbacks/${id}/history`);
    $("history-title").textContent = `History of callback ${id} (${h.callback.state})`;
    const list = $("history-steps");
    list.replaceChildren(
      ...h.history.map((step) => {
        const li = document.createElement("li");
        const when = new Date(step.at).toLocaleString([], { hour12: false });
        li.textContent = `${when} · ${step.what} · ${describe(step.detail)}`;
        return li;
      }),
    );
    $("history").hidden = false;
  } catch (e) {
    if (!(e instanceof Unauthorized)) $("search-message").textContent = e.message;
  }
}

function describe(detail) {
  return Object.entries(detail || {})
    .filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}

// ---- the bus, else polling --------------------------------------------------------------

function listen() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const t = token();
  const url = `${scheme}//${location.host}/v1/bus${t ? `?token=${encodeURIComponent(t)}` : ""}`;
  let socket;
  try {
    socket = new WebSocket(url);
  } catch (_) {
    return;
  }
  socket.onopen = () =>
    socket.send(JSON.stringify({
      channel: "LCM", topic: "Bus", subtopic: "Subscribe", requestid: "ui", data: { all: true },
    }));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.requestid === "ui") {
      live = Boolean(message.message && message.message.response && message.message.response.success);
      refresh(false);
    } else if (message.id !== undefined) {
      soon();
    }
  };
  socket.onclose = () => {
    live = false;
    setTimeout(listen, SLOW_MS);
  };
}

async function start() {
  try {
    me = await api("/v1/whoami");
  } catch (e) {
    if (!(e instanceof Unauthorized)) $("status").textContent = `Cannot reach the service: ${e.message}`;
    return;
  }
  $("sign-out").hidden = !token();
  await refresh(true);
  listen();
}

setInterval(() => {
  if (me && !live) refresh(false);
}, POLL_MS);
setInterval(() => {
  if (me) refresh(true);
}, SLOW_MS);
start();
