// Switching screens and drawing what every screen shares: the top bar (event,
// status, clock), the footer and the idle screen's buttons. The screen modules
// register what happens when their screen is left, when the kiosk goes back to
// idle, and how to redraw themselves (a language switch), so this module needs
// none of them.

import { applyI18n, getLang, plural, t } from "./i18n.js";
import { cameraPossible } from "./scanner.js";
import { $, FORM_IDLE_MS, formatTime, isOnline, isVolunteerEvent, state } from "./state.js";

const SCREENS = ["loading", "pair", "idle", "search", "walkin", "result", "working", "camera", "revoked", "stopped"];
const SCANNING_SCREENS = new Set(["idle", "search", "walkin", "result", "working"]);

const leaving = new Map(); // screen -> what to do when another one is shown
const redraws = new Map(); // screen -> how to redraw it (renderAll)
const idleResets = []; // what going back to idle clears

/** hooks: {leave, redraw, resetOnIdle}, each a function, all optional. */
export function onScreen(name, { leave, redraw, resetOnIdle } = {}) {
  if (leave) leaving.set(name, leave);
  if (redraw) redraws.set(name, redraw);
  if (resetOnIdle) idleResets.push(resetOnIdle);
}

export function show(name) {
  if (state.screen !== name) leaving.get(state.screen)?.();
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
  for (const reset of idleResets) reset();
  renderIdle();
  if (state.reloadWhenIdle && !state.busy) reloadPage();
}

export function reloadPage() {
  state.kioskMode = false;
  location.reload();
}

export function focusSink() {
  if (!SCANNING_SCREENS.has(state.screen) || state.screen === "search" || state.screen === "walkin") return;
  if (document.querySelector("dialog[open]")) return;
  // Someone typing their email on the confirmation keeps the keyboard (a scanner still works: scanner.js).
  if (document.activeElement?.closest?.("#email-prompt")) return;
  $("scanner-sink").focus({ preventScroll: true });
}

export function scannerEnabled() {
  return (
    Boolean(state.pairing) && !state.revoked && SCANNING_SCREENS.has(state.screen) && !document.querySelector("dialog[open]")
  );
}

/** An abandoned search or walk-in form goes back to idle after a minute without input. */
export function touchForm() {
  clearTimeout(state.formTimer);
  state.formTimer = setTimeout(() => {
    if (state.screen === "search" || state.screen === "walkin") show("idle");
  }, FORM_IDLE_MS);
}

export function showRevoked() {
  if (state.revoked) return;
  state.revoked = true;
  show("revoked");
  renderStatus();
}

export function markNetwork(answer) {
  const down = answer.kind === "transient";
  if (down !== state.networkDown) {
    state.networkDown = down;
    renderStatus();
  }
}

export function renderIdle() {
  const checkout = state.checkoutMode;
  $("idle-lead").textContent = t(checkout ? "idle_checkout_lead" : "idle_lead");
  $("app").classList.toggle("checkout-mode", checkout);
  $("walkin-button").hidden = checkout;
  $("checkout-toggle").hidden = !isVolunteerEvent();
  $("checkout-toggle-text").textContent = t(checkout ? "checkout_mode_off" : "checkout_mode_on");
  $("camera-button").hidden = !cameraPossible();
}

export function renderEvent() {
  const event = state.pairing?.event;
  $("event-title").textContent = event?.title || "Turnout";
  const parts = [];
  if (event?.starts_at && event?.ends_at) parts.push(`${formatTime(event.starts_at)}–${formatTime(event.ends_at)}`);
  if (event?.venue) parts.push(event.venue);
  $("event-meta").textContent = parts.join(" · ");
  $("footer-kiosk").textContent = state.pairing ? `${t("staff_kiosk")}: ${state.pairing.kiosk.name}` : "";
  document.title = event?.title ? `${event.title} · Check-in` : "Turnout · Check-in";
}

export function renderStatus() {
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

export function renderClock() {
  const options = { hour: "numeric", minute: "2-digit" };
  let text;
  try {
    text = new Intl.DateTimeFormat(getLang(), { ...options, timeZone: state.pairing?.event?.timezone }).format(new Date());
  } catch {
    text = new Intl.DateTimeFormat(getLang(), options).format(new Date());
  }
  $("clock").textContent = text;
}

export function renderAll() {
  applyI18n();
  $("lang-toggle").setAttribute("aria-label", t("lang_switch_label"));
  renderEvent();
  renderStatus();
  renderIdle();
  renderClock();
  redraws.get(state.screen)?.();
}
