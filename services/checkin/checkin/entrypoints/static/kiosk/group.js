// Groups: an order of several tickets or a family arrives together. After a
// scan or a name pick, the confirmation offers "Check in the others in your
// group too", listing the others of the person's party (the server's answer
// online, the cached roster's `party` offline): first name and last initial,
// all preselected (they came together; untick who isn't here), those already
// in shown as in, those on the waitlist shown but not offered (they scan their
// own badge). One tap checks the ticked ones in, each as a normal check-in with
// its own client key (a second tap or an offline replay changes nothing);
// offline, each is queued like any scan.

import { newClientKey } from "./digest.js";
import { t } from "./i18n.js";
import { labelFrom, labelsOn, printLabels } from "./label.js";
import { rememberOutcome, showResult } from "./results.js";
import { markNetwork, show, showRevoked } from "./screens.js";
import { $, DOUBTFUL_TIMEOUT_MS, ONLINE_TIMEOUT_MS, SLOW_ANSWER_MS, mightBeOnline, state } from "./state.js";

export const GROUP_OFFER_MS = 30_000; // the confirmation waits longer while it offers the group

let offered = null; // {leaderId, members}

/** The others of the person's group: from the server's answer, else from the cached roster. */
export function groupOf(body, person) {
  if (Array.isArray(body?.group)) return body.group;
  const party = person?.party;
  if (!party) return [];
  return state.roster.people
    .filter((p) => p.party === party && p.registration_id !== person.registration_id)
    .map((p) => ({
      registration_id: p.registration_id,
      name: p.name,
      first_name: p.first_name,
      checked_in: Boolean(p.checked_in),
      waitlisted: Boolean(p.waitlisted),
    }));
}

/** Who can still be checked in with the group (not in yet, not waitlisted). */
const open = (members) => members.filter((m) => !m.checked_in && !m.waitlisted);

export function hideGroupOffer() {
  offered = null;
  $("group-offer").hidden = true;
  $("group-list").replaceChildren();
}

/** Show the group offer on the confirmation; true when there is someone to offer. */
export function offerGroup(leaderId, members) {
  hideGroupOffer();
  if (!leaderId || !open(members).length) return false;
  offered = { leaderId, members };
  const items = members.map((member) => {
    const li = document.createElement("li");
    li.className = "group-member";
    const name = document.createElement("span");
    name.className = "group-name";
    name.textContent = member.name;
    if (member.checked_in || member.waitlisted) {
      li.classList.add(member.checked_in ? "is-in" : "is-waitlisted");
      const note = document.createElement("span");
      note.className = "group-note";
      note.textContent = t(member.checked_in ? "group_already_in" : "group_waitlisted");
      li.append(name, note);
      return li;
    }
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.value = member.registration_id;
    const mark = document.createElement("span");
    mark.className = "check-box";
    mark.setAttribute("aria-hidden", "true");
    label.append(box, mark, name);
    li.append(label);
    return li;
  });
  $("group-list").replaceChildren(...items);
  renderGroupButton();
  $("group-offer").hidden = false;
  return true;
}

function chosen() {
  return Array.from($("group-list").querySelectorAll("input:checked"), (box) => box.value);
}

function renderGroupButton() {
  const n = chosen().length;
  $("group-submit").textContent = n ? t(n === 1 ? "group_submit_one" : "group_submit_other", { n }) : t("group_none");
  $("group-submit").disabled = n === 0;
}

/** One member's check-in, without a screen of its own: what happened to it. */
async function checkInMember(member, leaderId) {
  const body = {
    client_key: newClientKey(),
    registration_id: member.registration_id,
    method: "search",
    group_of: leaderId,
    scanned_at: new Date().toISOString(),
  };
  const person = state.roster.get(member.registration_id) || member;
  if (mightBeOnline() && !state.queue.hasPendingFor(member.registration_id)) {
    const answer = await state.api.send("checkin", body, state.networkDown ? DOUBTFUL_TIMEOUT_MS : ONLINE_TIMEOUT_MS);
    markNetwork(answer);
    if (answer.kind === "ok") {
      rememberOutcome("checkin", member.registration_id, answer.body);
      return { member, outcome: answer.body.status === "checked_in" ? "in" : "already", body: answer.body };
    }
    if (answer.kind === "unauthorized") return { member, outcome: "revoked" };
    if (answer.kind === "rejected") return { member, outcome: "refused", code: answer.code, message: answer.message };
  }
  // Offline: queued like any scan (the server decides when it is sent).
  if (person.checked_in) return { member, outcome: "already" };
  await state.queue.add({
    kind: "checkin",
    body,
    registration_id: member.registration_id,
    name: member.name,
    first_name: member.first_name,
  });
  person.checked_in = true;
  member.checked_in = true;
  return { member, outcome: "queued", body: {} };
}

async function checkInGroup() {
  if (!offered || state.busy) return;
  const { leaderId, members } = offered;
  const ids = new Set(chosen());
  const wanted = members.filter((m) => ids.has(m.registration_id));
  if (!wanted.length) return;
  state.busy = true;
  const slow = setTimeout(() => show("working"), SLOW_ANSWER_MS);
  const results = [];
  try {
    for (const member of wanted) {
      const result = await checkInMember(member, leaderId);
      if (result.outcome === "revoked") {
        clearTimeout(slow);
        return showRevoked();
      }
      results.push(result);
    }
  } finally {
    clearTimeout(slow);
    state.busy = false;
  }
  hideGroupOffer();
  showGroupResult(results);
}

function names(results) {
  return results.map((r) => r.member.first_name || r.member.name).join(", ");
}

function showGroupResult(results) {
  const done = results.filter((r) => r.outcome === "in" || r.outcome === "queued");
  const already = results.filter((r) => r.outcome === "already");
  const refused = results.filter((r) => r.outcome === "refused");
  const parts = [];
  if (done.length) parts.push(t("group_checked_in", { names: names(done) }));
  if (already.length) parts.push(t("group_were_in", { names: names(already) }));
  const note = [
    results.some((r) => r.outcome === "queued") ? t("provisional") : "",
    ...refused.map((r) => `${r.member.name}: ${r.code === "waitlisted_in_group" ? t("group_waitlisted") : r.message || t("generic_error")}`),
  ]
    .filter(Boolean)
    .join(" ");
  showResult({
    tone: refused.length && !done.length ? "warning" : "success",
    title: done.length ? t("group_welcome") : t("not_now"),
    detail: parts.join(" "),
    note,
  });
  if (labelsOn() && done.length) printLabels(done.map((r) => labelFrom(r.body, state.roster.get(r.member.registration_id) || r.member)));
}

export function wireGroup() {
  $("group-list").addEventListener("change", renderGroupButton);
  $("group-offer").addEventListener("submit", (event) => {
    event.preventDefault();
    checkInGroup();
  });
  $("group-skip").addEventListener("click", () => {
    hideGroupOffer();
    show("idle");
  });
}

/** What a screen reader is told of the offer. */
export function groupAnnouncement(members) {
  const n = open(members).length;
  return t(n === 1 ? "group_offer_one" : "group_offer_other", { n });
}
