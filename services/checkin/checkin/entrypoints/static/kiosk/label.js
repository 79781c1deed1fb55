// Name labels: when the event prints labels (its name_labels setting), each
// check-in opens the browser's print dialog with the person's label (first
// name large, last name, the offer/seek line on networking evenings, a
// first-timer mark). The label stock is set per kiosk in the staff menu (kept
// on the tablet): 62 mm continuous tape cut at 100 mm, or 4 x 3 in labels; its
// @page size comes from label-62mm.css or label-4x3in.css (print only). The
// markup is the label page's (templates/_name_label.html), styled by label.css.
// Chrome started with --kiosk-printing prints to the default printer at once.

import { t } from "./i18n.js";
import { $, state } from "./state.js";

export const LABEL_SIZES = ["62mm", "4x3in"];
const LONG_FIRST_NAME = 9;
const PRINT_DELAY_MS = 400; // let the confirmation paint before the (blocking) print dialog

export const labelsOn = () => Boolean(state.pairing?.event?.name_labels);

export function labelSize() {
  return LABEL_SIZES.includes(state.labelSize) ? state.labelSize : LABEL_SIZES[0];
}

/** Enable the @page rules of this kiosk's label stock (and only those). */
export function applyLabelSize() {
  const size = labelSize();
  for (const each of LABEL_SIZES) $(`label-page-${each}`).disabled = each !== size;
  for (const label of document.querySelectorAll(".print-labels .name-label")) label.dataset.size = size;
}

export async function setLabelSize(size) {
  state.labelSize = LABEL_SIZES.includes(size) ? size : LABEL_SIZES[0];
  applyLabelSize();
  await state.store?.set("label_size", state.labelSize).catch(() => {});
}

/**
 * A label from the server's answer (online: the full last name and tags), or
 * from what the cached roster knows (offline: first name and last initial).
 */
export function labelFrom(body, person) {
  if (body?.label) return body.label;
  const name = person?.name || body?.name || "";
  const first = person?.first_name || body?.first_name || name.split(" ")[0] || "";
  const rest = name.startsWith(first) ? name.slice(first.length).trim() : "";
  return {
    first_name: first,
    last_name: rest,
    offers: [],
    seeks: [],
    first_time: Boolean(body?.first_time_ever),
    event_title: state.pairing?.event?.title || "",
  };
}

function labelElement(label) {
  const article = document.createElement("article");
  article.className = "name-label";
  article.dataset.size = labelSize();
  const line = (className, text) => {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  };
  const first = line("name-label-first", label.first_name);
  if (String(label.first_name).length > LONG_FIRST_NAME) first.classList.add("is-long");
  article.append(first, line("name-label-last", label.last_name || ""));
  if (label.offers?.length || label.seeks?.length) {
    const tags = document.createElement("p");
    tags.className = "name-label-tags";
    for (const [key, values] of [
      ["label_offers", label.offers],
      ["label_seeks", label.seeks],
    ]) {
      if (!values?.length) continue;
      const tag = document.createElement("span");
      tag.className = "name-label-tag";
      const strong = document.createElement("strong");
      strong.textContent = t(key);
      tag.append(strong, ` ${values.join(", ")}`);
      tags.append(tag);
    }
    article.append(tags);
  }
  const foot = document.createElement("p");
  foot.className = "name-label-foot";
  if (label.first_time) foot.append(line("name-label-first-time", `★ ${t("label_first_time")}`));
  foot.append(line("name-label-event", label.event_title || state.pairing?.event?.title || ""));
  article.append(foot);
  return article;
}

/** Put these labels (one per page) in the print area and open the print dialog. */
export function printLabels(labels) {
  const wanted = labels.filter((label) => label && label.first_name);
  if (!wanted.length) return;
  $("print-labels").replaceChildren(...wanted.map(labelElement));
  state.printedLabels = (state.printedLabels || 0) + wanted.length;
  setTimeout(() => window.print(), PRINT_DELAY_MS);
}
