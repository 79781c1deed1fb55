/* The new-event form: pre-fill the time zone with this device's when the organization has no events
   yet, and show only the "Repeats" fields that apply (without JavaScript they are all shown, and the
   server reads only those the choices call for). */
const zone = document.getElementById("f-timezone");
if (zone && !zone.value && window.Intl) zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const ORDINALS = ["1st", "2nd", "3rd", "4th", "last"];
const repeat = document.getElementById("f-repeat");
const starts = document.getElementById("f-starts_at");

function ordinalDay(day) {
  const tens = day % 100;
  const suffix = tens >= 10 && tens <= 20 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[day % 10] || "th";
  return day + suffix;
}

/* "the 15th" and "the 3rd Tuesday", from the start's date as typed (the event's local date). */
function nameMonthlyChoices() {
  const typed = /^(\d{4})-(\d{2})-(\d{2})/.exec(starts ? starts.value : "");
  if (!typed) return;
  const date = new Date(Number(typed[1]), Number(typed[2]) - 1, Number(typed[3]));
  const day = date.getDate();
  const byDay = document.querySelector("[data-monthly-label=day_of_month]");
  const byWeekday = document.querySelector("[data-monthly-label=weekday]");
  if (byDay) byDay.textContent = "the " + ordinalDay(day) + " of each month";
  if (byWeekday) byWeekday.textContent = "the " + ORDINALS[Math.floor((day - 1) / 7)] + " " + WEEKDAYS[date.getDay()] + " of each month";
}

function showRepeatFields() {
  const often = repeat.value;
  const every = document.querySelector("label[for=f-repeat_interval]");
  if (every && often) every.firstChild.textContent = "Every how many " + (often === "weekly" ? "weeks" : "months");
  for (const part of document.querySelectorAll("[data-repeat]")) {
    part.hidden = !often || !part.dataset.repeat.split(" ").includes(often);
  }
  const checked = document.querySelector("input[name=repeat_end]:checked");
  const end = checked ? checked.value : "count";
  for (const part of document.querySelectorAll("[data-repeat-end]")) {
    part.hidden = !often || part.dataset.repeatEnd !== end;
  }
}

if (repeat) {
  repeat.addEventListener("change", showRepeatFields);
  for (const radio of document.querySelectorAll("input[name=repeat_end]")) radio.addEventListener("change", showRepeatFields);
  if (starts) starts.addEventListener("input", nameMonthlyChoices);
  nameMonthlyChoices();
  showRepeatFields();
}
