/* The event page's kiosk card: pair a new kiosk, issue a fresh pairing code, revoke. */
import { call, el, pageData, say } from "./turnout.js";

const { eventId } = pageData();
const message = document.getElementById("pair-message");
const result = document.getElementById("pair-result");
const notReady = "Kiosk pairing isn't available on this server yet.";

function showCode(data) {
  result.hidden = false;
  document.getElementById("pair-code").textContent = data.pairing_code || "";
  const expiry = data.pairing_expires_at ? new Date(data.pairing_expires_at) : null;
  document.getElementById("pair-expiry").textContent = expiry ? "Expires at " + expiry.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hourCycle: "h23"}) + "." : "";
  result.scrollIntoView({ block: "nearest" });
}

function explain(answer) {
  return (answer.status === 404 && answer.code === "not_found") || answer.status === 405 ? notReady : answer.message;
}

document.getElementById("pair-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const form = submitted.target;
  const name = form.name.value.trim();
  const pin = form.staff_pin.value.trim();
  if (!name) { say(message, "error", "Give the kiosk a name, like “Front door”."); form.name.focus(); return; }
  if (!/^[0-9]{4,8}$/.test(pin)) { say(message, "error", "The staff PIN is 4 to 8 digits."); form.staff_pin.focus(); return; }
  const button = form.querySelector("button");
  button.disabled = true;
  const answer = await call("POST", "/api/v1/events/" + encodeURIComponent(eventId) + "/kiosks", { name, staff_pin: pin });
  button.disabled = false;
  if (!answer.ok) { result.hidden = true; say(message, "error", explain(answer)); return; }
  say(message, "ok", "Kiosk “" + (answer.data.name || name) + "” is ready to pair.");
  showCode(answer.data);
  form.reset();
  const body = document.querySelector("#kiosk-table tbody");
  const none = body.querySelector("tr.none");
  if (none) none.remove();
  body.append(el("tr", {},
    el("td", {}, el("strong", { text: answer.data.name || name })),
    el("td", {}, el("span", { class: "pill unpaired", text: "Unpaired" })),
    el("td", { text: "never" }), el("td", { class: "num", text: "0" }),
    el("td", { class: "num", text: "0" }), el("td", { class: "muted small", text: "Reload for actions" })));
});

document.getElementById("kiosk-table").addEventListener("click", async (clicked) => {
  const button = clicked.target.closest("button[data-action]");
  if (!button) return;
  const kioskId = button.dataset.kiosk;
  if (button.dataset.action === "revoke") {
    if (!confirm("Revoke “" + (button.dataset.name || "this kiosk") + "”? The tablet stops working at once.")) return;
    button.disabled = true;
    const answer = await call("POST", "/api/v1/kiosks/" + encodeURIComponent(kioskId) + "/revoke");
    button.disabled = false;
    if (!answer.ok) { say(message, "error", explain(answer)); return; }
    const row = button.closest("tr");
    row.querySelector(".kiosk-status").replaceChildren(el("span", { class: "pill revoked", text: "Revoked" }));
    row.querySelectorAll("button").forEach((b) => b.remove());
    say(message, "ok", "Kiosk revoked.");
  } else {
    button.disabled = true;
    const answer = await call("POST", "/api/v1/kiosks/" + encodeURIComponent(kioskId) + "/pairing-code");
    button.disabled = false;
    if (!answer.ok) { say(message, "error", explain(answer)); return; }
    say(message, "ok", "A fresh pairing code for this kiosk:");
    showCode(answer.data);
  }
});
