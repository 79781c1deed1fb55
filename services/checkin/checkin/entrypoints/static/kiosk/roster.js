// The event's roster as cached on the tablet: enough to verify a badge offline
// (sha256 of the code against badge_sha256) and to search names offline.
// The name search mirrors the server's (checkin/domain/kiosks.py): every word
// typed must match a word of the name, by prefix or within a small edit
// distance; accents and case never matter. Emails are never shown or searched.

import { sha256Hex } from "./digest.js";

/** "José Ñúñez-Ödegaard" -> "jose nunez-odegaard" */
export function fold(text) {
  return String(text ?? "")
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/ß/g, "ss")
    .trim();
}

/** Words of a folded name: split on spaces, hyphens, apostrophes and dots. */
function words(folded) {
  return folded.split(/[\s\-'’.,]+/u).filter(Boolean);
}

/** Levenshtein distance(a, b) <= limit, giving up early. */
export function withinDistance(a, b, limit) {
  if (Math.abs(a.length - b.length) > limit) return false;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const value = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      current.push(value);
      best = Math.min(best, value);
    }
    if (best > limit) return false;
    previous = current;
  }
  return previous[b.length] <= limit;
}

/** 0 = no match; higher is better. Whole words beat prefixes, prefixes beat typos. */
export function tokenScore(query, word) {
  if (word.startsWith(query)) return query.length === word.length ? 3 : 2;
  if (query.length >= 3) {
    const allowed = query.length < 7 ? 1 : 2;
    if (withinDistance(query, word.slice(0, query.length), allowed)) return 1;
    if (withinDistance(query, word, allowed)) return 1;
  }
  return 0;
}

export class Roster {
  constructor() {
    this.people = [];
    this.byId = new Map();
    this.byBadge = new Map();
    this.generatedAt = null;
    this.fetchedAt = null;
  }

  /** Load a roster answer ({generated_at, people}) plus when we fetched it. */
  load({ people = [], generated_at: generatedAt = null } = {}, fetchedAt = null) {
    this.people = people.map((person) => {
      const folded = fold(person.name_folded || person.name || "");
      return { ...person, _words: words(folded), _folded: folded };
    });
    this.byId = new Map(this.people.map((p) => [p.registration_id, p]));
    this.byBadge = new Map(this.people.filter((p) => p.badge_sha256).map((p) => [p.badge_sha256.toLowerCase(), p]));
    this.generatedAt = generatedAt;
    this.fetchedAt = fetchedAt;
  }

  /** What to persist (the server's shape, without our search words). */
  snapshot() {
    return {
      generated_at: this.generatedAt,
      fetched_at: this.fetchedAt,
      people: this.people.map(({ _words, _folded, ...person }) => person),
    };
  }

  get size() {
    return this.people.length;
  }

  get(registrationId) {
    return this.byId.get(registrationId) || null;
  }

  async findBadge(code) {
    return this.byBadge.get(await sha256Hex(code)) || null;
  }

  /** Up to `limit` people matching every word of the query, best first. */
  search(query, limit = 8) {
    const tokens = words(fold(query));
    if (!tokens.length) return [];
    const scored = [];
    for (const person of this.people) {
      let total = 0;
      for (const token of tokens) {
        let best = 0;
        for (const word of person._words) best = Math.max(best, tokenScore(token, word));
        if (best === 0) {
          total = 0;
          break;
        }
        total += best;
      }
      if (total) scored.push([total, person]);
    }
    scored.sort((a, b) => b[0] - a[0] || a[1]._folded.localeCompare(b[1]._folded));
    return scored.slice(0, limit).map(([, person]) => person);
  }
}
