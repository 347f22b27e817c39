// Tasks: the account's tasks newest first (GET /api/aigc/tasks, keyset pages), and one
// task's detail: options, result on the image, callback attempts, Redeliver.
import { call } from './api.js';
import { clear, el, errorBox, field, formatTime, shorten, showError } from './dom.js';
import { rawJson, renderFaces } from './faces.js';
import { isVideo, tracksTimeline } from './video.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed'];
const PAGE_SIZE = 20;
const CALLBACK_NAMES = { 1: 'Start callback', 2: 'Complete callback' };
const REFRESH_MS = 1000;

function badge(status) {
  return el('span', { class: `badge ${status}`, text: status });
}

function parseHash(path) {
  const [route, query = ''] = path.split('?');
  return { route, params: new URLSearchParams(query) };
}

function callbackSummary(task) {
  return (task.deliveries || []).map((d) => el('span', { class: `badge ${d.status}`, title: CALLBACK_NAMES[d.process_status] || '', text: `${d.process_status === 1 ? 'start' : 'complete'}: ${d.status}` }));
}

export function renderTaskList(view, app, path) {
  const { params } = parseHash(path);
  const status = el('select', { id: 'filter-status', name: 'status' },
    el('option', { value: '', text: 'Any status' }),
    STATUSES.map((s) => el('option', { value: s, text: s })));
  status.value = params.get('status') || '';
  const creation = el('input', {
    id: 'filter-creation', name: 'creation_id', type: 'text', autocomplete: 'off', spellcheck: 'false',
    placeholder: '32 hex characters', value: params.get('creation_id') || '',
  });
  const error = errorBox();
  const filters = el('form', { class: 'row filters', role: 'search' },
    field('Status', status), field('Creation id', creation),
    el('button', { type: 'submit', text: 'Filter' }),
    el('a', { href: '#/tasks', text: 'Clear filters' }));
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (status.value) query.set('status', status.value);
    if (creation.value.trim()) query.set('creation_id', creation.value.trim());
    const text = query.toString();
    location.hash = `#/tasks${text ? `?${text}` : ''}`;
  });
  const body = el('tbody');
  const table = el('table', { class: 'tasks' },
    el('caption', { text: 'Newest first' }),
    el('thead', {}, el('tr', {}, ['Task', 'Status', 'Created', 'Started', 'Ended', 'Image or video URL', 'callback_params', 'Callbacks']
      .map((h) => el('th', { scope: 'col', text: h })))),
    body);
  const pager = el('nav', { class: 'row pager', 'aria-label': 'Pages' });
  view.append(el('section', { class: 'card' }, el('h1', { text: 'Tasks' }), filters, error, table, pager));

  (async () => {
    try {
      const data = await call('GET', '/api/aigc/tasks', {
        query: {
          status: params.get('status'), creation_id: params.get('creation_id'),
          before_id: params.get('before_id'), limit: PAGE_SIZE,
        },
      });
      if (!data.tasks.length) {
        body.append(el('tr', {}, el('td', { colspan: '8', class: 'muted', text: 'No task matches.' })));
      }
      for (const task of data.tasks) {
        const context = JSON.stringify(task.request_context ?? {});
        const source = task.target_image_url || task.target_video_url || '';
        body.append(el('tr', { dataset: { task: task.task_id } },
          el('td', {}, el('a', { href: `#/tasks/${encodeURIComponent(task.task_id)}`, text: task.task_id })),
          el('td', {}, badge(task.status)),
          el('td', { text: formatTime(task.create_time) }),
          el('td', { text: formatTime(task.start_time) }),
          el('td', { text: formatTime(task.end_time) }),
          el('td', { class: 'wrap mono', title: source, text: shorten(source, 48) }),
          el('td', { class: 'wrap mono', title: context, text: shorten(context, 48) }),
          el('td', {}, callbackSummary(task))));
      }
      if (params.get('before_id')) {
        const newest = new URLSearchParams(params);
        newest.delete('before_id');
        pager.append(el('a', { href: `#/tasks${newest.toString() ? `?${newest}` : ''}`, text: 'Newest' }));
      }
      if (data.next_before_id) {
        const older = new URLSearchParams(params);
        older.set('before_id', data.next_before_id);
        pager.append(el('a', { href: `#/tasks?${older}`, text: 'Older tasks' }));
      }
    } catch (err) {
      showError(error, err.message);
    }
  })();
}

function attemptItem(attempt) {
  const ok = attempt.http_status === 200;
  const parts = [
    formatTime(attempt.time),
    attempt.http_status === null ? 'no HTTP answer' : `HTTP ${attempt.http_status}`,
    `${attempt.duration_ms} ms`,
  ];
  return el('li', { class: ok ? 'good' : 'bad' },
    el('span', { text: parts.join(' · ') }),
    attempt.error ? el('div', { class: 'error-text', text: attempt.error }) : null);
}

function deliveryTimeline(delivery) {
  const title = CALLBACK_NAMES[delivery.process_status] || `Callback ${delivery.process_status}`;
  const items = delivery.history.map((attempt) => ({ time: attempt.time, node: attemptItem(attempt) }));
  if (delivery.redelivered_at) {
    items.push({
      time: delivery.redelivered_at,
      node: el('li', { class: 'marker', text: `${formatTime(delivery.redelivered_at)} · redelivery requested` }),
    });
  }
  items.sort((a, b) => a.time - b.time);
  const next = delivery.status === 'pending' && delivery.next_attempt_time
    ? el('p', { class: 'muted', text: `Next attempt ${formatTime(delivery.next_attempt_time)}` }) : null;
  return el('section', { class: 'delivery', dataset: { delivery: String(delivery.process_status) } },
    el('h3', {}, `${title} `, badge(delivery.status),
      el('span', { class: 'muted', text: ` ${delivery.attempts} attempt${delivery.attempts === 1 ? '' : 's'}` })),
    items.length ? el('ol', { class: 'timeline' }, items.map((item) => item.node))
      : el('p', { class: 'muted', text: 'Not attempted yet.' }),
    next);
}

function resultSummary(task) {
  if (task.result_code === 1 && isVideo(task)) {
    const frames = task.video ? task.video.frames_analysed : '?';
    return `${task.result_list.length} faces in ${frames} frames, ${task.tracks.length} tracks`;
  }
  if (task.result_code === 1) return `${task.result_list.length} faces`;
  return task.error_code ? `${task.error_code}: ${task.error_info}` : '—';
}

function settled(task) {
  return ['succeeded', 'failed'].includes(task.status)
    && task.deliveries.length === 2
    && task.deliveries.every((d) => d.status !== 'pending');
}

export function renderTaskDetail(view, app, path) {
  const id = decodeURIComponent(parseHash(path).route.split('/')[2] || '');
  const error = errorBox();
  const header = el('div', { class: 'row' }, el('h1', { text: `Task ${id}` }));
  const facts = el('dl', { class: 'facts' });
  const callbacks = el('div', { class: 'callbacks' });
  const result = el('section', { class: 'result', 'aria-label': 'Result' });
  const redeliver = el('button', { type: 'button', class: 'quiet', text: 'Redeliver', disabled: true });
  const redeliverStatus = el('span', { class: 'muted', 'aria-live': 'polite' });
  header.append(redeliver, redeliverStatus);
  const card = el('section', { class: 'card' },
    el('p', {}, el('a', { href: '#/tasks', text: '← All tasks' })), header, error, facts);
  const callbackCard = el('section', { class: 'card' }, el('h2', { text: 'Callbacks' }), callbacks);
  view.append(card, callbackCard, result);
  let shownResult = false;
  let timer = null;

  async function load() {
    timer = null;
    if (!view.isConnected || !card.isConnected) return;
    let task;
    try {
      task = await call('GET', `/api/aigc/task/${encodeURIComponent(id)}`);
    } catch (err) {
      showError(error, err.message);
      return;
    }
    if (!card.isConnected) return;
    clear(facts);
    const rows = [
      ['Status', badge(task.status)],
      ['Creation id', task.creation_id],
      ['Created', formatTime(task.create_time)],
      ['Started', formatTime(task.start_time)],
      ['Ended', formatTime(task.end_time)],
      ['Cost', task.cost_time === null ? '—' : `${task.cost_time} s`],
      task.target_video_url ? ['Video URL', task.target_video_url] : ['Image URL', task.target_image_url],
      ['Result', resultSummary(task)],
      task.progress ? ['Progress', `${task.progress.frames_done} of ${task.progress.frames_total} frames`] : null,
      ['Options', el('pre', { class: 'json small', text: JSON.stringify(task.options, null, 1) })],
      ['callback_params', el('pre', { class: 'json small context', text: JSON.stringify(task.request_context, null, 2) })],
    ];
    for (const [name, value] of rows.filter(Boolean)) facts.append(el('dt', { text: name }), el('dd', { class: 'wrap' }, value));
    clear(callbacks);
    if (!task.deliveries.length) callbacks.append(el('p', { class: 'muted', text: 'No callback scheduled yet.' }));
    for (const delivery of task.deliveries) callbacks.append(deliveryTimeline(delivery));
    const complete = task.deliveries.find((d) => d.process_status === 2);
    redeliver.disabled = !complete || complete.status === 'pending';
    if (!shownResult && ['succeeded', 'failed'].includes(task.status)) {
      shownResult = true;
      if (task.result_code === 1 && isVideo(task)) {
        clear(result).append(tracksTimeline(task), rawJson(task));
      } else if (task.result_code === 1) {
        await renderFaces(result, task.target_image_url, task, { raw: task });
      } else {
        clear(result).append(rawJson(task));
      }
    }
    if (!settled(task)) timer = setTimeout(load, REFRESH_MS);
  }

  redeliver.addEventListener('click', async () => {
    redeliver.disabled = true;
    redeliverStatus.textContent = 'Scheduling…';
    try {
      const data = await call('POST', `/api/aigc/task/${encodeURIComponent(id)}/redeliver`);
      redeliverStatus.textContent = `Complete callback scheduled again (webhook-id ${data.webhook_id}).`;
    } catch (err) {
      redeliverStatus.textContent = '';
      showError(error, err.message);
    }
    if (timer) clearTimeout(timer);
    load();
  });
  load();
}
