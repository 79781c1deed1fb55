/* The door staff view: live arrivals and counts, search and check in, undo;
   after a check-in, the others of the person's group (same party) to check in
   too, and a link to their name label when the event prints labels. */
import { call, el, key, pageData, say, time } from "./turnout.js";

const { eventId, timeZone, canCheckin, nameLabels } = pageData();
const base = "/api/v1/events/" + encodeURIComponent(eventId);
const list = document.getElementById("arrivals");
const none = document.getElementById("no-arrivals");
const live = document.getElementById("live");
const OVERLAP_MS = 10000;   // re-ask for the last 10 s: a check-in may commit after its timestamp
const FULL_EVERY = 15;      // a full refresh every 30 s also drops check-ins undone elsewhere
let latest = 0;
let polls = 0;
let timer = null;

function keyOf(arrival) { return arrival.registration_id + "|" + arrival.checked_in_at; }

for (const item of list.children) {
  const at = Date.parse(item.dataset.key.split("|")[1]);
  if (at > latest) latest = at;
}

function arrivalItem(arrival, fresh) {
  const where = arrival.kiosk_name || (arrival.kiosk_id ? "Kiosk" : "No kiosk");
  const methods = { qr: "QR badge", search: "Name search", "walk-in": "Walk-in", staff: "Staff" };
  return el("li", { "data-key": keyOf(arrival), "data-registration": arrival.registration_id, class: fresh ? "fresh" : null },
    el("div", {},
      el("div", { class: "who-line", text: arrival.name }),
      el("div", { class: "detail" },
        el("time", { datetime: arrival.checked_in_at, text: time(arrival.checked_in_at, timeZone) }),
        " · " + where + " · " + (methods[arrival.method] || arrival.method || ""))),
    canCheckin ? el("div", { class: "act" },
      el("button", { type: "button", class: "small danger", "data-undo": arrival.registration_id, "data-name": arrival.name, text: "Undo" })) : null);
}

function showCounts(counts) {
  document.getElementById("count-in").textContent = counts.checked_in;
  document.getElementById("count-registered").textContent = counts.registered;
  document.getElementById("count-waitlisted").textContent = counts.waitlisted;
  document.getElementById("count-expected").textContent = Math.max(0, counts.registered - counts.checked_in);
}

function setLive(ok) {
  live.replaceChildren(el("span", { class: ok ? "live-dot" : "live-dot off", "aria-hidden": "true" }),
    ok ? "Live" : "Offline, retrying…");
}

async function poll(full) {
  const since = full || !latest ? "" : "&since=" + encodeURIComponent(new Date(latest - OVERLAP_MS).toISOString());
  const answer = await call("GET", base + "/arrivals?limit=" + (full ? 30 : 50) + since);
  setLive(answer.ok);
  if (!answer.ok) return;
  showCounts(answer.data.counts);
  const arrivals = answer.data.arrivals;
  const known = new Set(Array.from(list.children, (item) => item.dataset.key));
  if (full) {
    list.replaceChildren(...arrivals.map((arrival) => arrivalItem(arrival, !known.has(keyOf(arrival)))));
  } else {
    for (const arrival of arrivals.slice().reverse()) {
      if (known.has(keyOf(arrival))) continue;
      list.querySelectorAll('[data-registration="' + CSS.escape(arrival.registration_id) + '"]').forEach((old) => old.remove());
      list.prepend(arrivalItem(arrival, true));
    }
    while (list.children.length > 60) list.lastElementChild.remove();
  }
  for (const arrival of arrivals) latest = Math.max(latest, Date.parse(arrival.checked_in_at));
  none.hidden = list.children.length > 0;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    if (!document.hidden) {
      polls += 1;
      await poll(polls % FULL_EVERY === 0);
    }
    schedule();
  }, 2000);
}
document.addEventListener("visibilitychange", () => { if (!document.hidden) { poll(false); } });
schedule();

if (canCheckin) {
  const message = document.getElementById("checkin-message");
  const search = document.getElementById("search");
  const results = document.getElementById("results");
  let searchTimer = null;
  let searchSeq = 0;

  const runSearch = async () => {
    const text = search.value.trim();
    const seq = ++searchSeq;
    if (!text) { results.replaceChildren(); return; }
    const answer = await call("GET", base + "/registrations/search?limit=10&q=" + encodeURIComponent(text));
    if (seq !== searchSeq) return;  // a newer search is on its way
    if (!answer.ok) { say(message, "error", answer.message); return; }
    if (!answer.data.results.length) {
      results.replaceChildren(el("li", {}, el("div", { class: "detail", text: "Nobody registered matches “" + text + "”. Walk-ins can register at a kiosk." })));
      return;
    }
    results.replaceChildren(...answer.data.results.map(resultItem));
  };

  const resultItem = (person) => {
    let action;
    let state;
    if (person.status === "cancelled") {
      state = "Registration cancelled — send them to the front desk";
      action = null;
    } else if (person.checked_in) {
      state = "Checked in at " + time(person.checked_in_at, timeZone);
      action = el("button", { type: "button", class: "small danger", "data-undo": person.registration_id, "data-name": person.name, text: "Undo" });
    } else {
      state = person.status === "waitlisted" ? "On the waitlist" : "Not checked in yet";
      action = el("button", { type: "button", class: "good", "data-checkin": person.registration_id, "data-name": person.name, text: "Check in" });
    }
    return el("li", {},
      el("div", {},
        el("div", { class: "who-line", text: person.name }),
        el("div", { class: "detail", text: person.email + " · " + state })),
      el("div", { class: "act" }, action));
  };

  const groupForm = document.getElementById("group-offer");
  const groupMembers = document.getElementById("group-members");
  let group = null;  // {leaderId, leaderName}

  const labelLink = (registrationId, name) => el("a", {
    class: "button small", target: "_blank", rel: "noopener",
    href: "/events/" + encodeURIComponent(eventId) + "/registrations/" + encodeURIComponent(registrationId) + "/label",
    text: "Print " + name + "'s name label",
  });

  const hideGroup = () => { group = null; groupForm.hidden = true; groupMembers.replaceChildren(); };

  // The others of the person's group: those not in yet ticked (they came together),
  // those in shown as in, the waitlisted shown but not offered.
  const offerGroup = (leaderId, leaderName, members) => {
    hideGroup();
    if (!members || !members.some((m) => !m.checked_in && !m.waitlisted)) return;
    group = { leaderId, leaderName };
    document.getElementById("group-title").textContent = "Check in the others in " + leaderName + "'s group too?";
    groupMembers.replaceChildren(...members.map((member) => {
      if (member.checked_in || member.waitlisted) {
        return el("p", { class: "detail", text: member.name + " · " + (member.checked_in ? "already checked in" : "on the waitlist: check them in from the search") });
      }
      return el("label", { class: "check" },
        el("input", { type: "checkbox", value: member.registration_id, "data-name": member.name, checked: true }), member.name);
    }));
    groupForm.hidden = false;
  };

  const checkInGroup = async () => {
    if (!group) return;
    const boxes = Array.from(groupMembers.querySelectorAll("input:checked"));
    if (!boxes.length) { hideGroup(); return; }
    const done = [];
    const problems = [];
    for (const box of boxes) {
      const answer = await call("POST", base + "/checkins", {
        registration_id: box.value, method: "staff", client_key: key(), group_of: group.leaderId });
      if (answer.ok) done.push({ id: box.value, name: box.dataset.name, fresh: answer.status === 201 });
      else problems.push(box.dataset.name + ": " + answer.message);
    }
    hideGroup();
    const fresh = done.filter((d) => d.fresh).map((d) => d.name);
    const already = done.filter((d) => !d.fresh).map((d) => d.name);
    const parts = [];
    if (fresh.length) parts.push("Checked in: " + fresh.join(", ") + ".");
    if (already.length) parts.push("Already in: " + already.join(", ") + ".");
    parts.push(...problems);
    say(message, problems.length ? "warn" : "ok", parts.join(" "));
    if (nameLabels) for (const d of done.filter((each) => each.fresh)) message.append(" ", labelLink(d.id, d.name));
    runSearch();
    poll(false);
  };
  groupForm.addEventListener("submit", (submitted) => { submitted.preventDefault(); checkInGroup(); });
  document.getElementById("group-skip").addEventListener("click", hideGroup);

  const checkIn = async (registrationId, name, override) => {
    const body = { registration_id: registrationId, method: "staff", client_key: key() };
    if (override) body.override = true;
    hideGroup();
    const answer = await call("POST", base + "/checkins", body);
    if (answer.ok) {
      say(message, answer.status === 201 ? "ok" : "info", answer.data.message);
      if (nameLabels && answer.status === 201) message.append(" ", labelLink(registrationId, name));
      offerGroup(registrationId, name, answer.data.group);
    } else if (answer.code === "checkin_not_open" || answer.code === "checkin_closed") {
      say(message, "warn", answer.message + " ");
      message.append(el("button", { type: "button", class: "small", text: "Check " + name + " in anyway",
        onclick: () => checkIn(registrationId, name, true) }));
    } else {
      say(message, "error", answer.message);
    }
    runSearch();
    poll(false);
  };

  const undo = async (registrationId, name) => {
    if (!confirm("Undo " + name + "'s check-in? It is recorded in the audit log.")) return;
    const answer = await call("POST", base + "/checkins/" + encodeURIComponent(registrationId) + "/undo");
    if (!answer.ok) { say(message || document.body, "error", answer.message); return; }
    say(message, "ok", answer.data.message);
    list.querySelectorAll('[data-registration="' + CSS.escape(registrationId) + '"]').forEach((item) => item.remove());
    none.hidden = list.children.length > 0;
    runSearch();
    poll(false);
  };

  document.getElementById("search-form").addEventListener("submit", (submitted) => submitted.preventDefault());
  search.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 200); });
  document.addEventListener("click", (clicked) => {
    const button = clicked.target.closest("button[data-checkin], button[data-undo]");
    if (!button) return;
    if (button.dataset.checkin) checkIn(button.dataset.checkin, button.dataset.name, false);
    else undo(button.dataset.undo, button.dataset.name);
  });
}
