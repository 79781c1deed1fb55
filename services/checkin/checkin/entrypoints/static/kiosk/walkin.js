// The walk-in form: someone who did not register signs up and is checked in at once.

import { perform } from "./checkin.js";
import { getLang, t } from "./i18n.js";
import { onScreen, show, touchForm } from "./screens.js";
import { $, announce, enqueueWork, state } from "./state.js";

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
  // "true", not an empty attribute: screen readers ignore aria-invalid="".
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function resetWalkinForm() {
  $("walkin-form").reset();
  for (const id of Object.values(WALKIN_FIELDS)) setFieldError(id, "");
}

export function openWalkin() {
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
  enqueueWork(() => perform({ kind: "walkin", body, onInvalid: showWalkinError }));
}

/** The server refused a field (400): back to the form, the field marked. */
function showWalkinError(answer) {
  show("walkin");
  const field = String(answer.field || "").split(".")[0];
  const id = WALKIN_FIELDS[field] || "walkin-first";
  const message = field === "email" ? t("field_email") : t("field_invalid");
  setFieldError(id, getLang() === "en" && answer.message ? answer.message : message);
  $(id).focus();
  announce($(`${id}-error`).textContent, true);
}

export function wireWalkin() {
  onScreen("walkin", { resetOnIdle: resetWalkinForm });
  $("walkin-button").addEventListener("click", openWalkin);
  $("search-walkin").addEventListener("click", openWalkin);
  $("walkin-form").addEventListener("submit", submitWalkin);
  $("walkin-form").addEventListener("input", touchForm);
}
