/* Shared by the organizer pages: JSON calls with the session cookie, and small DOM helpers.
   Every text from the server is put in with textContent, never as HTML. */

/** The server data a page renders into <script type="application/json" id="page-data">. */
export function pageData() {
  const block = document.getElementById("page-data");
  return block ? JSON.parse(block.textContent) : {};
}

export async function call(method, url, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch {
    return { ok: false, status: 0, data: null, code: "offline",
             message: "Can't reach the server. Check the connection and try again." };
  }
  let data;
  try { data = await response.json(); } catch { data = null; }
  const problem = data && data.error ? data.error : null;
  let message = problem ? problem.message : (response.ok ? "" : "The server answered " + response.status + ".");
  if (response.status === 401) message = "Your session has ended. Reload the page and sign in again.";
  return { ok: response.ok, status: response.status, data, code: problem ? problem.code : null, message };
}

/* An idempotency key: crypto.randomUUID needs a secure context (https or localhost),
   getRandomValues works everywhere. */
export function key() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function time(iso, timeZone) {
  try {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone });
  } catch {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }
}

/** An element: attributes (text sets textContent, on<event> adds a listener), then children. */
export function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function say(target, kind, text) {
  target.className = "alert " + kind;
  target.textContent = text;
}
