// The console's client for the thinkrag API: bearer key, JSON calls, and the native run
// event stream read with fetch (EventSource cannot send an Authorization header), resumed
// with Last-Event-ID after a dropped connection so no event is lost or seen twice.

const KEY_STORE = "thinkrag.apiKey";

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
}

function headers(extra = {}) {
  const out = { ...extra };
  const key = storedKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

async function failure(response) {
  let type = "http_error";
  let message = `the server answered HTTP ${response.status}`;
  try {
    const body = await response.json();
    const err = body.error || (body.detail && body.detail.error) || {};
    if (err.message) message = err.message;
    if (err.type) type = err.type;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, type, message);
}

export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

// Parse one SSE block ("event:", "id:", "data:" lines) into {event, id, data}.
function parseBlock(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") event = value;
    else if (name === "id") id = value;
    else if (name === "data") data.push(value);
  }
  return data.length ? { event, id, data: data.join("\n") } : null;
}

// Follow /v1/runs/{id}/events until the `end` frame. `onEvent(name, payload, seq)` sees each
// stored event once, in order; a dropped connection reconnects from the last id received.
export async function followRun(runId, onEvent, { signal, onReconnect } = {}) {
  let last = 0;
  let failures = 0;
  for (;;) {
    let response;
    try {
      const extra = last ? { "Last-Event-ID": String(last) } : {};
      response = await fetch(`/v1/runs/${encodeURIComponent(runId)}/events`, {
        headers: headers(extra),
        signal,
        cache: "no-store",
      });
    } catch (err) {
      if (signal && signal.aborted) return null;
      if (++failures > 30) throw err;
      if (onReconnect) onReconnect(failures);
      await new Promise((r) => setTimeout(r, Math.min(500 * failures, 4000)));
      continue;
    }
    if (!response.ok) throw await failure(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        failures = 0;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = parseBlock(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (!frame) continue;
          const payload = JSON.parse(frame.data);
          if (frame.event === "end") return payload;
          const seq = Number(frame.id);
          if (!(seq > last)) continue; // already shown
          last = seq;
          onEvent(frame.event, payload, seq);
        }
      }
    } catch (err) {
      if (signal && signal.aborted) return null;
      if (err instanceof SyntaxError) throw err;
    }
    if (signal && signal.aborted) return null;
    // The connection ended without `end`: reconnect from the last event seen.
    if (++failures > 30) throw new ApiError(0, "stream_lost", "lost the event stream");
    if (onReconnect) onReconnect(failures);
    await new Promise((r) => setTimeout(r, Math.min(300 * failures, 4000)));
  }
}
