// A detection result shown three ways: drawn on the image, one list entry per face
// (each carries `data-face`), and the raw JSON with a copy button. Used by Try it and
// by a task's detail.
import { el, clear } from './dom.js';
import { faceCanvas, loadImage } from './draw.js';

const round = (value, digits = 1) => (typeof value === 'number' ? value.toFixed(digits) : '—');

function detailRows(face) {
  const rows = [
    ['Score', round(face.score, 3)],
    ['Box', `x ${face.x}, y ${face.y}, ${face.width} × ${face.height} px`],
  ];
  for (const [name, point] of Object.entries(face.landmarks || {})) {
    if (Array.isArray(point)) rows.push([name.replace('_', ' ').replace(/^./, (c) => c.toUpperCase()), `${round(point[0])}, ${round(point[1])}`]);
  }
  if (Array.isArray(face.landmarks_68)) rows.push(['68 landmarks', `${face.landmarks_68.length} points`]);
  if (face.pose) {
    rows.push(['Pose', `yaw ${round(face.pose.yaw)}°, pitch ${round(face.pose.pitch)}°, roll ${round(face.pose.roll)}°`]);
  }
  if (face.quality) {
    rows.push(['Quality', `blur ${round(face.quality.blur, 2)}, brightness ${round(face.quality.brightness, 2)}`]);
  }
  for (const [name, value] of Object.entries(face)) {
    if (!['x', 'y', 'width', 'height', 'score', 'landmarks', 'landmarks_68', 'pose', 'quality'].includes(name)) {
      rows.push([name, typeof value === 'object' ? JSON.stringify(value) : String(value)]);
    }
  }
  return rows;
}

/** A copy-to-clipboard button for `text()`, with a fallback that selects `pre`. */
export function copyButton(text, pre, status, label = 'Copy') {
  return el('button', {
    type: 'button',
    class: 'quiet',
    text: label,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text());
        status.textContent = 'Copied.';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(pre);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
      }
    },
  });
}

export function rawJson(value, title = 'Raw JSON') {
  const text = JSON.stringify(value, null, 2);
  const pre = el('pre', { class: 'json', tabindex: '0', 'aria-label': title, text });
  const status = el('span', { class: 'muted', 'aria-live': 'polite' });
  return el('section', { class: 'raw' },
    el('div', { class: 'row' }, el('h3', { text: title }), copyButton(() => text, pre, status, 'Copy JSON'), status),
    pre);
}

/**
 * Renders `result` ({result_list, image, ...}) into `container`. `imageSrc` is what the
 * browser loads to draw on (a blob: of the chosen file or the image URL); when it
 * cannot be loaded the faces are still listed.
 */
export async function renderFaces(container, imageSrc, result, { raw = result } = {}) {
  clear(container);
  const faces = Array.isArray(result.result_list) ? result.result_list : [];
  const stage = el('div', { class: 'stage' });
  const list = el('ol', { class: 'faces', 'aria-label': 'Faces' });
  const detail = el('div', { class: 'face-detail', 'aria-live': 'polite' },
    el('p', { class: 'muted', text: faces.length ? 'Select a face to see its score and attributes.' : 'No face found.' }));
  const heading = el('h2', { text: `${faces.length} face${faces.length === 1 ? '' : 's'}` });
  container.append(
    el('div', { class: 'result-grid' },
      stage,
      el('div', { class: 'side' }, heading, list, detail)),
    rawJson(raw),
  );
  let drawing = null;
  const buttons = faces.map((face, index) => el('button', {
    type: 'button',
    class: 'face',
    'aria-pressed': 'false',
    dataset: { face: String(index) },
    text: `Face ${index + 1} · ${round(face.score, 2)}`,
  }));
  function select(index) {
    buttons.forEach((button, i) => button.setAttribute('aria-pressed', String(i === index)));
    if (drawing) drawing.select(index);
    clear(detail);
    const face = faces[index];
    const dl = el('dl');
    for (const [name, value] of detailRows(face)) dl.append(el('dt', { text: name }), el('dd', { text: value }));
    detail.append(el('h3', { text: `Face ${index + 1}` }), dl);
  }
  buttons.forEach((button, index) => {
    button.addEventListener('click', () => select(index));
    list.append(el('li', {}, button));
  });

  const img = imageSrc ? await loadImage(imageSrc) : null;
  if (img && img.naturalWidth > 0) {
    drawing = faceCanvas(img, result.image, faces);
    drawing.canvas.setAttribute('role', 'img');
    drawing.canvas.setAttribute('aria-label', `The image with ${faces.length} faces outlined`);
    drawing.canvas.addEventListener('click', (event) => {
      const index = drawing.faceAt(event.clientX, event.clientY);
      if (index >= 0) {
        select(index);
        buttons[index].focus();
      }
    });
    stage.append(drawing.canvas);
  } else {
    stage.append(
      el('p', { class: 'notice', text: 'The browser cannot load this image; its faces are listed instead.' }),
      el('table', { class: 'boxes' },
        el('thead', {}, el('tr', {}, ['Face', 'Score', 'x', 'y', 'Width', 'Height'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, faces.map((f, i) => el('tr', {},
          [`${i + 1}`, round(f.score, 3), f.x, f.y, f.width, f.height].map((v) => el('td', { text: String(v) })))))));
  }
  return { select, faces };
}
