// A name-only person (has_email: false, e.g. imported from a Meetup roster) who
// checks in is asked, once per person on this kiosk, for an email, with the
// consent box unticked; "No thanks" is as easy as saving. Given an address,
// they become a normal contact (POST /kiosk/registrations/<id>/email, see
// docs/kiosk-api.md).
//
// Offline it is not asked, and an address that cannot be sent is not queued:
// the person is told "we'll ask next time" and is asked at their next check-in.
// An address is personal data typed by someone standing here: it is sent now
// or not kept at all (the server also needs their check-in to have arrived).

import { t } from "./i18n.js";
import { showResult } from "./results.js";
import { show, showRevoked } from "./screens.js";
import { $, ONLINE_TIMEOUT_MS, isOnline, state } from "./state.js";

export const EMAIL_PROMPT_MS = 45_000; // the confirmation waits this long while it asks (longer while typing)
const ASKED_KEY = "email_asked";
const ASKED_MAX = 5000; // registration ids remembered on this tablet
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

let asking = null; // the registration id asked for
let asked = null; // Set of registration ids asked on this kiosk

export async function loadAsked() {
  const saved = await state.store?.get(ASKED_KEY).catch(() => null);
  asked = new Set(Array.isArray(saved) ? saved : []);
}

async function remember(registrationId, yes) {
  if (!asked) asked = new Set();
  if (yes) asked.add(registrationId);
  else asked.delete(registrationId);
  const ids = Array.from(asked).slice(-ASKED_MAX);
  await state.store?.set(ASKED_KEY, ids).catch(() => {});
}

export function hideEmailPrompt() {
  asking = null;
  $("email-prompt").hidden = true;
}

/** Ask this person for an email if they have none and were not asked here before; true when asked. */
export function maybeAskEmail(registrationId, hasEmail) {
  hideEmailPrompt();
  if (hasEmail !== false || !registrationId || !isOnline() || asked?.has(registrationId)) return false;
  asking = registrationId;
  $("email-prompt-input").value = "";
  $("email-prompt-input").removeAttribute("aria-invalid");
  $("email-prompt-error").textContent = "";
  $("email-prompt-consent").checked = false;
  $("email-prompt").hidden = false;
  // Asked once: showing it counts (walking away is skipping); a failed send takes it back.
  remember(registrationId, true);
  return true;
}

function fieldError(text) {
  $("email-prompt-error").textContent = text;
  $("email-prompt-input").setAttribute("aria-invalid", "true");
  $("email-prompt-input").focus();
}

async function save() {
  const registrationId = asking;
  if (!registrationId || state.busy) return;
  const email = $("email-prompt-input").value.trim();
  const consent = $("email-prompt-consent").checked;
  if (!EMAIL.test(email) || email.length > 254) return fieldError(t("field_email"));
  state.busy = true;
  let answer;
  try {
    answer = await state.api.giveEmail(registrationId, email, consent, ONLINE_TIMEOUT_MS);
  } finally {
    state.busy = false;
  }
  if (answer.kind === "unauthorized") return showRevoked();
  if (answer.kind === "rejected" && answer.status === 400) return fieldError(t("field_email"));
  hideEmailPrompt();
  if (answer.kind === "ok") {
    return showResult({
      tone: "success",
      title: t("email_thanks"),
      detail: t(answer.body.consent_email ? "email_saved_consent" : "email_saved"),
    });
  }
  if (answer.kind === "rejected" && answer.code === "email_already_set") {
    return showResult({ tone: "info", title: t("email_thanks"), detail: t("email_already_set") });
  }
  if (answer.kind === "rejected" && answer.code === "email_taken") {
    return showResult({ tone: "warning", title: t("not_now"), detail: t("email_taken") });
  }
  // No answer, or the check-in has not reached the server yet: nothing is kept; ask next time.
  await remember(registrationId, false);
  return showResult({ tone: "info", title: t("email_later_title"), detail: t("email_later") });
}

export function wireEmailPrompt() {
  $("email-prompt").addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  $("email-prompt-skip").addEventListener("click", () => {
    hideEmailPrompt();
    show("idle");
  });
}

/** While they type, the confirmation stays. */
export function onEmailInput(holdResult) {
  $("email-prompt-input").addEventListener("input", () => {
    $("email-prompt-input").removeAttribute("aria-invalid");
    $("email-prompt-error").textContent = "";
    holdResult(EMAIL_PROMPT_MS);
  });
}
