// The Turnout check-in kiosk: one page, several screens.
//
//   pair -> idle <-> search / walk-in / camera -> result -> idle
//
// Online, every scan goes straight to the kiosk API and the screen shows the
// server's answer. When the server can't be reached, the cached roster
// verifies the badge, the scan is queued on the tablet (queue.js) and a
// provisional welcome is shown; the queue is sent when the network returns.
// See docs/kiosk-api.md for the API.
//
// This module starts the kiosk and wires what belongs to no one screen; the
// screens live in their own modules:
//   state.js       shared state, timings, small helpers
//   screens.js     switching screens; top bar, status, footer, idle screen
//   results.js     the result screen (answers and refusals)
//   checkin.js     checking in and out, online or queued offline
//   sync.js        roster refresh, heartbeat, sending the offline queue
//   search.js      find my name
//   walkin.js      the walk-in form
//   camera.js      reading badges with the camera
//   pairing.js     pairing with a code, starting, unpairing
//   kiosk-mode.js  guarding against leaving, the wake lock
//   staff-menu.js  the staff PIN and menu
//   group.js       checking in the others of a group (an order, a family)
//   label.js       printing name labels
//   email-prompt.js asking a name-only person for an email, once

import { wireCamera } from "./camera.js";
import { handleScan, perform } from "./checkin.js";
import { loadAsked, onEmailInput, wireEmailPrompt } from "./email-prompt.js";
import { wireGroup } from "./group.js";
import { getLang, setLang, t } from "./i18n.js";
import { applyLabelSize } from "./label.js";
import { onBeforeUnload, onPopState, requestWakeLock } from "./kiosk-mode.js";
import { showPair, startKiosk, wirePairing } from "./pairing.js";
import { OutboundQueue } from "./queue.js";
import { listenForScanner } from "./scanner.js";
import {
  focusSink,
  reloadPage,
  renderAll,
  renderClock,
  renderIdle,
  renderStatus,
  scannerEnabled,
  show,
  showRevoked,
} from "./screens.js";
import { holdResult } from "./results.js";
import { wireSearch } from "./search.js";
import { wireStaffMenu } from "./staff-menu.js";
import {
  $,
  HEARTBEAT_EVERY_MS,
  RETRY_EVERY_MS,
  ROSTER_EVERY_MS,
  SHELL_URL,
  SW_URL,
  enqueueWork,
  isOnline,
  state,
} from "./state.js";
import { openStore } from "./store.js";
import { heartbeat, onDelivered, refreshRoster, syncQueue, wentOnline } from "./sync.js";
import { wireWalkin } from "./walkin.js";

function wireUi() {
  wirePairing();
  $("lang-toggle").addEventListener("click", async () => {
    setLang(getLang() === "en" ? "es" : "en");
    await state.store.set("lang", getLang()).catch(() => {});
    renderAll();
    focusSink();
  });
  wireSearch();
  wireWalkin();
  wireCamera();
  $("checkout-toggle").addEventListener("click", () => {
    state.checkoutMode = !state.checkoutMode;
    renderIdle();
    focusSink();
  });
  for (const button of document.querySelectorAll("[data-go]")) {
    button.addEventListener("click", () => show(button.dataset.go));
  }
  $("screen-result").addEventListener("click", (event) => {
    if (!event.target.closest("button, .group-offer, .email-prompt")) show("idle");
  });
  wireGroup();
  wireEmailPrompt();
  onEmailInput(holdResult);
  // With a keyboard, Escape does what a tap on the confirmation or the Back button does
  // (an open dialog takes its own Escape).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || document.querySelector("dialog[open]")) return;
    if (["result", "search", "walkin", "camera"].includes(state.screen)) show("idle");
  });
  $("result-checkout").addEventListener("click", (event) => {
    const registrationId = event.currentTarget.dataset.registrationId;
    if (!registrationId || state.busy) return;
    const person = state.roster.get(registrationId) || { registration_id: registrationId };
    state.busy = true;
    enqueueWork(() => perform({ kind: "checkout", body: { registration_id: registrationId }, person }));
  });
  wireStaffMenu();
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
  state.labelSize = await state.store.get("label_size").catch(() => null);
  applyLabelSize();
  await loadAsked();
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
  get printedLabels() {
    return state.printedLabels || 0;
  },
  syncNow: syncQueue,
  refreshRoster,
};
