// The Turnout check-in kiosk: one page, several screens.
//
//   pair -> idle <-> search / walk-in / camera -> result -> idle
//
// Online, every scan goes straight to the kiosk API and the screen shows the
// server's answer. When the server can't be reached, the cached roster
// verifies the badge, the scan is queued on the tablet (queue.js) and a
// provisional welcome is shown; the queue is sent when the network returns.
// See docs/kiosk-api.md for the API.

import { KioskApi } from "./api.js";
import { newClientKey, sha256Hex } from "./digest.js";
import { applyI18n, formatNumber, getLang, ordinal, plural, setLang, t } from "./i18n.js";
import { OutboundQueue } from "./queue.js";
import { fold, Roster } from "./roster.js";
import { cameraPossible, listenForScanner, startCamera } from "./scanner.js";
import { openStore } from "./store.js";

const STATIC_URL = new URL(".", import.meta.url).pathname; // /kiosk/static/
const SHELL_URL = new URL("..", import.meta.url).pathname.replace(/\/$/, ""); // /kiosk
const SW_URL = `${SHELL_URL}/sw.js`;
const JSQR_URL = `${STATIC_URL}vendor/jsQR.js`;

const RESULT_MS = 5000; // a confirmation stays this long, then back to idle
const RESULT_WITH_OFFER_MS = 9000; // ... longer when it offers check-out
const ROSTER_EVERY_MS = 60_000;
const HEARTBEAT_EVERY_MS = 30_000;
const RETRY_EVERY_MS = 10_000;
const FORM_IDLE_MS = 60_000; // an abandoned search or form is cleared
const CAMERA_MAX_MS = 30_000;
const DUPLICATE_SCAN_MS = 3000; // the same code twice this fast is one scan
const SLOW_ANSWER_MS = 350; // show "One moment" after this
const ONLINE_TIMEOUT_MS = 6000;
const DOUBTFUL_TIMEOUT_MS = 2500; // when the last request failed
const PIN_MAX_TRIES = 5;
const PIN_LOCK_MS = 30_000;

const $ = (id) => document.getElementById(id);

const state = {
  store: null,
  api: new KioskApi(),
  roster: new Roster(),
  queue: null,
  pairing: null, // {token, kiosk: {id, name}, event: {...}, staff_pin_sha256, paired_at}
  screen: "loading",
  networkDown: false,
  revoked: false,
  checkoutMode: false,
  kioskMode: false, // guards against leaving (beforeunload, back button)
  busy: false,
  work: Promise.resolve(),
  lastScan: { key: null, at: 0 },
  resultTimer: null,
  formTimer: null,
  cameraTimer: null,
  stopCamera: null,
  searchSerial: 0,
  serverMatches: new Map(),
  pinFailures: 0,
  pinLockedUntil: 0,
  wakeLock: null,
  reloadWhenIdle: false,
};

// -- small helpers ----------------------------------------------------------------

const isVolunteerEvent = () => state.pairing?.event?.kind === "volunteer_shift";
const mightBeOnline = () => navigator.onLine !== false;
const isOnline = () => mightBeOnline() && !state.networkDown;

/** What a kiosk may show: first name and last initial (as the server's display_name). */
function displayName(first, last) {
  const initial = String(last || "").trim().slice(0, 1).toUpperCase();
  return initial ? `${String(first).trim()} ${initial}.` : String(first).trim();
}

function firstNameOf(body, person) {
  return body?.first_name || person?.first_name || String(body?.name || person?.name || "").split(" ")[0];
}

function formatTime(iso) {
  if (!iso) return "";
  const options = { hour: "numeric", minute: "2-digit" };
  try {
    return new Intl.DateTimeFormat(getLang(), { ...options, timeZone: state.pairing?.event?.timezone }).format(
      new Date(iso),
    );
  } catch {
    return new Intl.DateTimeFormat(getLang(), options).format(new Date(iso));
  }
}

function announce(text, urgent = false) {
  const region = $(urgent ? "live-assertive" : "live-polite");
  region.textContent = "";
  // A new text node on the next frame makes screen readers repeat a repeated message.
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

/** Run scans and taps one at a time, in order. */
function enqueueWork(task) {
  state.work = state.work.then(task).catch((error) => console.error("kiosk", error));
  return state.work;
}

function markNetwork(answer) {
  const down = answer.kind === "transient";
  if (down !== state.networkDown) {
    state.networkDown = down;
    renderStatus();
  }
}

// -- screens ----------------------------------------------------------------------

const SCREENS = ["loading", "pair", "idle", "search", "walkin", "result", "working", "camera", "revoked", "stopped"];
const SCANNING_SCREENS = new Set(["idle", "search", "walkin", "result", "working"]);

function show(name) {
  if (state.screen === "camera" && name !== "camera") closeCamera();
  if (name !== "result") clearTimeout(state.resultTimer);
  if (name !== "search" && name !== "walkin") clearTimeout(state.formTimer);
  state.screen = name;
  for (const screen of SCREENS) $(`screen-${screen}`).hidden = screen !== name;
  $("app").dataset.screen = name;
  const paired = Boolean(state.pairing) && !state.revoked;
  $("staff-button").hidden = !state.pairing || name === "stopped";
  $("footer").hidden = !paired;
  if (name === "idle") enterIdle();
  focusSink();
}

function enterIdle() {
  $("search-input").value = "";
  $("search-results").replaceChildren();
  $("search-status").textContent = "";
  resetWalkinForm();
  renderIdle();
  if (state.reloadWhenIdle && !state.busy) reloadPage();
}

function focusSink() {
  if (!SCANNING_SCREENS.has(state.screen) || state.screen === "search" || state.screen === "walkin") return;
  if (document.querySelector("dialog[open]")) return;
  $("scanner-sink").focus({ preventScroll: true });
}

function scannerEnabled() {
  return (
    Boolean(state.pairing) && !state.revoked && SCANNING_SCREENS.has(state.screen) && !document.querySelector("dialog[open]")
  );
}

function renderIdle() {
  const checkout = state.checkoutMode;
  $("idle-lead").textContent = t(checkout ? "idle_checkout_lead" : "idle_lead");
  $("app").classList.toggle("checkout-mode", checkout);
  $("walkin-button").hidden = checkout;
  $("checkout-toggle").hidden = !isVolunteerEvent();
  $("checkout-toggle-text").textContent = t(checkout ? "checkout_mode_off" : "checkout_mode_on");
  $("camera-button").hidden = !cameraPossible();
}

function renderEvent() {
  const event = state.pairing?.event;
  $("event-title").textContent = event?.title || "Turnout";
  const parts = [];
  if (event?.starts_at && event?.ends_at) parts.push(`${formatTime(event.starts_at)}–${formatTime(event.ends_at)}`);
  if (event?.venue) parts.push(event.venue);
  $("event-meta").textContent = parts.join(" · ");
  $("footer-kiosk").textContent = state.pairing ? `${t("staff_kiosk")}: ${state.pairing.kiosk.name}` : "";
  document.title = event?.title ? `${event.title} · Check-in` : "Turnout · Check-in";
}

function renderStatus() {
  const waiting = state.queue?.length || 0;
  const syncing = Boolean(state.queue?.syncing);
  const online = isOnline();
  const status = $("status");
  status.dataset.state = !online ? "offline" : syncing && waiting ? "syncing" : "online";
  $("status-text").textContent = t(!online ? "status_offline" : syncing && waiting ? "status_syncing" : "status_online");
  const queueText = waiting ? plural("waiting", waiting) : "";
  $("status-queue").hidden = !waiting;
  $("status-queue").textContent = String(waiting);
  $("status-queue").title = queueText;
  status.setAttribute("aria-label", [$("status-text").textContent, queueText].filter(Boolean).join(", "));
  $("offline-banner").hidden = online || !state.pairing || state.screen === "pair";
  $("banner-queue").textContent = queueText;
  $("footer-sync").textContent = waiting ? queueText : state.queue?.lastSyncAt ? t("all_synced") : "";
  $("app").classList.toggle("is-offline", !online);
}

function renderClock() {
  const options = { hour: "numeric", minute: "2-digit" };
  let text;
  try {
    text = new Intl.DateTimeFormat(getLang(), { ...options, timeZone: state.pairing?.event?.timezone }).format(new Date());
  } catch {
    text = new Intl.DateTimeFormat(getLang(), options).format(new Date());
  }
  $("clock").textContent = text;
}

function renderAll() {
  applyI18n();
  $("lang-toggle").setAttribute("aria-label", t("lang_switch_label"));
  renderEvent();
  renderStatus();
  renderIdle();
  renderClock();
  if (state.screen === "search") runSearch();
}

// -- the result screen ---------------------------------------------------------------

const ICONS = {
  success: '<svg viewBox="0 0 64 64"><circle cx="32" cy="32" r="30"/><path d="M19 33l9 9 17-19"/></svg>',
  info: '<svg viewBox="0 0 64 64"><circle cx="32" cy="32" r="30"/><path d="M32 29v17M32 19v1"/></svg>',
  warning: '<svg viewBox="0 0 64 64"><path d="M32 5l29 52H3z"/><path d="M32 25v14M32 47v1"/></svg>',
  bye: '<svg viewBox="0 0 64 64"><circle cx="32" cy="32" r="30"/><path d="M27 20h-7v24h7M36 24l9 8-9 8M45 32H26"/></svg>',
};

/**
 * tone: success | info | warning | bye; offer: a registration id to offer
 * check-out for (volunteer events).
 */
function showResult({ tone, title, detail = "", note = "", offer = null }) {
  $("result").dataset.tone = tone;
  $("result-icon").innerHTML = ICONS[tone] || ICONS.info;
  $("result-title").textContent = title;
  $("result-detail").textContent = detail;
  $("result-note-text").textContent = note;
  $("result-note").hidden = !note;
  $("result-actions").hidden = !offer;
  $("result-checkout").dataset.registrationId = offer || "";
  state.checkoutMode = false;
  show("result");
  const sentences = [title, detail, note].filter(Boolean).map((part) => (/[.!?…]$/.test(part) ? part : `${part}.`));
  announce(sentences.join(" "), tone === "warning");
  const duration = offer ? RESULT_WITH_OFFER_MS : RESULT_MS;
  const bar = $("countdown-bar");
  bar.style.transition = "none";
  bar.style.transform = "scaleX(1)";
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      bar.style.transition = `transform ${duration}ms linear`;
      bar.style.transform = "scaleX(0)";
    }),
  );
  clearTimeout(state.resultTimer);
  state.resultTimer = setTimeout(() => {
    if (state.screen === "result") show("idle");
  }, duration);
}

function rememberOutcome(kind, registrationId, body = {}) {
  const person = state.roster.get(registrationId || body.registration_id);
  if (!person) return;
  if (kind === "checkin" || kind === "walkin") person.checked_in = true;
  if (body.status === "checked_out" || body.status === "already_checked_out") person.checked_out = true;
}

/** The server decided (2xx): show its answer. */
function showAnswer(kind, body, person) {
  const name = body.name || person?.name || "";
  const first = firstNameOf(body, person);
  const registrationId = body.registration_id || person?.registration_id || null;
  switch (body.status) {
    case "checked_in": {
      let detail;
      if (body.first_time_ever) detail = t("first_time");
      else if (body.visit_number > 1) detail = t("welcome_back", { ordinal: ordinal(body.visit_number) });
      else detail = getLang() === "en" && body.message ? body.message : t("checked_in");
      return showResult({ tone: "success", title: t("welcome", { name: first }), detail });
    }
    case "already_checked_in": {
      const offer = isVolunteerEvent() && !person?.checked_out && registrationId ? registrationId : null;
      return showResult({
        tone: "info",
        title: t("already_in", { name }),
        detail: body.checked_in_at ? t("already_in_since", { time: formatTime(body.checked_in_at) }) : "",
        offer,
      });
    }
    case "checked_out":
      return showResult({ tone: "bye", title: t("checked_out", { name: first }), detail: hoursText(body) });
    case "already_checked_out":
      return showResult({ tone: "info", title: t("already_out", { name }), detail: hoursText(body) });
    default:
      return showResult({ tone: "success", title: body.message || t("checked_in") });
  }
}

function hoursText(body) {
  if (typeof body.hours !== "number") return "";
  if (typeof body.total_hours === "number") {
    return t("hours_today", { hours: formatNumber(body.hours), total: formatNumber(body.total_hours) });
  }
  return t("hours_only", { hours: formatNumber(body.hours) });
}

const REFUSAL_KEYS = {
  unknown_badge: "unknown_badge",
  wrong_event: "wrong_event",
  registration_cancelled: "registration_cancelled",
  checkin_not_open: "checkin_not_open",
  checkin_closed: "checkin_closed",
};

/** The server said no (4xx): say why, in the kiosk's language. */
function showRefusal(answer, person) {
  let detail;
  if (answer.code === "not_checked_in") {
    detail = person?.name ? t("not_checked_in", { name: person.name }) : t("not_checked_in_anon");
  } else if (REFUSAL_KEYS[answer.code]) {
    detail = t(REFUSAL_KEYS[answer.code]);
  } else if (getLang() === "en" && answer.message) {
    detail = answer.message;
  } else {
    detail = t("generic_error");
  }
  showResult({ tone: "warning", title: t("not_now"), detail });
}

// -- checking people in and out ---------------------------------------------------------

/**
 * One check-in, check-out or walk-in, from any screen. action: {kind, body,
 * person}. The client key and scan time are fixed here, once, so the online
 * attempt and a queued retry are the same request to the server. `busy` is
 * set while it runs (and by the taps that start it, against double taps).
 */
async function perform(action) {
  state.busy = true;
  try {
    if (state.pairing && !state.revoked) await attempt(action);
  } finally {
    state.busy = false;
  }
}

async function attempt({ kind, body, person = null }) {
  const request = { client_key: newClientKey(), ...body, scanned_at: new Date().toISOString() };
  const registrationId = person?.registration_id || body.registration_id || null;
  const item = {
    kind,
    body: request,
    registration_id: registrationId,
    name: person?.name || (kind === "walkin" ? displayName(body.first_name, body.last_name) : null),
    first_name: person?.first_name || body.first_name || null,
  };
  // Anything of this person's still waiting in the queue goes first: this
  // one waits behind it (a check-out must not overtake its check-in).
  if (mightBeOnline() && !state.queue.hasPendingFor(registrationId)) {
    const slow = setTimeout(() => show("working"), SLOW_ANSWER_MS);
    const answer = await state.api.send(kind, request, state.networkDown ? DOUBTFUL_TIMEOUT_MS : ONLINE_TIMEOUT_MS);
    clearTimeout(slow);
    markNetwork(answer);
    if (answer.kind === "ok") {
      rememberOutcome(kind, registrationId, answer.body);
      showAnswer(kind, answer.body, person);
      if (state.queue.length) syncQueue();
      return;
    }
    if (answer.kind === "unauthorized") return showRevoked();
    if (answer.kind === "rejected") {
      if (kind === "walkin" && answer.status === 400) return showWalkinError(answer);
      return showRefusal(answer, person);
    }
    // transient: no answer, so decide offline with the same key and time.
  }
  await performOffline(kind, item, person);
}

async function performOffline(kind, item, person) {
  const provisional = t("provisional");
  if (kind === "walkin") {
    await state.queue.add(item);
    return showResult({ tone: "success", title: t("welcome", { name: item.first_name }), detail: t("checked_in"), note: provisional });
  }
  if (!person) {
    // Not on the cached roster: a badge we can't vouch for is never queued.
    return showResult({ tone: "warning", title: t("see_desk"), detail: t("cannot_verify") });
  }
  if (kind === "checkin") {
    if (person.checked_in) {
      const offer = isVolunteerEvent() && !person.checked_out ? person.registration_id : null;
      return showResult({ tone: "info", title: t("already_in", { name: person.name }), offer });
    }
    await state.queue.add(item);
    person.checked_in = true;
    return showResult({
      tone: "success",
      title: t("welcome", { name: person.first_name || firstNameOf({}, person) }),
      detail: t("checked_in"),
      note: provisional,
    });
  }
  // check-out
  if (!person.checked_in) {
    return showResult({ tone: "warning", title: t("not_now"), detail: t("not_checked_in", { name: person.name }) });
  }
  if (person.checked_out) return showResult({ tone: "info", title: t("already_out", { name: person.name }) });
  await state.queue.add(item);
  person.checked_out = true;
  return showResult({
    tone: "bye",
    title: t("checked_out", { name: person.first_name || firstNameOf({}, person) }),
    note: provisional,
  });
}

async function handleScan(code, { fromCamera = false } = {}) {
  if (!(fromCamera ? state.screen === "camera" : scannerEnabled())) return;
  const now = Date.now();
  const key = `${state.checkoutMode ? "out" : "in"}:${code}`;
  if (key === state.lastScan.key && now - state.lastScan.at < DUPLICATE_SCAN_MS) return;
  state.lastScan = { key, at: now };
  const person = await state.roster.findBadge(code);
  if (state.checkoutMode) {
    return perform({ kind: "checkout", body: { badge_code: code }, person });
  }
  return perform({ kind: "checkin", body: { badge_code: code, method: "qr" }, person });
}

function chooseFromSearch(registrationId) {
  if (state.busy) return; // a double tap is one check-in
  state.busy = true;
  const person = state.roster.get(registrationId) || state.serverMatches.get(registrationId) || null;
  enqueueWork(() =>
    state.checkoutMode
      ? perform({ kind: "checkout", body: { registration_id: registrationId }, person })
      : perform({ kind: "checkin", body: { registration_id: registrationId, method: "search" }, person }),
  );
}

// -- find my name ---------------------------------------------------------------------

let searchTimer = null;

function openSearch() {
  show("search");
  touchForm();
  $("search-input").focus();
  runSearch();
}

function runSearch() {
  const query = $("search-input").value;
  const serial = ++state.searchSerial;
  if (fold(query).replace(/\s+/g, "").length < 2) {
    $("search-results").replaceChildren();
    $("search-status").textContent = query.trim() ? t("search_min") : "";
    return;
  }
  const local = state.roster.search(query, 8);
  renderMatches(local);
  if (!local.length && isOnline()) {
    // Maybe someone registered since the roster was fetched: ask the server.
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      const answer = await state.api.search(query);
      markNetwork(answer);
      if (serial !== state.searchSerial || answer.kind !== "ok") return;
      const results = answer.body.results || [];
      for (const match of results) state.serverMatches.set(match.registration_id, match);
      renderMatches(results);
    }, 250);
  }
}

function renderMatches(matches) {
  const list = $("search-results");
  const counts = new Map();
  for (const match of matches) counts.set(match.name, (counts.get(match.name) || 0) + 1);
  const items = matches.map((match) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "match";
    button.dataset.registrationId = match.registration_id;
    const name = document.createElement("span");
    name.className = "match-name";
    name.textContent = match.name;
    button.append(name);
    if (counts.get(match.name) > 1 && match.hint) {
      // Two people with one display name: the hint tells them apart (never an email).
      const hint = document.createElement("span");
      hint.className = "match-hint";
      hint.textContent = match.hint;
      button.append(hint);
    }
    if (match.checked_in) {
      const badge = document.createElement("span");
      badge.className = "match-badge";
      badge.textContent = t("search_checked_in");
      button.append(badge);
    }
    button.addEventListener("click", () => chooseFromSearch(match.registration_id));
    li.append(button);
    return li;
  });
  list.replaceChildren(...items);
  $("search-status").textContent = matches.length ? t("search_results", { n: matches.length }) : t("search_empty");
}

// -- walk-ins -----------------------------------------------------------------------------

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const WALKIN_FIELDS = { first_name: "walkin-first", last_name: "walkin-last", email: "walkin-email", offers: "walkin-offers", seeks: "walkin-seeks" };

function tags(text) {
  const seen = new Set();
  return text
    .split(/[,;\n]/)
    .map((tag) => tag.trim().slice(0, 60))
    .filter((tag) => tag && !seen.has(tag.toLowerCase()) && seen.add(tag.toLowerCase()))
    .slice(0, 20);
}

function setFieldError(inputId, message) {
  const input = $(inputId);
  const error = $(`${inputId}-error`);
  if (error) error.textContent = message || "";
  input.toggleAttribute("aria-invalid", Boolean(message));
  if (!message) input.removeAttribute("aria-invalid");
}

function resetWalkinForm() {
  $("walkin-form").reset();
  for (const id of Object.values(WALKIN_FIELDS)) setFieldError(id, "");
}

function openWalkin() {
  resetWalkinForm();
  show("walkin");
  touchForm();
  $("walkin-first").focus();
}

function submitWalkin(event) {
  event.preventDefault();
  if (state.busy) return;
  const first = $("walkin-first").value.trim();
  const last = $("walkin-last").value.trim();
  const email = $("walkin-email").value.trim();
  let firstInvalid = null;
  const check = (id, message) => {
    setFieldError(id, message);
    if (message && !firstInvalid) firstInvalid = id;
  };
  check("walkin-first", first ? "" : t("field_required"));
  check("walkin-last", "");
  check("walkin-email", !email ? t("field_required") : EMAIL.test(email) ? "" : t("field_email"));
  if (firstInvalid) {
    $(firstInvalid).focus();
    announce($(`${firstInvalid}-error`).textContent, true);
    return;
  }
  const body = {
    first_name: first,
    last_name: last,
    email,
    consent_email: $("walkin-consent").checked,
    offers: tags($("walkin-offers").value),
    seeks: tags($("walkin-seeks").value),
  };
  state.busy = true;
  enqueueWork(() => perform({ kind: "walkin", body }));
}

function showWalkinError(answer) {
  show("walkin");
  const field = String(answer.field || "").split(".")[0];
  const id = WALKIN_FIELDS[field] || "walkin-first";
  const message = field === "email" ? t("field_email") : t("field_invalid");
  setFieldError(id, getLang() === "en" && answer.message ? answer.message : message);
  $(id).focus();
  announce($(`${id}-error`).textContent, true);
}

function touchForm() {
  clearTimeout(state.formTimer);
  state.formTimer = setTimeout(() => {
    if (state.screen === "search" || state.screen === "walkin") show("idle");
  }, FORM_IDLE_MS);
}

// -- camera ------------------------------------------------------------------------------

async function openCamera() {
  show("camera");
  $("camera-status").textContent = t("camera_starting");
  try {
    const onCode = (code) => enqueueWork(() => handleScan(code, { fromCamera: true }));
    const stop = await startCamera($("camera-video"), onCode, { jsqrSrc: JSQR_URL });
    if (state.screen !== "camera") return stop();
    state.stopCamera = stop;
    $("camera-status").textContent = "";
    state.cameraTimer = setTimeout(() => state.screen === "camera" && show("idle"), CAMERA_MAX_MS);
  } catch (error) {
    $("camera-status").textContent = t(error.message === "denied" ? "camera_denied" : "camera_unavailable");
    announce($("camera-status").textContent, true);
    state.cameraTimer = setTimeout(() => state.screen === "camera" && show("idle"), 4000);
  }
}

function closeCamera() {
  clearTimeout(state.cameraTimer);
  if (state.stopCamera) state.stopCamera();
  state.stopCamera = null;
}

// -- roster, heartbeat and the queue ----------------------------------------------------

function applyQueueToRoster() {
  for (const item of state.queue.items) {
    const person = state.roster.get(item.registration_id);
    if (!person) continue;
    if (item.kind === "checkin") person.checked_in = true;
    if (item.kind === "checkout") person.checked_out = true;
  }
}

async function refreshRoster() {
  if (!state.pairing || state.revoked || !mightBeOnline()) return;
  const answer = await state.api.roster();
  markNetwork(answer);
  if (answer.kind === "unauthorized") return showRevoked();
  if (answer.kind !== "ok") return;
  state.roster.load(answer.body, new Date().toISOString());
  applyQueueToRoster();
  await state.store.set("roster", { ...state.roster.snapshot(), event_id: state.pairing.event.id }).catch(() => {});
  if (answer.body.event && answer.body.event.id === state.pairing.event.id) {
    state.pairing.event = { ...state.pairing.event, ...answer.body.event };
    await state.store.set("pairing", state.pairing).catch(() => {});
    renderEvent();
  }
}

async function heartbeat() {
  if (!state.pairing || state.revoked || !mightBeOnline()) return;
  const answer = await state.api.heartbeat(state.queue.length);
  markNetwork(answer);
  if (answer.kind === "unauthorized") return showRevoked();
  if (answer.kind === "ok" && state.queue.length) syncQueue();
}

function syncQueue() {
  if (!state.pairing || state.revoked || !state.queue.length || !mightBeOnline()) return Promise.resolve();
  return state.queue.sync().then((outcome) => {
    if (outcome === "offline") markNetwork({ kind: "transient" });
    if (outcome === "done") markNetwork({ kind: "ok" });
  });
}

function onDelivered(item, answer) {
  if (answer.kind === "ok") rememberOutcome(item.kind, item.registration_id, answer.body);
}

function wentOnline() {
  state.networkDown = false;
  renderStatus();
  heartbeat();
  syncQueue();
  refreshRoster();
}

// -- pairing, revocation, kiosk mode ------------------------------------------------------

function showPair(message = "") {
  state.revoked = false;
  $("pair-error").textContent = message;
  $("pair-code").value = "";
  $("pair-submit").disabled = false;
  $("pair-submit").textContent = t("pair_button");
  show("pair");
  renderStatus();
  $("pair-code").focus();
}

async function submitPair(event) {
  event.preventDefault();
  const code = $("pair-code").value.toUpperCase().replace(/[^A-Z0-9]/g, "");
  if (code.length !== 8) {
    $("pair-error").textContent = t("pair_format");
    return;
  }
  $("pair-error").textContent = "";
  $("pair-submit").disabled = true;
  $("pair-submit").textContent = t("pair_working");
  const answer = await new KioskApi().pair(code);
  $("pair-submit").disabled = false;
  $("pair-submit").textContent = t("pair_button");
  if (answer.kind === "ok") {
    const { token, kiosk, event: paired, staff_pin_sha256: pinDigest } = answer.body;
    state.pairing = { token, kiosk, event: paired, staff_pin_sha256: pinDigest, paired_at: new Date().toISOString() };
    await state.store.set("pairing", state.pairing);
    await state.store.del("roster").catch(() => {});
    state.roster = new Roster();
    return startKiosk();
  }
  const messages = { invalid_pairing_code: "pair_invalid", pairing_code_expired: "pair_expired" };
  if (answer.kind === "transient") $("pair-error").textContent = t("pair_offline");
  else if (messages[answer.code]) $("pair-error").textContent = t(messages[answer.code]);
  else $("pair-error").textContent = t("pair_failed", { code: answer.code || answer.status });
  $("pair-code").focus();
}

async function startKiosk() {
  state.revoked = false;
  state.api.token = state.pairing.token;
  const cached = await state.store.get("roster").catch(() => null);
  if (cached && cached.event_id === state.pairing.event.id) {
    state.roster.load(cached, cached.fetched_at);
    applyQueueToRoster();
  }
  renderAll();
  enterKioskMode();
  show("idle");
  await refreshRoster();
  heartbeat();
  syncQueue();
}

function showRevoked() {
  if (state.revoked) return;
  state.revoked = true;
  show("revoked");
  renderStatus();
}

async function forgetPairing() {
  state.pairing = null;
  state.api.token = null;
  state.roster = new Roster();
  await state.store.del("pairing").catch(() => {});
  await state.store.del("roster").catch(() => {});
}

async function unpair() {
  await state.queue.clear();
  await forgetPairing();
  leaveKioskMode();
  showPair();
}

function onBeforeUnload(event) {
  if (!state.kioskMode) return undefined;
  event.preventDefault();
  event.returnValue = t("leave_warning");
  return event.returnValue;
}

function onPopState() {
  if (state.kioskMode) history.pushState({ kiosk: true }, "", location.href);
}

function enterKioskMode() {
  if (!state.kioskMode) {
    state.kioskMode = true;
    history.pushState({ kiosk: true }, "", location.href);
  }
  requestWakeLock();
}

function leaveKioskMode() {
  state.kioskMode = false;
  if (state.wakeLock) state.wakeLock.release().catch(() => {});
  state.wakeLock = null;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
}

async function requestWakeLock() {
  if (!state.kioskMode || state.wakeLock || !("wakeLock" in navigator) || document.visibilityState !== "visible") return;
  try {
    state.wakeLock = await navigator.wakeLock.request("screen");
    state.wakeLock.addEventListener("release", () => {
      state.wakeLock = null;
    });
  } catch {
    // refused (battery saver, not visible): the tablet's own settings apply
  }
}

function reloadPage() {
  state.kioskMode = false;
  location.reload();
}

// -- staff: PIN, menu -----------------------------------------------------------------------

let afterPin = null;

function openPin(then) {
  afterPin = then;
  $("pin-input").value = "";
  $("pin-error").textContent = "";
  $("pin-dialog").showModal();
  $("pin-input").focus();
}

async function submitPin(event) {
  event.preventDefault();
  const now = Date.now();
  if (now < state.pinLockedUntil) {
    $("pin-error").textContent = t("pin_locked", { s: Math.ceil((state.pinLockedUntil - now) / 1000) });
    return;
  }
  const pin = $("pin-input").value.trim();
  const digest = await sha256Hex(`${state.pairing.kiosk.id}:${pin}`);
  if (pin && digest === String(state.pairing.staff_pin_sha256).toLowerCase()) {
    state.pinFailures = 0;
    $("pin-dialog").close();
    const then = afterPin;
    afterPin = null;
    if (then) then();
    return;
  }
  state.pinFailures += 1;
  $("pin-input").value = "";
  if (state.pinFailures >= PIN_MAX_TRIES) {
    state.pinFailures = 0;
    state.pinLockedUntil = now + PIN_LOCK_MS;
    $("pin-error").textContent = t("pin_locked", { s: PIN_LOCK_MS / 1000 });
  } else {
    $("pin-error").textContent = t("pin_wrong");
  }
  announce($("pin-error").textContent, true);
}

function pressKey(key) {
  const input = $("pin-input");
  if (key === "clear") input.value = "";
  else if (key === "back") input.value = input.value.slice(0, -1);
  else if (input.value.length < 8) input.value += key;
  input.focus();
}

async function openStaffMenu() {
  const pairing = state.pairing;
  $("staff-kiosk").textContent = pairing.kiosk.name;
  $("staff-event").textContent = pairing.event.title;
  $("staff-people").textContent = t("staff_people_value", {
    n: state.roster.size,
    time: state.roster.fetchedAt ? formatTime(state.roster.fetchedAt) : t("staff_never"),
  });
  $("staff-queue").textContent = String(state.queue.length);
  const refused = await state.queue.refusals();
  $("staff-refused").textContent = refused.length
    ? refused
        .slice(0, 3)
        .map((entry) => `${entry.name || "?"}: ${entry.code}`)
        .join(" · ")
    : "0";
  if (!$("staff-dialog").open) $("staff-dialog").showModal();
}

function askToConfirm(text, yesLabel) {
  return new Promise((resolve) => {
    const dialog = $("confirm-dialog");
    $("confirm-text").textContent = text;
    $("confirm-yes").textContent = yesLabel;
    const finish = (value) => {
      dialog.close();
      $("confirm-yes").onclick = null;
      $("confirm-no").onclick = null;
      resolve(value);
    };
    $("confirm-yes").onclick = () => finish(true);
    $("confirm-no").onclick = () => finish(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
  });
}

// -- wiring -----------------------------------------------------------------------------------

function wireUi() {
  $("pair-form").addEventListener("submit", submitPair);
  $("pair-code").addEventListener("input", (event) => {
    event.target.value = event.target.value.toUpperCase();
  });
  $("lang-toggle").addEventListener("click", async () => {
    setLang(getLang() === "en" ? "es" : "en");
    await state.store.set("lang", getLang()).catch(() => {});
    renderAll();
    focusSink();
  });
  $("find-button").addEventListener("click", openSearch);
  $("walkin-button").addEventListener("click", openWalkin);
  $("search-walkin").addEventListener("click", openWalkin);
  $("camera-button").addEventListener("click", openCamera);
  $("checkout-toggle").addEventListener("click", () => {
    state.checkoutMode = !state.checkoutMode;
    renderIdle();
    focusSink();
  });
  for (const button of document.querySelectorAll("[data-go]")) {
    button.addEventListener("click", () => show(button.dataset.go));
  }
  $("search-input").addEventListener("input", () => {
    touchForm();
    runSearch();
  });
  $("search-input").addEventListener("keydown", (event) => {
    const first = $("search-results").querySelector("button");
    if (event.key === "Enter" && first && $("search-results").children.length === 1) first.click();
  });
  $("walkin-form").addEventListener("submit", submitWalkin);
  $("walkin-form").addEventListener("input", touchForm);
  $("screen-result").addEventListener("click", (event) => {
    if (!event.target.closest("button")) show("idle");
  });
  $("result-checkout").addEventListener("click", (event) => {
    const registrationId = event.currentTarget.dataset.registrationId;
    if (!registrationId || state.busy) return;
    const person = state.roster.get(registrationId) || { registration_id: registrationId };
    state.busy = true;
    enqueueWork(() => perform({ kind: "checkout", body: { registration_id: registrationId }, person }));
  });
  $("pair-again").addEventListener("click", async () => {
    await forgetPairing();
    showPair();
  });
  $("resume").addEventListener("click", () => {
    enterKioskMode();
    show("idle");
  });

  // Staff
  $("staff-button").addEventListener("click", () => openPin(openStaffMenu));
  $("pin-form").addEventListener("submit", submitPin);
  $("pin-cancel").addEventListener("click", () => $("pin-dialog").close());
  $("keypad").addEventListener("click", (event) => {
    const key = event.target.closest("button")?.dataset.key;
    if (key) pressKey(key);
  });
  $("staff-close").addEventListener("click", () => $("staff-dialog").close());
  $("staff-sync").addEventListener("click", async () => {
    state.networkDown = false;
    await syncQueue();
    openStaffMenu();
  });
  $("staff-refresh").addEventListener("click", async () => {
    await refreshRoster();
    openStaffMenu();
  });
  $("staff-fullscreen").addEventListener("click", () => {
    document.documentElement.requestFullscreen?.().catch(() => {});
  });
  $("staff-unpair").addEventListener("click", async () => {
    const waiting = state.queue.length;
    const text = waiting ? t("unpair_confirm_queue", { n: waiting }) : t("unpair_confirm");
    if (!(await askToConfirm(text, t("confirm_yes")))) return;
    $("staff-dialog").close();
    await unpair();
  });
  $("staff-exit").addEventListener("click", () => {
    $("staff-dialog").close();
    leaveKioskMode();
    show("stopped");
  });
  for (const dialog of document.querySelectorAll("dialog")) dialog.addEventListener("close", focusSink);

  // Keep the kiosk a kiosk: no leaving, no context menu, the scanner always listening.
  window.addEventListener("beforeunload", onBeforeUnload);
  window.addEventListener("popstate", onPopState);
  document.addEventListener("contextmenu", (event) => {
    if (state.kioskMode && !event.target.closest("input")) event.preventDefault();
  });
  document.addEventListener("click", () => setTimeout(focusSink, 0));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      requestWakeLock();
      if (isOnline()) heartbeat();
    }
  });
  window.addEventListener("online", wentOnline);
  window.addEventListener("offline", renderStatus);
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const hadController = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.register(SW_URL, { scope: SHELL_URL }).catch((error) => {
    console.warn("service worker not registered; the kiosk works online only", error);
  });
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    // A new version was deployed: load it at the next quiet moment.
    if (!hadController) return;
    state.reloadWhenIdle = true;
    if (state.screen === "idle" && !state.busy) reloadPage();
  });
}

async function boot() {
  setLang((navigator.language || "en").toLowerCase().startsWith("es") ? "es" : "en");
  state.store = await openStore();
  const lang = await state.store.get("lang").catch(() => null);
  if (lang) setLang(lang);
  state.queue = new OutboundQueue({
    store: state.store,
    api: state.api,
    onChange: renderStatus,
    onUnauthorized: showRevoked,
    onDelivered,
  });
  renderAll();
  wireUi();
  listenForScanner({
    sink: $("scanner-sink"),
    enabled: scannerEnabled,
    onScan: (code) => enqueueWork(() => handleScan(code)),
  });
  registerServiceWorker();
  await state.queue.load();
  state.pairing = (await state.store.get("pairing").catch(() => null)) || null;
  if (state.pairing?.token) await startKiosk();
  else showPair();

  setInterval(refreshRoster, ROSTER_EVERY_MS);
  setInterval(heartbeat, HEARTBEAT_EVERY_MS);
  setInterval(() => {
    if (state.queue.length && !state.queue.syncing) syncQueue();
  }, RETRY_EVERY_MS);
  setInterval(renderClock, 10_000);
}

boot().catch((error) => {
  console.error("kiosk failed to start", error);
  $("screen-loading").querySelector("p").textContent = `${t("generic_error")} (${error?.message || error})`;
});

// A small handle for the browser tests and for staff debugging in the console.
globalThis.turnoutKiosk = {
  get screen() {
    return state.screen;
  },
  get waiting() {
    return state.queue?.length ?? 0;
  },
  get rosterSize() {
    return state.roster.size;
  },
  syncNow: syncQueue,
  refreshRoster,
};
