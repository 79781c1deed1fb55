/* A person's page: correct their details, export their data, erase them (through the JSON API). */
import { call, pageData, say } from "./turnout.js";

const { personId, firstName } = pageData();
const base = "/api/v1/people/" + encodeURIComponent(personId);
const notice = document.getElementById("notice");
const form = document.getElementById("correct-form");
const exportButton = document.getElementById("export-button");
const eraseButton = document.getElementById("erase-button");
const eraseSure = document.getElementById("erase-sure");

function fieldsOf() {
  return Array.from(form.querySelectorAll("input[name]"));
}

function markInvalid(name) {
  for (const input of fieldsOf()) {
    if (input.name === name) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const changes = {};
  for (const input of fieldsOf()) {
    const value = input.value.trim();
    if (value !== input.dataset.was) changes[input.name] = value;
  }
  if (!Object.keys(changes).length) {
    say(notice, "info", "Nothing to change: the details are as stored.");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  const answer = await call("PATCH", base, changes);
  button.disabled = false;
  if (!answer.ok) {
    markInvalid(answer.data && answer.data.error ? answer.data.error.field : null);
    say(notice, "error", answer.message || "The correction was not saved.");
    return;
  }
  markInvalid(null);
  const person = answer.data;
  for (const input of fieldsOf()) {
    input.value = person[input.name] || "";
    input.dataset.was = input.value;
  }
  document.getElementById("person-name").textContent = (person.first_name + " " + person.last_name).trim();
  document.getElementById("person-email").textContent = person.email || "";
  say(notice, "ok", "Saved. The next email goes to " + (person.email || "their address") + ".");
});

async function file(kind, button) {
  button.disabled = true;
  const answer = await call("POST", base + "/" + kind);
  if (!answer.ok) {
    button.disabled = false;
    say(notice, "error", answer.message || "The request was not made.");
    return;
  }
  window.location.assign("/data-requests/" + encodeURIComponent(answer.data.id));
}

exportButton.addEventListener("click", () => file("export", exportButton));

eraseButton.addEventListener("click", () => {
  if (!eraseSure.checked) {
    say(notice, "error", "Tick the box to confirm that " + firstName + " is to be erased.");
    eraseSure.focus();
    return;
  }
  if (!window.confirm("Erase " + firstName + " from every service? This cannot be undone.")) return;
  file("erasure", eraseButton);
});
