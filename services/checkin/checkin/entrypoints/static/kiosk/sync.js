// Keeping the tablet in step with the server: the roster (every minute), the
// heartbeat (every 30 s) and the offline queue (sent as soon as the network
// returns; queue.js keeps it in IndexedDB).

import { rememberOutcome } from "./results.js";
import { markNetwork, renderEvent, renderStatus, showRevoked } from "./screens.js";
import { mightBeOnline, state } from "./state.js";

/** What is still queued counts as done on the roster (a queued check-in is "already in"). */
export function applyQueueToRoster() {
  for (const item of state.queue.items) {
    const person = state.roster.get(item.registration_id);
    if (!person) continue;
    if (item.kind === "checkin") person.checked_in = true;
    if (item.kind === "checkout") person.checked_out = true;
  }
}

export async function refreshRoster() {
  if (!state.pairing || state.revoked || !mightBeOnline()) return;
  const answer = await state.api.roster();
  markNetwork(answer);
  if (answer.kind === "unauthorized") return showRevoked();
  if (answer.kind !== "ok") return;
  state.roster.load(answer.body, new Date().toISOString());
  applyQueueToRoster();
  await state.store.set("roster", { ...state.roster.snapshot(), event_id: state.pairing.event.id }).catch(() => {});
  if (answer.body.event && answer.body.event.id === state.pairing.event.id) {
    state.pairing.event = { ...state.pairing.event, ...answer.body.event };
    await state.store.set("pairing", state.pairing).catch(() => {});
    renderEvent();
  }
}

export async function heartbeat() {
  if (!state.pairing || state.revoked || !mightBeOnline()) return;
  const answer = await state.api.heartbeat(state.queue.length);
  markNetwork(answer);
  if (answer.kind === "unauthorized") return showRevoked();
  if (answer.kind === "ok" && state.queue.length) syncQueue();
}

export function syncQueue() {
  if (!state.pairing || state.revoked || !state.queue.length || !mightBeOnline()) return Promise.resolve();
  return state.queue.sync().then((outcome) => {
    if (outcome === "offline") markNetwork({ kind: "transient" });
    if (outcome === "done") markNetwork({ kind: "ok" });
  });
}

/** The queue delivered an item: the roster learns the server's answer. */
export function onDelivered(item, answer) {
  if (answer.kind === "ok") rememberOutcome(item.kind, item.registration_id, answer.body);
}

export function wentOnline() {
  state.networkDown = false;
  renderStatus();
  heartbeat();
  syncQueue();
  refreshRoster();
}
