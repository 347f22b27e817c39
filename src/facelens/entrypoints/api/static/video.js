// Video: a video URL submitted as a queued task (POST /api/aigc/task/submit with
// target_video_url), and a finished video task's face tracks drawn on a timeline.
import { call } from './api.js';
import { el, errorBox, field, showError } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.append(document.createTextNode(text));
  return node;
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

// The form's fields are named by their ids. A URL is neither filled in nor spell-checked.
const urlInput = (id, placeholder) => el('input', {
  id, name: id, type: 'url', autocomplete: 'off', spellcheck: 'false', placeholder,
});
const countInput = (id, min, placeholder) => el('input', {
  id, name: id, type: 'number', min: String(min), step: '1', placeholder,
});

/** The form under Try it; `readOptions()` gives the detection options of the image form. */
export function videoForm(readOptions) {
  const videoUrl = urlInput('video-url', 'https://example.com/clip.mp4');
  const callbackUrl = urlInput('callback-url', 'https://your-receiver.example/cb');
  const interval = countInput('frame-interval', 0, '1000 (0: every frame)');
  const maxFrames = countInput('max-frames', 1, '300');
  const error = errorBox();
  const status = el('p', { class: 'muted', 'aria-live': 'polite' });
  const submit = el('button', { type: 'submit', text: 'Submit video task' });
  const form = el('form', { class: 'card video-form', novalidate: true },
    el('h2', { text: 'Video' }),
    el('p', { class: 'muted', text: 'A video is analysed as a queued task (one frame every interval, faces tracked across frames); its callbacks go to your receiver and the result shows under Tasks.' }),
    field('Video URL', videoUrl),
    field('Callback URL', callbackUrl, 'receives the start and complete callbacks'),
    field('Frame interval (ms)', interval),
    field('Max frames (one credit each)', maxFrames),
    el('div', { class: 'row' }, submit, status),
    error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(error, '');
    status.replaceChildren();
    const params = { ...readOptions(), target_video_url: videoUrl.value.trim() };
    if (interval.value.trim()) params.frame_interval_ms = Number(interval.value.trim());
    if (maxFrames.value.trim()) params.max_frames = Number(maxFrames.value.trim());
    submit.disabled = true;
    try {
      const data = await call('POST', '/api/aigc/task/submit', {
        json: {
          aigc_type: 'face_detect',
          callback_url: callbackUrl.value.trim(),
          task_list: [{ additional_params: params }],
        },
      });
      const id = String(data.task_id_list[0]);
      status.append(`Task ${id} queued: `, el('a', { href: `#/tasks/${id}`, text: 'follow it' }));
    } catch (err) {
      showError(error, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** True for a video task's result (it has a `video` or `tracks`). */
export function isVideo(task) {
  return Boolean(task.video) || Array.isArray(task.tracks);
}

/** The tracks of a video result on a timeline: one row per track, a dot per frame. */
export function tracksTimeline(task) {
  const faces = Array.isArray(task.result_list) ? task.result_list : [];
  const tracks = Array.isArray(task.tracks) ? task.tracks : [];
  const duration = Math.max(1, (task.video && task.video.duration_ms) || 0,
    ...tracks.map((t) => t.last_ms), ...faces.map((f) => f.timestamp_ms || 0));
  const width = 720; const left = 70; const row = 22;
  const height = tracks.length * row + 24;
  const x = (ms) => left + ((width - left - 10) * ms) / duration;
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'chart tracks', role: 'img',
    'aria-label': `${tracks.length} face tracks over ${seconds(duration)}`,
  });
  tracks.forEach((track, i) => {
    const y = i * row + 12;
    chart.append(svg('text', { x: 0, y: y + 4, class: 'axis' }, `track ${track.track_id}`));
    const bar = svg('line', { x1: x(track.first_ms), x2: Math.max(x(track.last_ms), x(track.first_ms) + 2), y1: y, y2: y, class: 'track' });
    bar.append(svg('title', {}, `track ${track.track_id}: ${seconds(track.first_ms)} – ${seconds(track.last_ms)}, ${track.frames} frames`));
    chart.append(bar);
    for (const face of faces.filter((f) => f.track_id === track.track_id)) {
      chart.append(svg('circle', { cx: x(face.timestamp_ms), cy: y, r: 3, class: 'frame' }));
    }
  });
  chart.append(svg('text', { x: left, y: height - 4, class: 'axis' }, '0 s'));
  chart.append(svg('text', { x: width - 10, y: height - 4, class: 'axis end' }, seconds(duration)));
  const rows = tracks.map((t) => el('tr', {},
    [`${t.track_id}`, seconds(t.first_ms), seconds(t.last_ms), `${t.frames}`,
      t.best ? `${t.best.score.toFixed(2)} at ${seconds(t.best.timestamp_ms)}` : '—']
      .map((cell) => el('td', { text: cell }))));
  const info = task.video
    ? `${task.video.width}×${task.video.height}, ${seconds(task.video.duration_ms)}, ${task.video.frames_analysed} frames analysed`
    : '';
  return el('section', { class: 'card video-result' },
    el('h2', { text: `${tracks.length} face track${tracks.length === 1 ? '' : 's'}` }),
    info ? el('p', { class: 'muted', text: info }) : null,
    chart,
    el('table', { class: 'tracks' },
      el('thead', {}, el('tr', {}, ['Track', 'First', 'Last', 'Frames', 'Best face'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows)));
}
