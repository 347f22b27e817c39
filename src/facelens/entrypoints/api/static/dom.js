// DOM helpers. Text is only ever inserted as Text nodes or textContent, never as HTML:
// every string the API returns may come from a user (callback_params, URLs, errors).

/**
 * el('button', {class: 'x', type: 'button', onclick: fn}, 'label', childNode)
 * Props: `class`, `text` (textContent), `dataset`, `on<event>` listeners, `true` for a
 * bare attribute; anything else is set with setAttribute (never an inline style or
 * handler: the page's CSP forbids both).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = String(value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (value === true) node.setAttribute(name, '');
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** A labelled form field: [label, control] with the label's `for` set. */
export function field(labelText, control, hint) {
  const label = el('label', { for: control.id, text: labelText });
  return el('div', { class: 'field' }, label, control, hint ? el('small', { text: hint }) : null);
}

let uid = 0;
export function uniqueId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Milliseconds since the epoch -> local date and time, or an em dash. */
export function formatTime(ms) {
  if (ms === null || ms === undefined || ms === '') return '—';
  const date = new Date(Number(ms));
  if (Number.isNaN(date.getTime())) return '—';
  return date.toLocaleString(undefined, {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

/** A string cut to `max` characters with an ellipsis (the full text goes in a title). */
export function shorten(text, max = 60) {
  const value = String(text ?? '');
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

export function errorBox() {
  return el('p', { class: 'error', role: 'alert', hidden: true });
}

export function showError(box, message) {
  box.textContent = message || '';
  box.hidden = !message;
}
