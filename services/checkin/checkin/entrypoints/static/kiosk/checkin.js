// Checking people in and out, from any screen: online the server decides; when
// it can't be reached, the cached roster decides provisionally and the request
// is queued (see docs/kiosk-api.md).

import { newClientKey } from "./digest.js";
import { groupOf } from "./group.js";
import { t } from "./i18n.js";
import { labelFrom, labelsOn, printLabels } from "./label.js";
import { showAnswer, showRefusal, showResult, rememberOutcome } from "./results.js";
import { markNetwork, scannerEnabled, show, showRevoked } from "./screens.js";
import {
  DOUBTFUL_TIMEOUT_MS,
  DUPLICATE_SCAN_MS,
  ONLINE_TIMEOUT_MS,
  SLOW_ANSWER_MS,
  displayName,
  enqueueWork,
  firstNameOf,
  isVolunteerEvent,
  mightBeOnline,
  state,
} from "./state.js";
import { syncQueue } from "./sync.js";

/**
 * One check-in, check-out or walk-in, from any screen. action: {kind, body,
 * person, onInvalid}. The client key and scan time are fixed here, once, so the
 * online attempt and a queued retry are the same request to the server. `busy`
 * is set while it runs (and by the taps that start it, against double taps).
 * onInvalid(answer) takes a 400 answer to a walk-in (a field to fix).
 */
export async function perform(action) {
  state.busy = true;
  try {
    if (state.pairing && !state.revoked) await attempt(action);
  } finally {
    state.busy = false;
  }
}

async function attempt({ kind, body, person = null, onInvalid = null }) {
  const request = { client_key: newClientKey(), ...body, scanned_at: new Date().toISOString() };
  const registrationId = person?.registration_id || body.registration_id || null;
  const item = {
    kind,
    body: request,
    registration_id: registrationId,
    name: person?.name || (kind === "walkin" ? displayName(body.first_name, body.last_name) : null),
    first_name: person?.first_name || body.first_name || null,
  };
  // Anything of this person's still waiting in the queue goes first: this
  // one waits behind it (a check-out must not overtake its check-in).
  if (mightBeOnline() && !state.queue.hasPendingFor(registrationId)) {
    const slow = setTimeout(() => show("working"), SLOW_ANSWER_MS);
    const answer = await state.api.send(kind, request, state.networkDown ? DOUBTFUL_TIMEOUT_MS : ONLINE_TIMEOUT_MS);
    clearTimeout(slow);
    markNetwork(answer);
    if (answer.kind === "ok") {
      rememberOutcome(kind, registrationId, answer.body);
      showAnswer(kind, answer.body, person);
      if (state.queue.length) syncQueue();
      return;
    }
    if (answer.kind === "unauthorized") return showRevoked();
    if (answer.kind === "rejected") {
      if (onInvalid && answer.status === 400) return onInvalid(answer);
      return showRefusal(answer, person);
    }
    // transient: no answer, so decide offline with the same key and time.
  }
  await performOffline(kind, item, person);
}

async function performOffline(kind, item, person) {
  const provisional = t("provisional");
  if (kind === "walkin") {
    await state.queue.add(item);
    showResult({ tone: "success", title: t("welcome", { name: item.first_name }), detail: t("checked_in"), note: provisional });
    if (labelsOn()) printLabels([walkinLabel(item.body)]);
    return;
  }
  if (!person) {
    // Not on the cached roster: a badge we can't vouch for is never queued.
    return showResult({ tone: "warning", title: t("see_desk"), detail: t("cannot_verify") });
  }
  if (kind === "checkin") {
    const group = { leaderId: person.registration_id, members: groupOf(null, person) };
    if (person.checked_in) {
      const offer = isVolunteerEvent() && !person.checked_out ? person.registration_id : null;
      return showResult({ tone: "info", title: t("already_in", { name: person.name }), offer, group });
    }
    await state.queue.add(item);
    person.checked_in = true;
    showResult({
      tone: "success",
      title: t("welcome", { name: person.first_name || firstNameOf({}, person) }),
      detail: t("checked_in"),
      note: provisional,
      group,
    });
    if (labelsOn()) printLabels([labelFrom({}, person)]);
    return;
  }
  // check-out
  if (!person.checked_in) {
    return showResult({ tone: "warning", title: t("not_now"), detail: t("not_checked_in", { name: person.name }) });
  }
  if (person.checked_out) return showResult({ tone: "info", title: t("already_out", { name: person.name }) });
  await state.queue.add(item);
  person.checked_out = true;
  return showResult({
    tone: "bye",
    title: t("checked_out", { name: person.first_name || firstNameOf({}, person) }),
    note: provisional,
  });
}

/** A walk-in's label offline: the kiosk has what they typed (no first-timer mark: the server knows). */
function walkinLabel(body) {
  const tags = (text) => (Array.isArray(text) ? text : []).slice(0, 3);
  const networking = state.pairing?.event?.kind === "networking";
  return {
    first_name: body.first_name,
    last_name: body.last_name || "",
    offers: networking ? tags(body.offers) : [],
    seeks: networking ? tags(body.seeks) : [],
    first_time: false,
    event_title: state.pairing?.event?.title || "",
  };
}

/** A badge code from the scanner (keyboard wedge) or the camera. */
export async function handleScan(code, { fromCamera = false } = {}) {
  if (!(fromCamera ? state.screen === "camera" : scannerEnabled())) return;
  const now = Date.now();
  const key = `${state.checkoutMode ? "out" : "in"}:${code}`;
  if (key === state.lastScan.key && now - state.lastScan.at < DUPLICATE_SCAN_MS) return;
  state.lastScan = { key, at: now };
  const person = await state.roster.findBadge(code);
  if (state.checkoutMode) {
    return perform({ kind: "checkout", body: { badge_code: code }, person });
  }
  return perform({ kind: "checkin", body: { badge_code: code, method: "qr" }, person });
}

/** A name tapped in the search results. */
export function chooseFromSearch(registrationId) {
  if (state.busy) return; // a double tap is one check-in
  state.busy = true;
  const person = state.roster.get(registrationId) || state.serverMatches.get(registrationId) || null;
  enqueueWork(() =>
    state.checkoutMode
      ? perform({ kind: "checkout", body: { registration_id: registrationId }, person })
      : perform({ kind: "checkin", body: { registration_id: registrationId, method: "search" }, person }),
  );
}
