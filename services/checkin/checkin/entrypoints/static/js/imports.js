/* The CSV import page: preview and map the columns, upload, follow the job, list earlier imports. */
import { call, el, pageData, say } from "./turnout.js";

const { eventId } = pageData();
const listUrl = "/api/v1/events/" + encodeURIComponent(eventId) + "/imports";
const form = document.getElementById("import-form");
const message = document.getElementById("import-message");
const notReady = "Importing isn't available on this server yet.";
const FIELD_LABELS = { first_name: "First name", last_name: "Last name", name: "Full name (instead of first and last)",
  email: "Email", consent_email: "Agreed to email", offers: "Can offer", seeks: "Looking for" };
const FORMAT_LABELS = { eventbrite: "an Eventbrite attendee export", meetup: "a Meetup RSVP export", generic: "a CSV of its own layout" };
let pollTimer = null;

async function send(url, data) {
  let response;
  try {
    response = await fetch(url, { method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    return { ok: false, status: 0, data: null, error: null, message: "Can't reach the server. Check the connection and try again." };
  }
  let body;
  try { body = await response.json(); } catch { body = null; }
  const problem = body && body.error ? body.error : null;
  let text = problem ? problem.message : "The server answered " + response.status + ".";
  if (response.status === 405 || (response.status === 404 && problem && problem.code === "not_found")) text = notReady;
  if (response.status === 401) text = "Your session has ended. Reload the page and sign in again.";
  return { ok: response.ok, status: response.status, data: body, error: problem, message: text };
}

function upload(extra) {
  const data = new FormData();
  const file = form.file.files[0];
  data.append("file", file, file.name);
  for (const [name, value] of Object.entries(extra || {})) data.append(name, value);
  return data;
}

/* The mapping step: one select per field, the file's columns as choices. */
function showMapping(headers, fields, suggested) {
  const box = document.getElementById("mapping-fields");
  box.replaceChildren(...fields.map((field) => {
    const select = el("select", { id: "map-" + field, "data-field": field },
      el("option", { value: "", text: "— not in this file —" }),
      ...headers.map((header) => el("option", { value: header, text: header, selected: suggested && suggested[field] === header })));
    return el("div", { class: "field" }, el("label", { for: "map-" + field, text: FIELD_LABELS[field] || field }), select);
  }));
  document.getElementById("mapping").hidden = false;
}

function mapping() {
  const chosen = {};
  for (const select of document.querySelectorAll("#mapping-fields select")) if (select.value) chosen[select.dataset.field] = select.value;
  return chosen;
}

function showSample(preview) {
  const table = document.getElementById("sample");
  table.tHead.replaceChildren(el("tr", {}, el("th", { scope: "col", class: "num", text: "Row" }),
    ...preview.headers.map((header) => el("th", { scope: "col", text: header }))));
  table.tBodies[0].replaceChildren(...preview.rows.map((row) => el("tr", {},
    el("td", { class: "num", text: row.row }), ...preview.headers.map((header) => el("td", { text: row.cells[header] || "" })))));
}

async function previewFile() {
  const file = form.file.files[0];
  document.getElementById("columns").hidden = true;
  document.getElementById("mapping").hidden = true;
  if (!file) return;
  say(message, "info", "Reading " + file.name + "…");
  const answer = await send("/api/v1/imports/preview", upload());
  if (!answer.ok) { say(message, "error", answer.message); return; }
  message.className = "alert"; message.textContent = "";
  const preview = answer.data;
  document.getElementById("columns").hidden = false;
  document.getElementById("detected").textContent = "This looks like " + (FORMAT_LABELS[preview.format] || preview.format) +
    ", with " + preview.total_rows + " row" + (preview.total_rows === 1 ? "" : "s") + " of people.";
  if (preview.format === "generic" || form.format.value === "generic") {
    showMapping(preview.headers, preview.mappable_fields || Object.keys(FIELD_LABELS), preview.suggested_mapping || preview.mapping);
  }
  showSample(preview);
}

function number(job, name) { return typeof job[name] === "number" ? job[name] : 0; }

function show(job) {
  document.getElementById("idle-note").hidden = true;
  document.getElementById("progress-box").hidden = false;
  const percent = number(job, "percent");
  document.getElementById("progress").value = percent;
  const labels = { queued: "Waiting to start…", running: "Importing…", done: "Finished:", failed: "Stopped:" };
  document.getElementById("progress-label").textContent = (labels[job.status] || job.status || "") + " " +
    number(job, "processed") + " of " + number(job, "total") + " rows (" + percent + "%)";
  document.getElementById("n-created").textContent = number(job, "created");
  document.getElementById("n-existing").textContent = number(job, "already_registered");
  document.getElementById("n-failed").textContent = number(job, "failed");
  document.getElementById("n-skipped").textContent = number(job, "skipped");
  document.getElementById("n-name-only").textContent = number(job, "name_only");
  document.getElementById("n-waitlisted").textContent = number(job, "waitlisted");
  const rows = [];
  for (const row of job.errors || []) rows.push({ row: row.row, outcome: "Not imported", kind: "failed", reason: row.reason });
  for (const row of job.skipped_rows || []) rows.push({ row: row.row, outcome: "Skipped", kind: "skipped", reason: row.reason });
  rows.sort((a, b) => a.row - b.row);
  document.getElementById("report-card").hidden = rows.length === 0;
  document.getElementById("report-count").textContent = rows.length + (rows.length === 1 ? " row" : " rows");
  document.getElementById("report").replaceChildren(...rows.map((row) => el("tr", { class: row.kind },
    el("td", { class: "num", text: row.row }), el("td", { class: "outcome", text: row.outcome }),
    el("td", { text: row.reason }))));
  const csv = document.getElementById("errors-csv");
  csv.hidden = !(job.errors_url && number(job, "failed"));
  if (job.errors_url) csv.href = job.errors_url;
  document.getElementById("report-truncated").hidden = !job.errors_truncated;
  if (job.status === "done") say(message, "ok", "Import finished: " + number(job, "created") + " registered, " +
    number(job, "already_registered") + " already registered, " + number(job, "failed") + " not imported" +
    (number(job, "name_only") ? " (" + number(job, "name_only") + " by name only, without an email)." : "."));
  else if (job.status === "failed") say(message, "error", "The import stopped: " + (job.failure || "see the report below."));
}

async function follow(importId) {
  clearTimeout(pollTimer);
  const answer = await call("GET", "/api/v1/imports/" + encodeURIComponent(importId));
  if (!answer.ok) { say(message, "error", answer.message); return; }
  show(answer.data);
  if (answer.data.status === "done" || answer.data.status === "failed") { loadEarlier(); return; }
  pollTimer = setTimeout(() => follow(importId), 1000);
}

form.file.addEventListener("change", previewFile);
form.format.addEventListener("change", previewFile);

form.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  if (!form.file.files[0]) { say(message, "error", "Choose a CSV file first."); form.file.focus(); return; }
  const extra = { format: form.format.value };
  if (!document.getElementById("mapping").hidden) {
    const chosen = mapping();
    if (!chosen.email) { say(message, "error", "Choose the column that holds the email addresses."); document.getElementById("map-email").focus(); return; }
    extra.mapping = JSON.stringify(chosen);
  }
  const button = document.getElementById("import-button");
  button.disabled = true;
  say(message, "info", "Uploading " + form.file.files[0].name + "…");
  const answer = await send(listUrl, upload(extra));
  button.disabled = false;
  if (!answer.ok) {
    say(message, "error", answer.message);
    if (answer.error && answer.error.headers) {  // the API says which columns it needs: ask
      document.getElementById("columns").hidden = false;
      showMapping(answer.error.headers, Object.keys(FIELD_LABELS), answer.error.suggested_mapping);
    }
    return;
  }
  say(message, "info", "Uploaded. Importing…");
  show({ status: answer.data.status, total: answer.data.total, processed: 0, percent: 0 });
  follow(answer.data.id);
});

async function loadEarlier() {
  const target = document.getElementById("earlier");
  const answer = await call("GET", listUrl);
  if (!answer.ok) {
    const missing = answer.status === 405 || (answer.status === 404 && answer.code === "not_found");
    target.replaceChildren(el("li", {}, el("span", { class: "muted", text: missing ? notReady : answer.message })));
    return;
  }
  const jobs = answer.data.imports || [];
  if (!jobs.length) { target.replaceChildren(el("li", {}, el("span", { class: "muted", text: "None yet." }))); return; }
  target.replaceChildren(...jobs.map((job) => el("li", {},
    el("div", {},
      el("div", { class: "who-line", text: job.filename || "Upload" }),
      el("div", { class: "detail", text: (job.status || "") + " · " + number(job, "created") + " registered · " +
        number(job, "failed") + " not imported" + (job.created_at ? " · " + new Date(job.created_at).toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }) : "") })),
    el("div", { class: "act" }, el("button", { type: "button", class: "small", text: "Show report",
      onclick: () => follow(job.id) })))));
}
loadEarlier();
