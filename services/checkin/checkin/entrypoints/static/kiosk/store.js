// What the kiosk keeps on the tablet: a key-value store (pairing, roster,
// language, sync log) and the queue of scans waiting to be sent, in order.
//
// IndexedDB is the real store. Where it can't be opened (some private modes),
// a localStorage-backed store with the same interface keeps the kiosk usable.

const DB_NAME = "turnout-kiosk";
const DB_VERSION = 1;
const KV = "kv";
const QUEUE = "queue";

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

class IdbStore {
  constructor(db) {
    this.db = db;
    this.kind = "indexeddb";
  }

  static open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(KV)) db.createObjectStore(KV);
        if (!db.objectStoreNames.contains(QUEUE)) db.createObjectStore(QUEUE, { keyPath: "seq", autoIncrement: true });
      };
      request.onsuccess = () => resolve(new IdbStore(request.result));
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error("IndexedDB blocked"));
    });
  }

  async tx(storeName, mode, work) {
    const transaction = this.db.transaction(storeName, mode);
    const done = new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error || new Error("transaction aborted"));
    });
    const result = await work(transaction.objectStore(storeName));
    await done;
    return result;
  }

  get(key) {
    return this.tx(KV, "readonly", (s) => promised(s.get(key)));
  }

  set(key, value) {
    return this.tx(KV, "readwrite", (s) => promised(s.put(value, key)));
  }

  del(key) {
    return this.tx(KV, "readwrite", (s) => promised(s.delete(key)));
  }

  /** Adds an item to the end of the queue; resolves to its sequence number. */
  queueAdd(item) {
    return this.tx(QUEUE, "readwrite", (s) => promised(s.add(item)));
  }

  /** Every queued item, oldest first. */
  queueList() {
    return this.tx(QUEUE, "readonly", (s) => promised(s.getAll()));
  }

  queuePut(item) {
    return this.tx(QUEUE, "readwrite", (s) => promised(s.put(item)));
  }

  queueDelete(seq) {
    return this.tx(QUEUE, "readwrite", (s) => promised(s.delete(seq)));
  }

  queueCount() {
    return this.tx(QUEUE, "readonly", (s) => promised(s.count()));
  }

  queueClear() {
    return this.tx(QUEUE, "readwrite", (s) => promised(s.clear()));
  }
}

class LocalStore {
  constructor() {
    this.kind = "localstorage";
    this.prefix = `${DB_NAME}:`;
  }

  read(name, fallback) {
    try {
      const raw = localStorage.getItem(this.prefix + name);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  }

  write(name, value) {
    localStorage.setItem(this.prefix + name, JSON.stringify(value));
  }

  async get(key) {
    return this.read(`kv:${key}`, undefined);
  }

  async set(key, value) {
    this.write(`kv:${key}`, value);
  }

  async del(key) {
    localStorage.removeItem(`${this.prefix}kv:${key}`);
  }

  async queueAdd(item) {
    const seq = this.read("queue-seq", 0) + 1;
    const items = this.read("queue", []);
    items.push({ ...item, seq });
    this.write("queue", items);
    this.write("queue-seq", seq);
    return seq;
  }

  async queueList() {
    return this.read("queue", []);
  }

  async queuePut(item) {
    const items = this.read("queue", []).map((old) => (old.seq === item.seq ? item : old));
    this.write("queue", items);
  }

  async queueDelete(seq) {
    this.write(
      "queue",
      this.read("queue", []).filter((item) => item.seq !== seq),
    );
  }

  async queueCount() {
    return this.read("queue", []).length;
  }

  async queueClear() {
    this.write("queue", []);
  }
}

export async function openStore() {
  if (globalThis.indexedDB) {
    try {
      return await IdbStore.open();
    } catch (error) {
      console.warn("IndexedDB unavailable, using localStorage", error);
    }
  }
  return new LocalStore();
}
