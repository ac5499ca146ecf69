// DOM helpers: every value from the server goes in as text (textContent / text nodes), never as markup.

/**
 * Creates an element. `props`: `class`, `text`, `on<event>` listeners, `hidden`/`disabled` booleans,
 * `dataset` (object), anything else as an attribute (never `style`, never an `on*` attribute).
 */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'required') e[k] = Boolean(v);
    else if (k === 'value') e.value = String(v);
    else if (k !== 'style' && !k.startsWith('on')) e.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replaces the children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

/** Epoch ms or ISO text as a local date-time. */
export function when(t) {
  if (t === null || t === undefined) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** A value as compact JSON text. */
export function json(v, indent = 2) {
  try {
    return JSON.stringify(v, null, indent);
  } catch {
    return String(v);
  }
}

/** A small tag whose class is one of a fixed set (never a free value as a class). */
const TAGS = new Set(['user', 'config', 'trusted', 'untrusted', 'model', 'allow', 'deny', 'approve', 'ok', 'denied', 'error', 'held', 'pending', 'timeout']);
export function tag(text) {
  const t = String(text);
  return el('span', { class: TAGS.has(t) ? `tag ${t}` : 'tag', text: t });
}

/** A definition list from [label, value] pairs. */
export function meta(pairs) {
  return el('dl', { class: 'meta' }, pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v instanceof Node ? v : String(v ?? '—'))]));
}

/** A table: `cols` [header, (row) => cell], rows; `onRow` makes rows clickable. */
export function table(cols, rows, onRow) {
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, cols.map(([h]) => el('th', { text: h })))),
    el(
      'tbody',
      {},
      rows.map((r) => {
        const tr = el('tr', onRow ? { class: 'clickable', onclick: () => onRow(r) } : {}, cols.map(([, f]) => {
          const v = f(r);
          return el('td', {}, v instanceof Node ? v : String(v ?? '—'));
        }));
        return tr;
      }),
    ),
  );
}

/** A short message at the bottom right. */
export function flash(message, isError = false) {
  const f = document.getElementById('flash');
  if (!f) return;
  f.textContent = message;
  f.className = isError ? 'error' : '';
  f.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => {
    f.hidden = true;
  }, 4000);
}

export function empty(text) {
  return el('div', { class: 'empty', text });
}
