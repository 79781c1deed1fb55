// Scans taken while the server can't be reached wait here, on the tablet, in
// the order they happened. Each keeps the client key and the scan time it was
// given at the door, so sending it again (after a lost answer, a reload, or
// from two kiosks) never checks anyone in twice.
//
// sync() sends them oldest first and stops at the first item that gets no
// definitive answer (network error, timeout, 5xx); an item is dropped only
// after a 2xx or a 4xx. A 4xx is kept in a short "refused" log for the staff.

const REFUSED_LOG_KEY = "refused";
const REFUSED_LOG_SIZE = 20;

export class OutboundQueue {
  constructor({ store, api, onChange = () => {}, onUnauthorized = () => {}, onDelivered = () => {} }) {
    this.store = store;
    this.api = api;
    this.onChange = onChange;
    this.onUnauthorized = onUnauthorized;
    this.onDelivered = onDelivered;
    this.items = [];
    this.syncing = null;
    this.lastSyncAt = null;
    this.lastOutcome = null; // "done" | "offline" | "unauthorized"
  }

  async load() {
    this.items = await this.store.queueList();
    this.items.sort((a, b) => a.seq - b.seq);
    this.onChange(this);
  }

  get length() {
    return this.items.length;
  }

  /** Is anything for this registration still waiting (so new scans must wait behind it)? */
  hasPendingFor(registrationId) {
    return Boolean(registrationId) && this.items.some((item) => item.registration_id === registrationId);
  }

  async add(item) {
    const entry = { ...item, queued_at: new Date().toISOString(), attempts: 0 };
    entry.seq = await this.store.queueAdd(entry);
    this.items.push(entry);
    this.onChange(this);
    return entry;
  }

  async clear() {
    await this.store.queueClear();
    this.items = [];
    this.onChange(this);
  }

  /** Send everything waiting; concurrent calls share one run. Resolves to the outcome. */
  sync() {
    if (!this.syncing) {
      this.syncing = this.run().finally(() => {
        this.syncing = null;
        this.onChange(this);
      });
      this.onChange(this);
    }
    return this.syncing;
  }

  async run() {
    // Re-read: another tab or an earlier run may have changed the store.
    this.items = (await this.store.queueList()).sort((a, b) => a.seq - b.seq);
    while (this.items.length) {
      const item = this.items[0];
      const answer = await this.api.send(item.kind, item.body, 10000);
      if (answer.kind === "transient") {
        item.attempts = (item.attempts || 0) + 1;
        item.last_error = answer.reason;
        await this.store.queuePut(item).catch(() => {});
        this.lastOutcome = "offline";
        return this.lastOutcome;
      }
      if (answer.kind === "unauthorized") {
        this.lastOutcome = "unauthorized";
        this.onUnauthorized(answer);
        return this.lastOutcome;
      }
      // A definitive answer (2xx, or a 4xx that asking again won't change).
      await this.store.queueDelete(item.seq);
      this.items.shift();
      if (answer.kind === "rejected") await this.logRefusal(item, answer);
      this.onDelivered(item, answer);
      this.lastSyncAt = new Date();
      this.onChange(this);
    }
    this.lastSyncAt = new Date();
    this.lastOutcome = "done";
    return this.lastOutcome;
  }

  async logRefusal(item, answer) {
    const log = (await this.store.get(REFUSED_LOG_KEY).catch(() => null)) || [];
    log.unshift({
      at: new Date().toISOString(),
      kind: item.kind,
      name: item.name || null,
      scanned_at: item.body?.scanned_at || null,
      code: answer.code,
      message: answer.message,
    });
    await this.store.set(REFUSED_LOG_KEY, log.slice(0, REFUSED_LOG_SIZE)).catch(() => {});
  }

  async refusals() {
    return (await this.store.get(REFUSED_LOG_KEY).catch(() => null)) || [];
  }
}
