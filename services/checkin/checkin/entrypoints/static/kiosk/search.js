// The "find my name" screen: the cached roster first (typo- and accent-tolerant,
// roster.js), the server when the roster knows nobody by that name.

import { chooseFromSearch } from "./checkin.js";
import { t } from "./i18n.js";
import { fold } from "./roster.js";
import { markNetwork, onScreen, show, touchForm } from "./screens.js";
import { $, isOnline, state } from "./state.js";

let searchTimer = null;

export function openSearch() {
  show("search");
  touchForm();
  $("search-input").focus();
  runSearch();
}

function runSearch() {
  const query = $("search-input").value;
  const serial = ++state.searchSerial;
  if (fold(query).replace(/\s+/g, "").length < 2) {
    $("search-results").replaceChildren();
    $("search-status").textContent = query.trim() ? t("search_min") : "";
    return;
  }
  const local = state.roster.search(query, 8);
  renderMatches(local);
  if (!local.length && isOnline()) {
    // Maybe someone registered since the roster was fetched: ask the server.
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      const answer = await state.api.search(query);
      markNetwork(answer);
      if (serial !== state.searchSerial || answer.kind !== "ok") return;
      const results = answer.body.results || [];
      for (const match of results) state.serverMatches.set(match.registration_id, match);
      renderMatches(results);
    }, 250);
  }
}

function renderMatches(matches) {
  const list = $("search-results");
  const counts = new Map();
  for (const match of matches) counts.set(match.name, (counts.get(match.name) || 0) + 1);
  const items = matches.map((match) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "match";
    button.dataset.registrationId = match.registration_id;
    const name = document.createElement("span");
    name.className = "match-name";
    name.textContent = match.name;
    button.append(name);
    if (counts.get(match.name) > 1 && match.hint) {
      // Two people with one display name: the hint tells them apart (never an email).
      const hint = document.createElement("span");
      hint.className = "match-hint";
      hint.textContent = match.hint;
      button.append(hint);
    }
    if (match.checked_in) {
      const badge = document.createElement("span");
      badge.className = "match-badge";
      badge.textContent = t("search_checked_in");
      button.append(badge);
    }
    button.addEventListener("click", () => chooseFromSearch(match.registration_id));
    li.append(button);
    return li;
  });
  list.replaceChildren(...items);
  $("search-status").textContent = matches.length ? t("search_results", { n: matches.length }) : t("search_empty");
}

function clearSearch() {
  $("search-input").value = "";
  $("search-results").replaceChildren();
  $("search-status").textContent = "";
}

export function wireSearch() {
  onScreen("search", { redraw: runSearch, resetOnIdle: clearSearch });
  $("find-button").addEventListener("click", openSearch);
  $("search-input").addEventListener("input", () => {
    touchForm();
    runSearch();
  });
  $("search-input").addEventListener("keydown", (event) => {
    const first = $("search-results").querySelector("button");
    if (event.key === "Enter" && first && $("search-results").children.length === 1) first.click();
  });
}
