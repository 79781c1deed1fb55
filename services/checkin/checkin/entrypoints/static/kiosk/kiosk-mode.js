// Kiosk mode: while paired the page guards against being left (beforeunload,
// the back button, the context menu) and keeps the screen awake.

import { t } from "./i18n.js";
import { state } from "./state.js";

export function onBeforeUnload(event) {
  if (!state.kioskMode) return undefined;
  event.preventDefault();
  event.returnValue = t("leave_warning");
  return event.returnValue;
}

export function onPopState() {
  if (state.kioskMode) history.pushState({ kiosk: true }, "", location.href);
}

export function enterKioskMode() {
  if (!state.kioskMode) {
    state.kioskMode = true;
    history.pushState({ kiosk: true }, "", location.href);
  }
  requestWakeLock();
}

export function leaveKioskMode() {
  state.kioskMode = false;
  if (state.wakeLock) state.wakeLock.release().catch(() => {});
  state.wakeLock = null;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
}

export async function requestWakeLock() {
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
