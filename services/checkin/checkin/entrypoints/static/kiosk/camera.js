// The camera screen: tablets without a badge scanner read the QR code with
// the camera (BarcodeDetector, or the vendored jsQR; scanner.js).

import { handleScan } from "./checkin.js";
import { t } from "./i18n.js";
import { startCamera } from "./scanner.js";
import { onScreen, show } from "./screens.js";
import { $, CAMERA_MAX_MS, JSQR_URL, announce, enqueueWork, state } from "./state.js";

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

export function wireCamera() {
  onScreen("camera", { leave: closeCamera });
  $("camera-button").addEventListener("click", openCamera);
}
