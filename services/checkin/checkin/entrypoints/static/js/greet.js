/* The greeter's phone page: first-timers as they check in (newest first) and a
   "Welcomed" button each. Asks the server every second (see docs/greeters.md for
   why polling and not a held connection); every 10th ask is a full refresh, which
   also shows welcomes made by other greeters. The signed link is the key. */
import { call, el, pageData, say, time } from "./turnout.js";

const { token, timeZone } = pageData();
const base = "/api/v1/greet/" + encodeURIComponent(token);
const list = document.getElementById("first-timers");
const none = document.getElementById("no-first-timers");
const live = document.getElementById("live");
const message = document.getElementById("greet-message");
const EVERY_MS = 1000;
const OVERLAP_MS = 10000;   // re-ask for the last 10 s: a check-in may commit after its timestamp
const FULL_EVERY = 10;
let latest = 0;
let polls = 0;
let timer = null;
let busy = false;

for (const item of list.querySelectorAll("time")) latest = Math.max(latest, Date.parse(item.getAttribute("datetime")));

function doneLine(person) {
  return el("p", { class: "greet-done" }, el("span", { "aria-hidden": "true", text: "✓" }),
    " Welcomed by " + person.welcomed_by + " at " + time(person.welcomed_at, timeZone));
}

function tags(label, values) {
  if (!values || !values.length) return null;
  return el("p", { class: "greet-tags" }, el("span", { class: "greet-tag-label", text: label }), " " + values.join(", "));
}

function item(person, fresh) {
  const classes = [person.welcomed ? "welcomed" : "", fresh ? "fresh" : ""].filter(Boolean).join(" ");
  return el("li", { "data-registration": person.registration_id, class: classes || null },
    el("div", { class: "greet-person" },
      el("p", { class: "greet-name", text: person.name }),
      tags("Can offer:", person.offers),
      tags("Looking for:", person.seeks),
      el("p", { class: "greet-time" }, "Checked in ",
        el("time", { datetime: person.checked_in_at, text: time(person.checked_in_at, timeZone) }))),
    person.welcomed ? doneLine(person)
      : el("button", { type: "button", class: "greet-button", "data-welcome": person.registration_id },
        "Welcomed ", el("span", { class: "visually-hidden", text: person.first_name })));
}

function setLive(ok) {
  live.replaceChildren(el("span", { class: ok ? "live-dot" : "live-dot off", "aria-hidden": "true" }),
    ok ? "Live" : "Offline, retrying…");
}

function place(person) {
  const old = list.querySelector('[data-registration="' + CSS.escape(person.registration_id) + '"]');
  if (old) {
    if (person.welcomed && !old.classList.contains("welcomed")) old.replaceWith(item(person, false));
    return false;
  }
  // Newest first: before the first shown who checked in earlier.
  const at = Date.parse(person.checked_in_at);
  const later = Array.from(list.children).find((child) => Date.parse(child.querySelector("time").getAttribute("datetime")) < at);
  list.insertBefore(item(person, true), later || null);
  return true;
}

async function poll(full) {
  const since = full || !latest ? "" : "?since=" + encodeURIComponent(new Date(latest - OVERLAP_MS).toISOString());
  const answer = await call("GET", base + "/arrivals" + since);
  setLive(answer.ok);
  if (!answer.ok) {
    if (answer.status === 404) { say(message, "error", answer.message); return false; }
    return true;
  }
  let arrived = false;
  for (const person of answer.data.first_timers.slice().reverse()) {
    if (place(person)) arrived = true;
    latest = Math.max(latest, Date.parse(person.checked_in_at));
  }
  while (list.children.length > 60) list.lastElementChild.remove();
  none.hidden = list.children.length > 0;
  if (arrived && navigator.vibrate) navigator.vibrate(200);
  return true;
}

/* One ask a second, start to start (a slow answer does not push the next one back),
   so a first-timer shows within a second plus one answer of their check-in. */
function schedule(delay = EVERY_MS) {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    const began = Date.now();
    let again = true;
    if (!document.hidden && !busy) {
      busy = true;
      polls += 1;
      try { again = await poll(polls % FULL_EVERY === 0); } finally { busy = false; }
    }
    if (again) schedule(Math.max(0, EVERY_MS - (Date.now() - began)));
  }, delay);
}

list.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-welcome]");
  if (!button) return;
  button.disabled = true;
  const answer = await call("POST", base + "/welcomes", { registration_id: button.dataset.welcome });
  if (!answer.ok) {
    button.disabled = false;
    say(message, "error", "Not saved: " + answer.message);
    return;
  }
  message.className = "alert";
  message.textContent = "";
  const row = button.closest("li");
  row.classList.add("welcomed");
  button.replaceWith(doneLine(answer.data));
});

document.addEventListener("visibilitychange", () => { if (!document.hidden) { polls = 0; schedule(0); } });
schedule();
