// The side panel: a cited passage in its neighbourhood with the cited span marked, the
// whole document, and the corpus view (with the last indexing run's skipped files) and a
// search playground.

import { call } from "./api.js";
import { h, clear, marked, fmtScore, fmtTime, $ } from "./dom.js";

const panel = () => $("#panel");
const body = () => $("#panel-body");

let opener = null;

function activate(chip) {
  for (const el of document.querySelectorAll(".chip.active")) el.classList.remove("active");
  if (chip && chip.classList.contains("chip")) chip.classList.add("active");
}

export function openPanel(title, trigger) {
  opener = trigger || document.activeElement;
  activate(trigger);
  clear($("#panel-title")).append(title);
  panel().hidden = false;
  document.body.classList.add("panel-open");
  document.body.classList.remove("panel-wide");
  clear(body()).append(h("p", { class: "muted" }, "Loading…"));
  body().focus();
}

export function closePanel() {
  panel().hidden = true;
  document.body.classList.remove("panel-open", "panel-wide");
  activate(null);
  if (opener && opener.isConnected) opener.focus();
}

function showError(err) {
  clear(body()).append(h("p", { class: "error", role: "alert" }, err.message || String(err)));
}

function meta(src) {
  return h("dl", { class: "meta small" },
    h("dt", {}, "Document"), h("dd", {}, src.title || "(untitled)"),
    h("dt", {}, "Source"), h("dd", { class: "mono" }, src.source),
    h("dt", {}, "Characters"), h("dd", {}, `${src.start}–${src.end}`));
}

// `src` is a citation (Source) or a search hit (HitInfo); both carry the passage id.
export async function showSource(number, src, trigger) {
  openPanel(`Source [${number}]`, trigger);
  if (src.passage_id < 0) { // a fetched web page: only the text the run saw exists
    clear(body()).append(
      h("p", { class: "src-title" }, src.title || src.source),
      h("p", { class: "mono small" }, src.source),
      h("blockquote", { class: "passage" }, h("mark", { class: "cited" }, src.text || src.snippet || "")));
    return;
  }
  try {
    const view = await call("GET", `/v1/passages/${src.passage_id}?window=1`);
    const p = view.passage;
    const context = h("div", { class: "context", "aria-label": "Passage with its neighbours" });
    for (const n of view.neighbours) {
      const cited = n.passage_id === p.passage_id;
      context.append(h("p", { class: cited ? "passage is-cited" : "passage neighbour", dataset: { passage: String(n.passage_id) } },
        cited ? h("mark", { class: "cited" }, n.text) : n.text));
    }
    const docBtn = h("button", { type: "button", class: "btn ghost", onclick: () => showDocument(p.doc_id, p, number) },
      "Open the whole document");
    clear(body()).append(h("p", { class: "src-title" }, p.title || "(untitled)"), meta(p), context, docBtn);
    const mark = body().querySelector("mark.cited");
    if (mark) mark.scrollIntoView({ block: "nearest" });
  } catch (err) {
    showError(err);
  }
}

export async function showDocument(docId, cited, number) {
  openPanel(number ? `Document of [${number}]` : "Document");
  try {
    const doc = await call("GET", `/v1/documents/${docId.split("/").map(encodeURIComponent).join("/")}`);
    const text = cited ? marked(doc.text, cited.start, cited.end) : [doc.text];
    clear(body()).append(
      h("p", { class: "src-title" }, doc.title || "(untitled)"),
      h("p", { class: "mono small muted" }, doc.source),
      h("div", { class: "document" }, text));
    const mark = body().querySelector("mark.cited");
    if (mark) mark.scrollIntoView({ block: "center" });
  } catch (err) {
    showError(err);
  }
}

const CORPUS_FIELDS = [
  ["label", "Index"], ["kind", "Kind"], ["mode", "Search mode"], ["generation", "Generation"],
  ["documents", "Documents"], ["passages", "Passages"], ["embedder_id", "Embedder"],
  ["dim", "Dimensions"], ["factory", "FAISS index"], ["metric", "Metric"],
  ["faiss_version", "FAISS version"], ["created_at", "Built"],
];

export async function showCorpus(trigger) {
  openPanel("Corpus", trigger);
  document.body.classList.add("panel-wide");
  try {
    const info = await call("GET", "/v1/corpus");
    const dl = h("dl", { class: "meta" });
    for (const [key, label] of CORPUS_FIELDS) {
      if (info[key] === null || info[key] === undefined) continue;
      dl.append(h("dt", {}, label), h("dd", { class: key === "label" || key === "factory" ? "mono" : "" }, String(info[key])));
    }
    if (info.chunking) dl.append(h("dt", {}, "Chunking"),
      h("dd", {}, `${info.chunking.max_tokens} tokens, ${info.chunking.overlap_tokens} overlap`));
    const results = h("div", { class: "playground-results" });
    const input = h("input", { type: "search", id: "play-q", placeholder: "Search the index", required: true });
    const k = h("input", { type: "number", id: "play-k", min: 1, max: 50, value: 5 });
    const form = h("form", { class: "playground", onsubmit: (e) => { e.preventDefault(); playground(input.value, Number(k.value) || 5, results); } },
      h("label", { for: "play-q", class: "sr-only" }, "Search query"), input,
      h("label", { class: "small" }, "k ", k),
      h("button", { type: "submit", class: "btn primary" }, "Search"));
    clear(body()).append(dl, lastRun(info.last_run) || "", h("h3", {}, "Search playground"),
      h("p", { class: "muted small" }, "One query through dense, bm25 and hybrid search side by side; the served mode is what the agent's search tool uses."),
      form, results);
  } catch (err) {
    showError(err);
  }
}

// The last `thinkrag index` run: its counts, and each file it skipped with the reason.
function lastRun(run) {
  if (!run) return null;
  const verdict = run.published ? `published generation ${run.generation}` : `generation ${run.generation} unchanged`;
  const section = h("section", { class: "last-run", "aria-label": "Last indexing run" },
    h("h3", {}, "Last indexing run"),
    h("p", { class: "small" }, `${fmtTime(run.finished_at) || run.finished_at}: ${run.documents_read} document${run.documents_read === 1 ? "" : "s"} read, ` +
      `${run.added} added, ${run.updated} updated, ${run.removed} removed, ${run.unchanged} unchanged; ${verdict}.`));
  if (run.skipped_total === 0) {
    section.append(h("p", { class: "small muted" }, "No files were skipped."));
    return section;
  }
  const list = h("ul", { class: "skipped-list" });
  for (const s of run.skipped) {
    list.append(h("li", { class: "skipped-item" },
      h("span", { class: "mono skipped-source" }, s.source),
      h("span", { class: "small skipped-reason" }, s.reason)));
  }
  const more = run.skipped_total - run.skipped.length;
  section.append(h("h4", { class: "small" }, `Skipped (${run.skipped_total})`), list,
    more > 0 ? h("p", { class: "small muted" }, `and ${more} more: see last-run.json in the index directory.`) : "");
  return section;
}

async function playground(query, k, out) {
  clear(out).append(h("p", { class: "muted small" }, "Searching…"));
  try {
    const res = await call("POST", "/v1/corpus/compare", { query, k });
    const columns = h("div", { class: "compare" });
    for (const r of res.results) {
      const served = r.mode === res.served_mode ? " (served)" : "";
      const col = h("section", { class: "compare-col", dataset: { mode: r.mode }, "aria-label": `${r.mode} results` },
        h("h4", {}, r.mode + served, r.unavailable ? "" : h("span", { class: "muted small" }, ` ${r.hits.length} in ${(r.seconds * 1000).toFixed(1)} ms`)));
      if (r.unavailable) col.append(h("p", { class: "muted small" }, r.unavailable));
      const list = h("ol", { class: "hits" });
      for (const hit of r.hits) {
        list.append(h("li", { class: "hit" },
          h("div", { class: "hit-main" },
            h("div", { class: "hit-title" }, hit.title || hit.source, h("span", { class: "hit-score" }, fmtScore(hit.score))),
            h("div", { class: "hit-source small muted" }, hit.source),
            h("div", { class: "hit-snippet small" }, hit.text.slice(0, 300)),
            h("button", { type: "button", class: "linkish small", onclick: () => showDocument(hit.doc_id, hit) }, "Open document"))));
      }
      col.append(list);
      columns.append(col);
    }
    clear(out).append(columns);
  } catch (err) {
    clear(out).append(h("p", { class: "error" }, err.message));
  }
}
