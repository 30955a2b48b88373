// One research run on the page, built from its event stream (agent/events.py): reasoning
// per step in a collapsible block, each tool call with its results, the answer with
// citation chips, and the budgets it used. Every string goes in as text (dom.js).

import { h, append, clear, citedText, fmtScore } from "./dom.js";

// Words for agent.events.StopReason (kept in step with reason_text; a test checks the keys).
export const STOP_REASONS = {
  max_steps: "the step budget was used up",
  max_tool_calls: "the tool-call budget was used up",
  max_total_tokens: "the token budget was used up",
  deadline: "the time limit was reached",
  thinking_budget: "the model kept thinking past its per-step budget",
  repeated_searches: "the searches kept repeating without finding anything new",
  model_gave_up: "the model stopped producing actions",
};

const TOOL_LABELS = { search: "Search", open: "Open", fetch_url: "Fetch", calculator: "Calculate" };

function parseArgs(text) {
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" ? value : { value };
  } catch {
    return { raw: text };
  }
}

function toolSummary(name, args) {
  if (name === "search" || name === "multihop_search") return args.query ?? args.raw ?? "";
  if (name === "open") return `[${args.number}] ${args.scope || "neighbours"}`;
  if (name === "fetch_url") return args.url ?? "";
  if (name === "calculator") return args.expression ?? args.raw ?? "";
  return Object.entries(args).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
}

export class RunView {
  // `hooks`: { onCite(number, sources, button), onStatus(text) }
  constructor(question, hooks, startedAt = Date.now()) {
    this.hooks = hooks;
    this.sources = new Map();
    this.steps = new Map();
    this.calls = new Map();
    this.answerText = "";
    this.toolCount = 0;
    this.maxStep = 0;
    this.startedAt = startedAt;
    this.finished = false;
    this.question = h("div", { class: "q" }, question);
    this.stepsEl = h("div", { class: "steps" });
    this.answerEl = h("div", { class: "answer", "aria-live": "polite" });
    this.usageEl = h("p", { class: "usage small muted" });
    this.noteEl = h("p", { class: "note small", hidden: true });
    this.el = h("article", { class: "turn running", "aria-label": "Research run" },
      this.question, this.stepsEl, this.answerEl, this.noteEl, this.usageEl);
    this.timer = setInterval(() => this.renderUsage(), 500);
    this.renderUsage();
  }

  step(n) {
    let s = this.steps.get(n);
    if (!s) {
      for (const other of this.steps.values()) this.settle(other);
      const text = h("div", { class: "reasoning-text" });
      const details = h("details", { class: "thinking", open: true },
        h("summary", {}, h("span", { class: "pulse", "aria-hidden": "true" }), `Thinking · step ${Math.max(n, 1)}`), text);
      // Only a user's click counts as choosing (a `toggle` event also fires for our own changes).
      details.firstChild.addEventListener("click", () => { s.touched = true; });
      const tools = h("div", { class: "tools" });
      const el = h("section", { class: "step", dataset: { step: String(n) } }, details, tools);
      s = { n, el, details, text, tools, chars: 0, touched: false };
      s.details.hidden = true;
      this.steps.set(n, s);
      this.stepsEl.append(el);
      this.maxStep = Math.max(this.maxStep, n);
    }
    return s;
  }

  // Close a step's thinking block once it is over (unless the user opened or closed it).
  settle(s) {
    s.el.classList.add("done");
    if (!s.touched) s.details.open = false;
  }

  apply(name, ev) {
    switch (name) {
      case "reasoning_delta": {
        const s = this.step(ev.step);
        s.details.hidden = false;
        s.text.append(ev.text);
        s.chars += ev.text.length;
        this.hooks.onStatus("Thinking…");
        break;
      }
      case "tool_call": this.toolCall(ev); break;
      case "tool_result": this.toolResult(ev); break;
      case "answer_delta":
        for (const s of this.steps.values()) this.settle(s);
        this.answerText += ev.text;
        this.renderAnswer();
        this.hooks.onStatus("Writing the answer…");
        break;
      case "citation": this.sources.set(ev.source.number, ev.source); break;
      case "run_finished": this.finish(ev); break;
      case "error": this.failed(ev); break;
      case "run_resumed": this.note(`Resumed after a restart (attempt ${ev.attempt}).`); break;
      default: break;
    }
  }

  toolCall(ev) {
    const s = this.step(ev.step);
    this.toolCount += 1;
    const args = parseArgs(ev.arguments);
    const body = h("div", { class: "tool-body" }, h("p", { class: "muted small" }, "Running…"));
    const card = h("div", { class: `tool tool-${ev.name} pending`, dataset: { call: ev.call_id } },
      h("div", { class: "tool-head" },
        h("span", { class: "tool-name" }, TOOL_LABELS[ev.name] || ev.name),
        h("span", { class: "tool-arg" }, toolSummary(ev.name, args))),
      body);
    this.calls.set(ev.call_id, { card, body });
    s.tools.append(card);
    this.settleBefore(s);
    this.hooks.onStatus(`${TOOL_LABELS[ev.name] || ev.name}: ${toolSummary(ev.name, args)}`);
  }

  settleBefore(s) {
    if (!s.touched && s.details.open) this.settle(s);
  }

  toolResult(ev) {
    let entry = this.calls.get(ev.call_id);
    if (!entry) {
      this.toolCall({ step: ev.step, call_id: ev.call_id, name: ev.name, arguments: "{}" });
      entry = this.calls.get(ev.call_id);
    }
    const { card, body } = entry;
    card.classList.remove("pending");
    card.classList.toggle("failed", !ev.ok);
    clear(body);
    if (ev.hits && ev.hits.length) {
      const list = h("ol", { class: "hits" });
      for (const hit of ev.hits) {
        if (!this.sources.has(hit.number)) this.sources.set(hit.number, hit);
        const chip = h("button", {
          type: "button", class: "chip", dataset: { cite: String(hit.number) },
          "aria-label": `Open source ${hit.number}`,
          onclick: () => this.hooks.onCite(hit.number, this.sources, chip),
        }, String(hit.number));
        list.append(h("li", { class: "hit" }, chip,
          h("div", { class: "hit-main" },
            h("div", { class: "hit-title" }, hit.title || hit.source,
              h("span", { class: "hit-score", title: "score" }, fmtScore(hit.score))),
            h("div", { class: "hit-source small muted" }, hit.source),
            h("div", { class: "hit-snippet small" }, hit.snippet))));
      }
      body.append(list);
      if (ev.cached) body.append(h("p", { class: "muted small" }, "Already searched: results from earlier."));
    } else {
      body.append(h("pre", { class: "observation small" }, ev.observation));
    }
  }

  renderAnswer() {
    clear(this.answerEl);
    for (const para of this.answerText.split(/\n{2,}/)) {
      if (!para.trim()) continue;
      this.answerEl.append(h("p", {}, citedText(para, (n, chip) => this.hooks.onCite(n, this.sources, chip))));
    }
  }

  note(text) {
    this.noteEl.hidden = false;
    clear(this.noteEl).append(text);
  }

  renderUsage() {
    const secs = this.seconds ?? (Date.now() - this.startedAt) / 1000;
    const parts = [`${this.maxStep} step${this.maxStep === 1 ? "" : "s"}`,
      `${this.toolCount} tool call${this.toolCount === 1 ? "" : "s"}`];
    if (this.usage) {
      const u = this.usage;
      const total = (u.prompt_tokens || 0) + (u.completion_tokens || 0);
      parts.push(`${total.toLocaleString()} tokens${u.reasoning_tokens ? ` (${u.reasoning_tokens.toLocaleString()} thinking)` : ""}`);
    }
    parts.push(`${secs.toFixed(1)} s`);
    clear(this.usageEl).append(parts.join(" · "));
  }

  finish(ev) {
    for (const src of ev.sources) this.sources.set(src.number, src);
    if (ev.answer !== this.answerText) {
      this.answerText = ev.answer;
      this.renderAnswer();
    }
    this.maxStep = Math.max(this.maxStep, ev.steps);
    this.toolCount = ev.tool_calls;
    this.usage = ev.usage;
    this.seconds = ev.seconds;
    if (ev.finalized_reason) {
      const why = STOP_REASONS[ev.finalized_reason] || ev.finalized_reason;
      this.note(`Answered early: ${why}. The answer uses what was found so far.`);
      this.noteEl.classList.add("warn");
    }
    if (ev.removed_citations && ev.removed_citations.length) {
      const removed = ev.removed_citations.map((n) => `[${n}]`).join(", ");
      append(this.noteEl, [this.noteEl.hidden ? "" : " ", `Removed citations the run never retrieved: ${removed}.`]);
      this.noteEl.hidden = false;
    }
    this.hooks.onStatus("Answer ready");
  }

  failed(ev) {
    const text = ev.kind === "cancelled" ? "Stopped: the run was cancelled." : `The run failed (${ev.kind}): ${ev.message}`;
    this.note(text);
    this.noteEl.classList.add(ev.kind === "cancelled" ? "warn" : "bad");
    this.hooks.onStatus(ev.kind === "cancelled" ? "Stopped" : "Run failed");
  }

  end(status) {
    this.finished = true;
    clearInterval(this.timer);
    this.el.classList.remove("running");
    this.el.dataset.status = status || "";
    for (const s of this.steps.values()) this.settle(s);
    this.renderUsage();
  }
}
