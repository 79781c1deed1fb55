// Pairing a tablet to an event with the one-time code from the organizer's
// event page, starting the kiosk once paired, and forgetting the pairing.

import { KioskApi } from "./api.js";
import { t } from "./i18n.js";
import { enterKioskMode, leaveKioskMode } from "./kiosk-mode.js";
import { Roster } from "./roster.js";
import { renderAll, renderStatus, show } from "./screens.js";
import { $, state } from "./state.js";
import { applyQueueToRoster, heartbeat, refreshRoster, syncQueue } from "./sync.js";

export function showPair(message = "") {
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

export async function startKiosk() {
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

async function forgetPairing() {
  state.pairing = null;
  state.api.token = null;
  state.roster = new Roster();
  await state.store.del("pairing").catch(() => {});
  await state.store.del("roster").catch(() => {});
}

/** Staff menu: forget this event and its queue, back to the pairing screen. */
export async function unpair() {
  await state.queue.clear();
  await forgetPairing();
  leaveKioskMode();
  showPair();
}

export function wirePairing() {
  $("pair-form").addEventListener("submit", submitPair);
  $("pair-code").addEventListener("input", (event) => {
    event.target.value = event.target.value.toUpperCase();
  });
  // The revoked screen: pair again with a new code.
  $("pair-again").addEventListener("click", async () => {
    await forgetPairing();
    showPair();
  });
  // The stopped screen (staff left kiosk mode): back to work.
  $("resume").addEventListener("click", () => {
    enterKioskMode();
    show("idle");
  });
}
