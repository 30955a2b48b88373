// DOM building that can only ever produce text: strings become text nodes, never markup.
// Nothing in the console parses strings as HTML; model and document text goes through here.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

// Text with `[n]` citation marks turned into chip buttons (`onCite(n, button)` on click).
export function citedText(text, onCite) {
  const out = [];
  const re = /\[(\d+)\]/g;
  let pos = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > pos) out.push(text.slice(pos, m.index));
    const n = Number(m[1]);
    const chip = h("button", {
      type: "button",
      class: "chip",
      "aria-label": `Open source ${n}`,
      dataset: { cite: String(n) },
      onclick: () => onCite(n, chip),
    }, String(n));
    out.push(chip);
    pos = re.lastIndex;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

// `text` with [start, end) wrapped in <mark> (offsets clamped); returns the nodes.
export function marked(text, start, end) {
  const a = Math.max(0, Math.min(start, text.length));
  const b = Math.max(a, Math.min(end, text.length));
  return [text.slice(0, a), h("mark", { class: "cited" }, text.slice(a, b)), text.slice(b)];
}

export function fmtScore(score) {
  return Math.abs(score) >= 10 ? score.toFixed(1) : score.toFixed(3);
}

export function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
