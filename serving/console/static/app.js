// The console's wiring: API key, threads, asking, stopping, and rejoining a running stream.
// State that must survive a reload lives in the URL (`#/t/<thread id>`) and on the server.

import { ApiError, call, followRun, storeKey, storedKey } from "./api.js";
import { h, clear, fmtTime, $ } from "./dom.js";
import { closePanel, showCorpus, showSource } from "./panel.js";
import { RunView } from "./run.js";

const TERMINAL = new Set(["success", "error", "timeout", "interrupted"]);
const BUDGETS = ["max_steps", "max_tool_calls", "max_total_tokens", "thinking_tokens_per_step", "deadline_seconds", "top_k"];

const state = { thread: null, threads: [], live: null, epoch: 0 };

function status(text) {
  clear($("#status")).append(text || "");
}

function hooks() {
  return {
    onStatus: status,
    onCite: (n, sources, chip) => {
      const src = sources.get(n);
      if (src) showSource(n, src, chip);
    },
  };
}

// -- API key ------------------------------------------------------------------------------
function askForKey(message) {
  const dlg = $("#key-dialog");
  const err = $("#key-error");
  err.hidden = !message;
  clear(err).append(message || "");
  $("#key-input").value = "";
  if (!dlg.open) dlg.showModal();
  $("#key-input").focus();
}

async function useKey(event) {
  event.preventDefault();
  const key = $("#key-input").value.trim();
  if (!key) return;
  storeKey(key);
  try {
    await call("GET", "/v1/corpus");
  } catch (err) {
    if (err.status === 401) {
      storeKey("");
      askForKey(`That key was refused: ${err.message}`);
      return;
    }
  }
  $("#key-dialog").close();
  await restart();
}

// A 401 anywhere means the key is missing or wrong: ask once, then carry on.
function guard(err) {
  if (err instanceof ApiError && err.status === 401) {
    askForKey(storedKey() ? `The key was refused: ${err.message}` : "");
    return true;
  }
  return false;
}

// -- threads ------------------------------------------------------------------------------
function threadTitle(t) {
  if (typeof t.metadata?.title === "string" && t.metadata.title) return t.metadata.title;
  const first = (t.values?.messages || []).find((m) => m.type === "human");
  return first ? String(first.content) : "Untitled thread";
}

function renderThreads() {
  const list = clear($("#thread-list"));
  const needle = $("#thread-filter").value.trim().toLowerCase();
  const shown = state.threads.filter((t) => !needle || threadTitle(t).toLowerCase().includes(needle));
  for (const t of shown) {
    const title = threadTitle(t);
    const current = t.thread_id === state.thread;
    list.append(h("li", { class: current ? "thread current" : "thread", dataset: { thread: t.thread_id } },
      h("button", { type: "button", class: "thread-open", "aria-current": current ? "page" : null, onclick: () => go(t.thread_id) },
        h("span", { class: "thread-title" }, title),
        h("span", { class: "thread-time small muted" }, fmtTime(t.created_at))),
      h("button", { type: "button", class: "icon-btn thread-delete", "aria-label": `Delete thread: ${title}`, onclick: () => removeThread(t) }, "×")));
  }
  $("#thread-empty").hidden = state.threads.length > 0;
}

async function loadThreads() {
  try {
    state.threads = await call("POST", "/threads/search", { limit: 200 });
    renderThreads();
  } catch (err) {
    if (!guard(err)) status(err.message);
  }
}

async function removeThread(t) {
  if (!confirm(`Delete the thread “${threadTitle(t)}” and its runs?`)) return;
  try {
    await call("DELETE", `/threads/${encodeURIComponent(t.thread_id)}`);
  } catch (err) {
    if (guard(err)) return;
    if (err.status !== 404) { status(err.message); return; }
  }
  state.threads = state.threads.filter((x) => x.thread_id !== t.thread_id);
  if (state.thread === t.thread_id) go(null);
  renderThreads();
}

function go(threadId) {
  location.hash = threadId ? `#/t/${encodeURIComponent(threadId)}` : "";
  if (!threadId) openThread(null);
  document.body.classList.remove("threads-open");
}

function hashThread() {
  const m = /^#\/t\/(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function resetConversation() {
  if (state.live) state.live.abort.abort();
  state.live = null;
  for (const el of document.querySelectorAll("#conversation .turn")) el.remove();
  $("#welcome").hidden = false;
  setLive(false);
}

async function openThread(threadId) {
  const epoch = ++state.epoch;
  resetConversation();
  state.thread = threadId;
  renderThreads();
  if (!threadId) return;
  let runs;
  try {
    runs = await call("GET", `/threads/${encodeURIComponent(threadId)}/runs?limit=100`);
  } catch (err) {
    if (guard(err)) return;
    status(err.status === 404 ? "That thread does not exist (or belongs to another key)." : err.message);
    state.thread = null;
    return;
  }
  for (const run of runs.reverse()) {
    if (epoch !== state.epoch) return;
    await follow(run, epoch);
  }
}

// -- runs -------------------------------------------------------------------------------
function setLive(live) {
  $("#stop").hidden = !live;
  $("#send").disabled = live;
}

async function follow(run, epoch) {
  const view = new RunView("", hooks(), Date.parse(run.created_at) || Date.now());
  $("#welcome").hidden = true;
  $("#conversation").append(view.el);
  const abort = new AbortController();
  const live = !TERMINAL.has(run.status);
  if (live) {
    state.live = { runId: run.run_id, abort, view };
    setLive(true);
  }
  let first = true;
  try {
    const end = await followRun(run.run_id, (name, ev) => {
      if (name === "run_started") { clear(view.question).append(ev.question); return; }
      const box = $("#conversation");
      const following = box.scrollTop + box.clientHeight >= box.scrollHeight - 80; // reader at the bottom
      view.apply(name, ev);
      if (name === "reasoning_delta" && first) { first = false; performance.mark("thinkrag:first-reasoning"); } // in the DOM
      if (live && following) view.el.scrollIntoView({ block: "end" });
    }, { signal: abort.signal, onReconnect: () => status("Connection lost; reconnecting…") });
    view.end(end ? end.status : ""); // null: we stopped following (another thread opened)
    if (live && end) view.el.scrollIntoView({ block: "end" });
  } catch (err) {
    if (!guard(err)) view.note(`Lost the run's stream: ${err.message}`);
    view.end("");
  }
  if (epoch === state.epoch && state.live && state.live.runId === run.run_id) {
    state.live = null;
    setLive(false);
  }
}

function budget(form) {
  const out = {};
  for (const name of BUDGETS) {
    const raw = form.elements[name].value.trim();
    if (raw !== "") out[name] = Number(raw);
  }
  return Object.keys(out).length ? out : null;
}

async function ask(event) {
  event.preventDefault();
  const form = $("#ask");
  const question = $("#question").value.trim();
  const errEl = $("#ask-error");
  errEl.hidden = true;
  if (!question || state.live) return;
  performance.clearMarks();
  performance.mark("thinkrag:ask");
  $("#send").disabled = true;
  try {
    let threadId = state.thread;
    if (!threadId) {
      const t = await call("POST", "/threads", { metadata: { title: question.slice(0, 200), created_by: "console" } });
      threadId = t.thread_id;
      state.threads.unshift(t);
      state.thread = threadId;
      state.epoch += 1;
      history.replaceState(null, "", `#/t/${encodeURIComponent(threadId)}`);
      renderThreads();
    }
    const body = { question, thread_id: threadId };
    const b = budget(form);
    if (b) body.budget = b;
    const run = await call("POST", "/v1/runs", body);
    $("#question").value = "";
    await follow(run, state.epoch);
  } catch (err) {
    $("#send").disabled = false;
    if (guard(err)) return;
    errEl.hidden = false;
    clear(errEl).append(err.message);
  }
}

async function stop() {
  if (!state.live) return;
  $("#stop").disabled = true;
  try {
    await call("POST", `/v1/runs/${encodeURIComponent(state.live.runId)}/cancel`);
  } catch (err) {
    if (!guard(err)) status(err.message);
  } finally {
    $("#stop").disabled = false;
  }
}

// -- boot -------------------------------------------------------------------------------
async function restart() {
  state.threads = [];
  renderThreads();
  await loadThreads();
  await openThread(hashThread());
}

function wire() {
  $("#ask").addEventListener("submit", ask);
  $("#question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      $("#ask").requestSubmit();
    }
  });
  $("#stop").addEventListener("click", stop);
  $("#new-thread").addEventListener("click", () => { go(null); $("#question").focus(); });
  $("#thread-filter").addEventListener("input", renderThreads);
  $("#panel-close").addEventListener("click", closePanel);
  $("#open-corpus").addEventListener("click", (e) => showCorpus(e.currentTarget));
  $("#open-key").addEventListener("click", () => askForKey(""));
  $("#key-form").addEventListener("submit", useKey);
  $("#key-forget").addEventListener("click", () => { storeKey(""); $("#key-dialog").close(); restart(); });
  $("#toggle-threads").addEventListener("click", (e) => {
    const open = document.body.classList.toggle("threads-open");
    e.currentTarget.setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("#panel").hidden && !$("#key-dialog").open) closePanel();
  });
  window.addEventListener("hashchange", () => {
    const id = hashThread();
    if (id !== state.thread) openThread(id);
  });
}

async function boot() {
  wire();
  try {
    await call("GET", "/v1/corpus");
  } catch (err) {
    if (guard(err)) return;
  }
  await restart();
  $("#question").focus();
}

boot();
