// The kiosk's service worker (served at /kiosk/sw.js, scope /kiosk).
//
// It keeps the page shell and its assets so the kiosk opens and runs with no
// network. The server writes the build id and the asset list into MANIFEST
// below (checkin/entrypoints/kiosk_page.py); a new build means a new worker and
// a fresh cache. The API (/api/...) is never cached here: the page keeps its
// own data (roster, queue) in IndexedDB.

const MANIFEST = {"build": "dev", "assets": []};
const CACHE = `turnout-kiosk-${MANIFEST.build}`;
const SHELL = self.location.pathname.replace(/\/sw\.js$/, ""); // "/kiosk"
const STATIC_PREFIX = `${SHELL}/static/`;
const NETWORK_TIMEOUT_MS = 3500;

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.add(new Request(SHELL, { cache: "reload" }));
      // Each asset on its own: an optional one that is missing (vendor/jsQR.js
      // before `npm run vendor`) must not stop the worker from installing.
      await Promise.allSettled(MANIFEST.assets.map((url) => cache.add(new Request(url, { cache: "reload" }))));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("turnout-kiosk-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

function isKioskFile(url) {
  return url.origin === self.location.origin && (url.pathname === SHELL || url.pathname.startsWith(STATIC_PREFIX));
}

/** The network's answer if it comes in time (and is good), else the cached copy. */
async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  const key = new URL(request.url).pathname === SHELL ? SHELL : request;
  const fromNetwork = fetch(request).then(async (response) => {
    if (response.ok) await cache.put(key, response.clone());
    return response;
  });
  fromNetwork.catch(() => {}); // handled below; don't report it twice
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), NETWORK_TIMEOUT_MS));
  try {
    const response = await Promise.race([fromNetwork, timeout]);
    if (response && (response.ok || response.status === 404)) return response;
  } catch {
    // offline: fall back to the cache
  }
  const cached = await cache.match(key, { ignoreSearch: true });
  if (cached) return cached;
  try {
    return await fromNetwork;
  } catch {
    return new Response("Offline and not cached yet.", { status: 503, headers: { "Content-Type": "text/plain" } });
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isKioskFile(url)) return; // the API and everything else: straight to the network
  event.respondWith(networkFirst(request));
});
