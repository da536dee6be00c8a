// Talking to the manager: its HTTP API (the session cookie stands in for the token,
// and every change carries the session's CSRF value) and the pushed event stream.

let csrf = null;

/** Loads the session (the CSRF value); a missing or expired session goes to the login page. */
export async function session() {
  const answer = await get("/ui/api/session");
  csrf = answer.csrf;
  return answer;
}

function toLogin() {
  window.location.assign("/ui/login");
  return new Promise(() => {});   // the page is leaving
}

export class ApiError extends Error {
  constructor(result, message, status) {
    super(message || result);
    this.result = result;
    this.status = status;
  }
}

async function answer(response) {
  if (response.status === 401) return toLogin();
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new ApiError("BadResponse", `HTTP ${response.status}`, response.status);
  }
  if (!response.ok || body.result !== "ok") {
    throw new ApiError(body.result || "Error", body.message || `HTTP ${response.status}`, response.status);
  }
  return body;
}

export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function get(path, params = {}, signal = undefined) {
  return answer(await fetch(url(path, params), {credentials: "same-origin", signal}));
}

function headers(extra = {}) {
  return csrf ? {...extra, "X-CSRF-Token": csrf} : extra;
}

/** A change: JSON body, CSRF header. */
export async function send(method, path, body = undefined, params = {}) {
  const init = {method, credentials: "same-origin", headers: headers({"Content-Type": "application/json"})};
  if (body !== undefined) init.body = JSON.stringify(body);
  return answer(await fetch(url(path, params), init));
}

/** A multipart upload with progress (fetch cannot report upload progress; XHR can). */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [key, value] of Object.entries(headers())) xhr.setRequestHeader(key, value);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError("NetworkError", "the upload did not reach the manager", 0));
    xhr.onload = () => {
      if (xhr.status === 401) { toLogin(); return; }
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* reported below */ }
      if (xhr.status === 200 && body.result === "ok") resolve(body);
      else reject(new ApiError(body.result || "Error", body.message || `HTTP ${xhr.status}`, xhr.status));
    };
    xhr.send(form);
  });
}

/**
 * Follows a byte stream (an action's log): calls onText with each decoded piece until
 * it ends or signal aborts. Resolves when the stream ends.
 */
export async function follow(path, params, onText, signal) {
  const response = await fetch(url(path, params), {credentials: "same-origin", signal});
  if (response.status === 401) return toLogin();
  const type = response.headers.get("Content-Type") || "";
  if (!response.ok || type.startsWith("application/json")) {
    await answer(response);   // throws the manager's error
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    onText(decoder.decode(value, {stream: true}));
  }
  onText(decoder.decode());
}

const live = () => document.getElementById("live");

function showLive(state) {
  const el = live();
  if (!el) return;
  el.className = `live ${state}`;
  el.textContent = state === "on" ? "● live" : "○ reconnecting…";
}

/**
 * A page's state, fetched whole and kept live by events. Events that arrive while a fetch
 * is on its way are held and applied over its result, in order: an event carries whole
 * states, and every change committed after the stream opened has one, so a change made
 * just after the snapshot was read is not lost (nor overwritten by an older snapshot).
 * Of overlapping fetches only the latest installs its result. Returns {load, onEvent},
 * the onReady and onEvent of events(); load() also serves a page's own refetches.
 */
export function liveState({fetch, install, apply, failed}) {
  let generation = 0;
  let held = null;        // events since the oldest fetch still on its way
  let installed = false;
  async function load() {
    const mine = ++generation;
    if (!held) held = [];
    let state;
    try {
      state = await fetch();
    } catch (error) {
      if (mine === generation) {
        held = null;
        failed(error);
      }
      return;
    }
    if (mine !== generation) return;   // a later fetch is on its way: it installs
    install(state);
    installed = true;
    const queued = held;
    held = null;
    for (const event of queued) apply(event);
  }
  function onEvent(event) {
    if (held) held.push(event);
    else if (installed) apply(event);
  }
  return {load, onEvent};
}

/**
 * Subscribes to pushed changes. onReady runs on every (re)connection: the page fetches
 * its state then, knowing every later change will arrive here. onResync: events were
 * dropped, fetch again. Returns a function that closes the stream.
 *
 * EventSource reconnects by itself after a dropped connection; a refused one (the
 * manager restarted and forgot the session: 401) closes it for good, so then the session
 * is checked (no session: the login page) and the stream opened again.
 */
export function events(params, {onReady, onEvent, onResync}) {
  let source = null;
  let closed = false;
  let retry = null;
  let delay = 1000;
  function open() {
    source = new EventSource(url("/ui/events", params));
    source.addEventListener("ready", () => { delay = 1000; showLive("on"); onReady && onReady(); });
    source.addEventListener("resync", () => { onResync ? onResync() : onReady && onReady(); });
    source.onmessage = (e) => { onEvent && onEvent(JSON.parse(e.data)); };
    source.onerror = () => {
      showLive("off");
      if (source.readyState !== EventSource.CLOSED || closed) return;
      retry = setTimeout(async () => {
        try { await session(); } catch (e) { /* the manager is still away: try again */ }
        delay = Math.min(delay * 2, 30000);
        if (!closed) open();
      }, delay);
    };
  }
  open();
  return () => {
    closed = true;
    clearTimeout(retry);
    source.close();
  };
}
