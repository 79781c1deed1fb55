// Talking to the kiosk API (docs/kiosk-api.md). Every call resolves (never
// throws) to one of:
//   {kind: "ok", status, body}            2xx
//   {kind: "rejected", status, code, message, field, body}
//                                         a definitive 4xx answer (not 401)
//   {kind: "unauthorized", status, code}  401: revoked or unknown token
//   {kind: "transient", status, reason}   no answer, a timeout, 408/429/5xx:
//                                         try again later; nothing was decided

const DEFAULT_TIMEOUT_MS = 8000;

export class KioskApi {
  constructor({ base = "/api/v1", token = null } = {}) {
    this.base = base;
    this.token = token;
  }

  async request(method, path, { body, timeoutMs = DEFAULT_TIMEOUT_MS, auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.token) headers.Authorization = `Bearer ${this.token}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      clearTimeout(timer);
      return { kind: "transient", status: 0, reason: error?.name === "AbortError" ? "timeout" : "network" };
    }
    let data;
    try {
      const text = await response.text();
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    } finally {
      clearTimeout(timer);
    }
    const status = response.status;
    if (status >= 200 && status < 300) return { kind: "ok", status, body: data ?? {} };
    const error = data && typeof data === "object" ? data.error || {} : {};
    if (status === 408 || status === 429 || status >= 500 || (status === 409 && error.code === "conflict")) {
      // "conflict": two scans raced on the server; asking again gets a real answer.
      return { kind: "transient", status, reason: error.code || `http_${status}` };
    }
    if (status === 401) return { kind: "unauthorized", status, code: error.code || "unauthenticated" };
    return {
      kind: "rejected",
      status,
      code: error.code || `http_${status}`,
      message: error.message || "",
      field: error.field || null,
      body: data,
    };
  }

  pair(code) {
    return this.request("POST", "/kiosk/pair", { body: { code }, auth: false });
  }

  roster() {
    return this.request("GET", "/kiosk/roster", { timeoutMs: 20000 });
  }

  search(q) {
    return this.request("GET", `/kiosk/search?q=${encodeURIComponent(q)}`, { timeoutMs: 4000 });
  }

  heartbeat(queueLength) {
    return this.request("POST", "/kiosk/heartbeat", { body: { queue_length: queueLength }, timeoutMs: 5000 });
  }

  /** A name-only person's email, given at the kiosk right after checking in (never queued). */
  giveEmail(registrationId, email, consentEmail, timeoutMs) {
    return this.request("POST", `/kiosk/registrations/${encodeURIComponent(registrationId)}/email`, {
      body: { email, consent_email: consentEmail },
      timeoutMs,
    });
  }

  /** kind: "checkin" | "checkout" | "walkin" (the queue stores the kind, not the path). */
  send(kind, body, timeoutMs) {
    const path = { checkin: "/kiosk/checkins", checkout: "/kiosk/checkouts", walkin: "/kiosk/walk-ins" }[kind];
    return this.request("POST", path, { body, timeoutMs });
  }
}
