// Try it: detect faces on an image file (input or drag-and-drop) or an image URL with
// POST /api/face/detect, then draw and list them.
import { call } from './api.js';
import { el, errorBox, field, showError } from './dom.js';
import { renderFaces } from './faces.js';
import { videoForm } from './video.js';

function select(id, options) {
  return el('select', { id, name: id },
    options.map(([value, label]) => el('option', { value, text: label })));
}

function numberInput(id, attrs) {
  return el('input', { id, name: id, type: 'number', inputmode: 'decimal', ...attrs });
}

/** The options the API takes, from the form; empty fields are left to the server. */
export function readOptions(form) {
  const value = (name) => form.elements[name].value.trim();
  const options = {};
  if (value('mode')) options.mode = value('mode');
  if (value('score-threshold')) options.score_threshold = Number(value('score-threshold'));
  if (value('min-face-size')) options.min_face_size = Number(value('min-face-size'));
  options.landmarks = value('landmarks');
  const attributes = ['pose', 'quality'].filter((name) => form.elements[`attr-${name}`].checked);
  if (attributes.length) options.attributes = attributes;
  return options;
}

export function optionsFieldset() {
  return el('fieldset', { class: 'options' },
    el('legend', { text: 'Options' }),
    field('Mode', select('mode', [['', 'Server default'], ['fast', 'Fast'], ['balanced', 'Balanced'], ['accurate', 'Accurate']])),
    field('Score threshold', numberInput('score-threshold', { min: '0', max: '1', step: '0.05', placeholder: 'model default' })),
    field('Min face size (px)', numberInput('min-face-size', { min: '1', step: '1', placeholder: 'none' })),
    field('Landmarks', select('landmarks', [['5', '5 points'], ['68', '68 points'], ['none', 'None']])),
    el('div', { class: 'checks' },
      el('input', { id: 'attr-pose', name: 'attr-pose', type: 'checkbox', checked: true }),
      el('label', { for: 'attr-pose', text: 'Pose' }),
      el('input', { id: 'attr-quality', name: 'attr-quality', type: 'checkbox' }),
      el('label', { for: 'attr-quality', text: 'Quality' })));
}

export function renderTry(view, app) {
  const fileInput = el('input', { id: 'image-file', name: 'image-file', type: 'file', accept: 'image/*' });
  const urlInput = el('input', {
    id: 'image-url', name: 'image-url', type: 'url', placeholder: 'https://example.com/photo.jpg',
    autocomplete: 'off', spellcheck: 'false',
  });
  const chosen = el('p', { class: 'muted', 'aria-live': 'polite', text: 'No image chosen.' });
  const drop = el('div', { class: 'drop' },
    field('Image file', fileInput),
    el('p', { class: 'muted', text: 'or drop an image here' }),
    chosen);
  const detect = el('button', { type: 'submit', text: 'Detect faces' });
  const status = el('p', { class: 'muted', 'aria-live': 'polite' });
  const error = errorBox();
  const form = el('form', { class: 'card try-form', novalidate: true },
    el('h1', { text: 'Try it' }),
    el('fieldset', {},
      el('legend', { text: 'Image' }),
      drop,
      field('Image URL', urlInput, 'http(s) URL the server downloads (used when no file is chosen)')),
    optionsFieldset(),
    el('div', { class: 'row' }, detect, status),
    error);
  const result = el('section', { class: 'result', 'aria-label': 'Result' });
  const video = videoForm(() => readOptions(form));
  view.append(el('div', { class: 'try' }, el('div', { class: 'forms' }, form, video), result));

  let objectUrl = null;
  const describe = () => {
    const file = fileInput.files && fileInput.files[0];
    chosen.textContent = file ? `Chosen: ${file.name} (${Math.round(file.size / 1024)} KB)` : 'No image chosen.';
  };
  fileInput.addEventListener('change', () => {
    if (fileInput.files.length) urlInput.value = '';
    describe();
  });
  urlInput.addEventListener('input', () => {
    if (urlInput.value) {
      fileInput.value = '';
      describe();
    }
  });
  for (const name of ['dragenter', 'dragover']) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) {
      fileInput.files = files;
      urlInput.value = '';
      describe();
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, '');
    const file = fileInput.files && fileInput.files[0];
    const url = urlInput.value.trim();
    if (!file && !url) {
      showError(error, 'Choose an image file or enter an image URL.');
      return;
    }
    const options = readOptions(form);
    detect.disabled = true;
    status.textContent = 'Detecting…';
    try {
      let data;
      let src;
      if (file) {
        const body = new FormData();
        body.append('file', file);
        body.append('options', JSON.stringify(options));
        data = await call('POST', '/api/face/detect', { form: body });
        if (objectUrl) URL.revokeObjectURL(objectUrl);
        objectUrl = URL.createObjectURL(file);
        src = objectUrl;
      } else {
        data = await call('POST', '/api/face/detect', { json: { image_url: url, ...options } });
        src = url;
      }
      if (data.result_code !== 1) {
        status.textContent = '';
        showError(error, `${data.error_code}: ${data.error_info}`);
        result.replaceChildren();
      } else {
        const count = data.result_list.length;
        status.textContent = `${count} face${count === 1 ? '' : 's'} found.`;
        await renderFaces(result, src, data);
      }
    } catch (err) {
      status.textContent = '';
      showError(error, err.message);
    } finally {
      detect.disabled = false;
      app.refreshCredits();
    }
  });
}
