// The staff corner: a PIN (checked against the digest the pairing brought, with
// a lock-out after five wrong tries), then a menu: sync now, refresh the roster,
// full screen, unpair, leave kiosk mode; the label size of this kiosk and a test label.

import { sha256Hex } from "./digest.js";
import { t } from "./i18n.js";
import { leaveKioskMode } from "./kiosk-mode.js";
import { labelSize, labelsOn, printLabels, setLabelSize } from "./label.js";
import { unpair } from "./pairing.js";
import { show } from "./screens.js";
import { $, PIN_LOCK_MS, PIN_MAX_TRIES, announce, formatTime, state } from "./state.js";
import { refreshRoster, syncQueue } from "./sync.js";

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
  $("staff-labels").textContent = t(labelsOn() ? "staff_labels_on" : "staff_labels_off");
  $("staff-label-size").value = labelSize();
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

export function wireStaffMenu() {
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
  $("staff-label-size").addEventListener("change", (event) => setLabelSize(event.target.value));
  $("staff-test-label").addEventListener("click", () => {
    $("staff-dialog").close();
    printLabels([
      {
        first_name: t("label_test_first"),
        last_name: t("label_test_last"),
        offers: ["Python", "mentoring"],
        seeks: ["a co-founder"],
        first_time: true,
        event_title: state.pairing?.event?.title || "",
      },
    ]);
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
}
