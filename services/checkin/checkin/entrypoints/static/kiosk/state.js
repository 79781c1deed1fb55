// The kiosk's shared state, its timings and the small helpers every screen uses.
// The screens are separate modules (screens.js, results.js, checkin.js,
// search.js, walkin.js, camera.js, pairing.js, staff.js); main.js wires them.

import { KioskApi } from "./api.js";
import { getLang } from "./i18n.js";
import { Roster } from "./roster.js";

export const STATIC_URL = new URL(".", import.meta.url).pathname; // /kiosk/static/
export const SHELL_URL = new URL("..", import.meta.url).pathname.replace(/\/$/, ""); // /kiosk
export const SW_URL = `${SHELL_URL}/sw.js`;
export const JSQR_URL = `${STATIC_URL}vendor/jsQR.js`;

export const RESULT_MS = 5000; // a confirmation stays this long, then back to idle
export const RESULT_WITH_OFFER_MS = 9000; // ... longer when it offers check-out
export const ROSTER_EVERY_MS = 60_000;
export const HEARTBEAT_EVERY_MS = 30_000;
export const RETRY_EVERY_MS = 10_000;
export const FORM_IDLE_MS = 60_000; // an abandoned search or form is cleared
export const CAMERA_MAX_MS = 30_000;
export const DUPLICATE_SCAN_MS = 3000; // the same code twice this fast is one scan
export const SLOW_ANSWER_MS = 350; // show "One moment" after this
export const ONLINE_TIMEOUT_MS = 6000;
export const DOUBTFUL_TIMEOUT_MS = 2500; // when the last request failed
export const PIN_MAX_TRIES = 5;
export const PIN_LOCK_MS = 30_000;

export const $ = (id) => document.getElementById(id);

export const state = {
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
  labelSize: null, // "62mm" | "4x3in": this kiosk's label stock (staff menu, kept on the tablet)
  printedLabels: 0,
};

export const isVolunteerEvent = () => state.pairing?.event?.kind === "volunteer_shift";
export const mightBeOnline = () => navigator.onLine !== false;
export const isOnline = () => mightBeOnline() && !state.networkDown;

/** What a kiosk may show: first name and last initial (as the server's display_name). */
export function displayName(first, last) {
  const initial = String(last || "").trim().slice(0, 1).toUpperCase();
  return initial ? `${String(first).trim()} ${initial}.` : String(first).trim();
}

export function firstNameOf(body, person) {
  return body?.first_name || person?.first_name || String(body?.name || person?.name || "").split(" ")[0];
}

/** A time of day in the event's time zone (the device's if the zone is unknown). */
export function formatTime(iso) {
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

export function announce(text, urgent = false) {
  const region = $(urgent ? "live-assertive" : "live-polite");
  region.textContent = "";
  // A new text node on the next frame makes screen readers repeat a repeated message.
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

/** Run scans and taps one at a time, in order. */
export function enqueueWork(task) {
  state.work = state.work.then(task).catch((error) => console.error("kiosk", error));
  return state.work;
}
