/* The event page's greeters card: name a user or a volunteer, copy a greeter's link, remove one.
   The page reloads after a change (the table and links are rendered by the server). */
import { call, pageData, say } from "./turnout.js";

const { eventId } = pageData();
const base = "/api/v1/events/" + encodeURIComponent(eventId) + "/greeters";
const message = document.getElementById("greeter-message");

async function name(form, body) {
  const button = form.querySelector("button");
  button.disabled = true;
  const answer = await call("POST", base, body);
  button.disabled = false;
  if (!answer.ok) { say(message, "error", answer.message); return; }
  window.location.hash = "greeters";
  window.location.reload();
}

document.getElementById("greeter-user-form").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  const form = submitted.target;
  if (!form.user_id.value) { say(message, "error", "Choose a user first."); form.user_id.focus(); return; }
  name(form, { user_id: form.user_id.value });
});

document.getElementById("greeter-volunteer-form").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  const form = submitted.target;
  const who = form.name.value.trim();
  const email = form.email.value.trim();
  if (!who) { say(message, "error", "Give the volunteer's name."); form.name.focus(); return; }
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) { say(message, "error", "Enter an email address, like ada@example.org."); form.email.focus(); return; }
  name(form, { name: who, email });
});

document.getElementById("greeter-table").addEventListener("click", async (clicked) => {
  const copy = clicked.target.closest("button[data-copy]");
  if (copy) {
    try {
      await navigator.clipboard.writeText(copy.dataset.copy);
      say(message, "ok", "Link copied. Send it to the greeter; it opens their page without signing in.");
    } catch {
      say(message, "info", "Copy this link: " + copy.dataset.copy);
    }
    return;
  }
  const remove = clicked.target.closest("button[data-remove]");
  if (!remove) return;
  if (!confirm("Remove " + (remove.dataset.name || "this greeter") + "? Their link stops working at once.")) return;
  remove.disabled = true;
  const answer = await call("DELETE", base + "/" + encodeURIComponent(remove.dataset.remove));
  remove.disabled = false;
  if (!answer.ok) { say(message, "error", answer.message); return; }
  remove.closest("tr").remove();
  say(message, "ok", "Greeter removed.");
});
