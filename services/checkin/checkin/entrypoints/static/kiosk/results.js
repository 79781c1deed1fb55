// The result screen: the server's answer (or the offline decision) in large type,
// read out to screen readers, then back to idle after a countdown.

import { EMAIL_PROMPT_MS, hideEmailPrompt, maybeAskEmail } from "./email-prompt.js";
import { GROUP_OFFER_MS, groupAnnouncement, groupOf, hideGroupOffer, offerGroup } from "./group.js";
import { formatNumber, getLang, ordinal, t } from "./i18n.js";
import { labelFrom, labelsOn, printLabels } from "./label.js";
import { show } from "./screens.js";
import {
  $,
  RESULT_MS,
  RESULT_WITH_OFFER_MS,
  announce,
  firstNameOf,
  formatTime,
  isVolunteerEvent,
  state,
} from "./state.js";

const ICONS = {
  success: '<svg viewBox="0 0 64 64"><circle cx="32" cy="32" r="30"/><path d="M19 33l9 9 17-19"/></svg>',
  info: '<svg viewBox="0 0 64 64"><circle cx="32" cy="32" r="30"/><path d="M32 29v17M32 19v1"/></svg>',
  warning: '<svg viewBox="0 0 64 64"><path d="M32 5l29 52H3z"/><path d="M32 25v14M32 47v1"/></svg>',
  bye: '<svg viewBox="0 0 64 64"><circle cx="32" cy="32" r="30"/><path d="M27 20h-7v24h7M36 24l9 8-9 8M45 32H26"/></svg>',
};

/**
 * tone: success | info | warning | bye; offer: a registration id to offer
 * check-out for (volunteer events); group: {leaderId, members} to offer
 * checking in the others of the person's group; email: {registrationId,
 * hasEmail} to ask a name-only person for an email (not while a group is offered).
 */
export function showResult({ tone, title, detail = "", note = "", offer = null, group = null, email = null }) {
  $("result").dataset.tone = tone;
  $("result-icon").innerHTML = ICONS[tone] || ICONS.info;
  $("result-title").textContent = title;
  $("result-detail").textContent = detail;
  $("result-note-text").textContent = note;
  $("result-note").hidden = !note;
  $("result-actions").hidden = !offer;
  $("result-checkout").dataset.registrationId = offer || "";
  state.checkoutMode = false;
  const grouped = group ? offerGroup(group.leaderId, group.members) : (hideGroupOffer(), false);
  const askingEmail = !grouped && email ? maybeAskEmail(email.registrationId, email.hasEmail) : (hideEmailPrompt(), false);
  show("result");
  const sentences = [title, detail, note].filter(Boolean).map((part) => (/[.!?…]$/.test(part) ? part : `${part}.`));
  if (grouped) sentences.push(groupAnnouncement(group.members));
  if (askingEmail) sentences.push(t("email_prompt_title"));
  announce(sentences.join(" "), tone === "warning");
  holdResult(grouped ? GROUP_OFFER_MS : askingEmail ? EMAIL_PROMPT_MS : offer ? RESULT_WITH_OFFER_MS : RESULT_MS);
}

/** Back to idle after `duration` ms from now, with the countdown bar showing it. */
export function holdResult(duration) {
  // The countdown bar is animated through the CSSOM (allowed by the CSP's style-src 'self').
  const bar = $("countdown-bar");
  bar.style.transition = "none";
  bar.style.transform = "scaleX(1)";
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      bar.style.transition = `transform ${duration}ms linear`;
      bar.style.transform = "scaleX(0)";
    }),
  );
  clearTimeout(state.resultTimer);
  state.resultTimer = setTimeout(() => {
    if (state.screen === "result") show("idle");
  }, duration);
}

/** Keep the cached roster in step with what the server decided. */
export function rememberOutcome(kind, registrationId, body = {}) {
  const person = state.roster.get(registrationId || body.registration_id);
  if (!person) return;
  if (kind === "checkin" || kind === "walkin") person.checked_in = true;
  if (body.status === "checked_out" || body.status === "already_checked_out") person.checked_out = true;
}

/** The server decided (2xx): show its answer. */
export function showAnswer(kind, body, person) {
  const name = body.name || person?.name || "";
  const first = firstNameOf(body, person);
  const registrationId = body.registration_id || person?.registration_id || null;
  const group = kind === "checkin" && registrationId ? { leaderId: registrationId, members: groupOf(body, person) } : null;
  switch (body.status) {
    case "checked_in": {
      let detail;
      if (body.first_time_ever) detail = t("first_time");
      else if (body.visit_number > 1) detail = t("welcome_back", { ordinal: ordinal(body.visit_number) });
      else detail = getLang() === "en" && body.message ? body.message : t("checked_in");
      const email = { registrationId, hasEmail: body.has_email ?? person?.has_email };
      showResult({ tone: "success", title: t("welcome", { name: first }), detail, group, email });
      if (labelsOn()) printLabels([labelFrom(body, person)]);
      return;
    }
    case "already_checked_in": {
      const offer = isVolunteerEvent() && !person?.checked_out && registrationId ? registrationId : null;
      return showResult({
        tone: "info",
        title: t("already_in", { name }),
        detail: body.checked_in_at ? t("already_in_since", { time: formatTime(body.checked_in_at) }) : "",
        offer,
        group,
      });
    }
    case "checked_out":
      return showResult({ tone: "bye", title: t("checked_out", { name: first }), detail: hoursText(body) });
    case "already_checked_out":
      return showResult({ tone: "info", title: t("already_out", { name }), detail: hoursText(body) });
    default:
      return showResult({ tone: "success", title: body.message || t("checked_in") });
  }
}

function hoursText(body) {
  if (typeof body.hours !== "number") return "";
  if (typeof body.total_hours === "number") {
    return t("hours_today", { hours: formatNumber(body.hours), total: formatNumber(body.total_hours) });
  }
  return t("hours_only", { hours: formatNumber(body.hours) });
}

const REFUSAL_KEYS = {
  unknown_badge: "unknown_badge",
  wrong_event: "wrong_event",
  registration_cancelled: "registration_cancelled",
  checkin_not_open: "checkin_not_open",
  checkin_closed: "checkin_closed",
};

/** The server said no (4xx): say why, in the kiosk's language. */
export function showRefusal(answer, person) {
  let detail;
  if (answer.code === "not_checked_in") {
    detail = person?.name ? t("not_checked_in", { name: person.name }) : t("not_checked_in_anon");
  } else if (REFUSAL_KEYS[answer.code]) {
    detail = t(REFUSAL_KEYS[answer.code]);
  } else if (getLang() === "en" && answer.message) {
    detail = answer.message;
  } else {
    detail = t("generic_error");
  }
  showResult({ tone: "warning", title: t("not_now"), detail });
}
