// The two ways a badge's code reaches the page:
//
// 1. USB/Bluetooth scanners, which act as keyboards: they "type" the code very
//    fast and press Enter. A focused-but-invisible input (the "sink") catches
//    them on the idle screen; a document-wide keydown buffer catches them
//    anywhere else, told apart from people typing by the speed of the burst.
// 2. The camera, through the browser's BarcodeDetector where it exists, or the
//    jsQR decoder (vendored from npm) where it doesn't. If neither is there,
//    the camera is simply not offered: the page keeps working.

const SCANNER_MAX_GAP_MS = 100; // longest pause between two keys of one scan
const SCANNER_MAX_AVG_MS = 40; // scanners type faster than any person
const MIN_CODE_LENGTH = 4;
const MAX_CODE_LENGTH = 200;

function isTextField(el) {
  if (!el) return false;
  if (el.isContentEditable) return true;
  if (el.tagName === "TEXTAREA") return true;
  return el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type);
}

/**
 * Listens for scanner bursts. onScan(code) gets each code; enabled() says
 * whether scans are wanted right now (not while pairing or a dialog is open).
 */
export function listenForScanner({ sink, onScan, enabled }) {
  let buffer = "";
  let first = 0;
  let last = 0;

  const reset = () => {
    buffer = "";
    first = 0;
    last = 0;
  };

  document.addEventListener(
    "keydown",
    (event) => {
      if (!enabled()) {
        reset();
        return;
      }
      if (event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
      const now = performance.now();
      if (event.key === "Enter" || event.key === "Tab") {
        const fromSink = event.target === sink;
        const count = buffer.length;
        const fast =
          count >= MIN_CODE_LENGTH &&
          now - last <= SCANNER_MAX_GAP_MS &&
          (count < 2 || (last - first) / (count - 1) <= SCANNER_MAX_AVG_MS);
        let code = null;
        if (fromSink && event.key === "Enter") code = sink.value.trim() || buffer;
        else if (fast) code = buffer;
        if (code && code.length >= MIN_CODE_LENGTH && code.length <= MAX_CODE_LENGTH) {
          event.preventDefault();
          event.stopPropagation();
          const target = event.target;
          if (!fromSink && isTextField(target) && typeof target.value === "string" && target.value.endsWith(buffer)) {
            // The scanner typed into a form field: take its characters back out.
            target.value = target.value.slice(0, target.value.length - buffer.length);
            target.dispatchEvent(new Event("input", { bubbles: true }));
          }
          if (sink) sink.value = "";
          reset();
          onScan(code.trim());
          return;
        }
        if (fromSink) sink.value = "";
        reset();
        return;
      }
      if (event.key.length === 1) {
        if (!last || now - last > SCANNER_MAX_GAP_MS) {
          buffer = "";
          first = now;
        }
        buffer += event.key;
        last = now;
        if (buffer.length > MAX_CODE_LENGTH) reset();
      } else if (event.key !== "Shift" && event.key !== "CapsLock") {
        reset();
      }
    },
    true,
  );
}

// -- camera -------------------------------------------------------------------

let jsqrLoading = null;

/** Loads vendor/jsQR.js once; resolves to the jsQR function or null if it's missing. */
function loadJsQr(src) {
  if (typeof globalThis.jsQR === "function") return Promise.resolve(globalThis.jsQR);
  if (!jsqrLoading) {
    jsqrLoading = new Promise((resolve) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => resolve(typeof globalThis.jsQR === "function" ? globalThis.jsQR : null);
      script.onerror = () => {
        script.remove();
        jsqrLoading = null; // maybe it's there next time (e.g. after a deploy)
        resolve(null);
      };
      document.head.append(script);
    });
  }
  return jsqrLoading;
}

async function nativeDetector() {
  if (!("BarcodeDetector" in globalThis)) return null;
  try {
    const formats = await globalThis.BarcodeDetector.getSupportedFormats();
    if (!formats.includes("qr_code")) return null;
    const detector = new globalThis.BarcodeDetector({ formats: ["qr_code"] });
    return async (video) => {
      const codes = await detector.detect(video);
      return codes.length ? codes[0].rawValue : null;
    };
  } catch {
    return null;
  }
}

async function jsqrDetector(jsqrSrc) {
  const jsQR = await loadJsQr(jsqrSrc);
  if (!jsQR) return null;
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  return async (video) => {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) return null;
    const scale = Math.min(1, 640 / width);
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    const found = jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
    return found ? found.data : null;
  };
}

/** Whether the browser could show a camera at all (the decoder is checked on start). */
export function cameraPossible() {
  return Boolean(navigator.mediaDevices?.getUserMedia);
}

/**
 * Starts the camera into `video` and calls onCode(code) once for the first QR
 * code seen. Resolves to a stop() function, or throws an Error whose message
 * is "unavailable" (no decoder / no camera API) or "denied" (no camera).
 */
export async function startCamera(video, onCode, { jsqrSrc }) {
  if (!cameraPossible()) throw new Error("unavailable");
  const detect = (await nativeDetector()) || (await jsqrDetector(jsqrSrc));
  if (!detect) throw new Error("unavailable");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch {
    throw new Error("denied");
  }
  video.srcObject = stream;
  video.setAttribute("playsinline", "");
  video.muted = true;
  await video.play().catch(() => {});
  let running = true;
  let timer = null;

  const stop = () => {
    running = false;
    clearTimeout(timer);
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  };

  const tick = async () => {
    if (!running) return;
    try {
      const code = video.readyState >= 2 ? await detect(video) : null;
      if (code && running) {
        stop();
        onCode(code);
        return;
      }
    } catch {
      // a frame that couldn't be read: try the next one
    }
    if (running) timer = setTimeout(tick, 150);
  };
  tick();
  return stop;
}
