// Account: balance, usage per day over 30 days, the webhook signing secret (revealed on
// request) and the account's own API keys (list, create shown once, revoke).
import { call, session } from './api.js';
import { clear, el, errorBox, formatTime, showError } from './dom.js';
import { copyButton } from './faces.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

function table(caption, head, rows, attrs = {}) {
  return el('table', attrs,
    el('caption', { text: caption }),
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows.map((row) => el('tr', {}, row.map((cell) => el('td', {}, cell))))));
}

/** Tasks per day as stacked bars (succeeded, failed, other), drawn with SVG attributes. */
function usageChart(days) {
  const width = 720; const height = 140; const gap = 2;
  const barWidth = width / days.length - gap;
  const totals = days.map((d) => Object.values(d.tasks).reduce((a, b) => a + b, 0));
  const peak = Math.max(1, ...totals);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height + 16}`, class: 'chart', role: 'img',
    'aria-label': `Tasks per day over the last ${days.length} days, at most ${peak} a day`,
  });
  days.forEach((day, i) => {
    let y = height;
    const parts = [
      ['succeeded', day.tasks.succeeded || 0],
      ['failed', day.tasks.failed || 0],
      ['other', (day.tasks.queued || 0) + (day.tasks.running || 0)],
    ];
    for (const [name, count] of parts) {
      if (!count) continue;
      const h = (count / peak) * (height - 4);
      y -= h;
      const rect = svg('rect', { x: i * (barWidth + gap), y, width: barWidth, height: h, class: `bar ${name}` });
      rect.append(svg('title', {}, document.createTextNode(`${day.date}: ${count} ${name}`)));
      chart.append(rect);
    }
  });
  chart.append(svg('text', { x: 0, y: height + 14, class: 'axis' }, document.createTextNode(days[0].date)));
  chart.append(svg('text', { x: width, y: height + 14, class: 'axis end' }, document.createTextNode(days[days.length - 1].date)));
  return chart;
}

async function renderUsage(card) {
  const error = errorBox();
  card.append(el('h2', { text: 'Usage per day (last 30 days, UTC)' }), error);
  try {
    const data = await call('GET', '/api/account/usage', { query: { days: 30 } });
    const days = data.days;
    card.append(
      usageChart(days),
      el('p', { class: 'legend' },
        el('span', { class: 'key succeeded', text: 'succeeded' }),
        el('span', { class: 'key failed', text: 'failed' }),
        el('span', { class: 'key other', text: 'queued or running' }),
        el('span', { text: `tallest bar: ${Math.max(0, ...days.map((d) => Object.values(d.tasks).reduce((a, b) => a + b, 0)))} tasks` })),
      el('details', {},
        el('summary', { text: 'Table' }),
        table('Tasks by outcome and credits per day', ['Day', 'Succeeded', 'Failed', 'Queued/running', 'Credits charged', 'Credits refunded'],
          [...days].reverse().map((d) => [d.date, String(d.tasks.succeeded || 0), String(d.tasks.failed || 0),
            String((d.tasks.queued || 0) + (d.tasks.running || 0)), String(d.credits_charged), String(d.credits_refunded)]),
          { class: 'usage' })));
  } catch (err) {
    showError(error, err.message);
  }
}

function renderSecret(card) {
  const error = errorBox();
  const value = el('code', { class: 'secret', hidden: true });
  const status = el('span', { class: 'muted', 'aria-live': 'polite' });
  const copy = copyButton(() => value.textContent, value, status);
  copy.hidden = true;
  const reveal = el('button', { type: 'button', class: 'quiet', text: 'Reveal secret' });
  reveal.addEventListener('click', async () => {
    if (!value.hidden) {
      value.hidden = true;
      value.textContent = '';
      copy.hidden = true;
      status.textContent = '';
      reveal.textContent = 'Reveal secret';
      return;
    }
    try {
      const data = await call('GET', '/api/account/webhook-secret');
      value.textContent = data.webhook_secret;
      value.hidden = false;
      copy.hidden = false;
      reveal.textContent = 'Hide secret';
    } catch (err) {
      showError(error, err.message);
    }
  });
  card.append(
    el('h2', { text: 'Webhook signing secret' }),
    el('p', { class: 'muted', text: 'Callbacks are signed with it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). Keep it on your receiver only.' }),
    el('div', { class: 'row' }, reveal, value, copy, status), error);
}

async function renderKeys(card) {
  const error = errorBox();
  const created = el('div', { class: 'notice', role: 'status', hidden: true });
  const list = el('div');
  const create = el('button', { type: 'button', text: 'Create key' });
  card.append(el('div', { class: 'row' }, el('h2', { text: 'API keys' }), create), created, error, list);

  async function load() {
    try {
      const data = await call('GET', '/api/keys');
      clear(list).append(table('Keys of this account (only their prefixes are stored in clear)',
        ['Prefix', 'Created', 'Revoked', ''],
        data.keys.map((key) => [
          el('span', { class: 'mono' }, key.prefix, '…', key.in_use ? el('strong', { text: ' (this session)' }) : null),
          formatTime(key.created_time),
          key.revoked_time ? formatTime(key.revoked_time) : 'live',
          revokeCell(key, data.keys.filter((k) => !k.revoked_time).length),
        ]), { class: 'keys' }));
    } catch (err) {
      showError(error, err.message);
    }
  }

  function revokeCell(key, live) {
    if (key.revoked_time) return '';
    if (key.in_use && live === 1) {
      return el('span', { class: 'muted', text: 'last live key: create another to revoke it' });
    }
    return revokeButton(key);
  }

  function revokeButton(key) {
    const button = el('button', { type: 'button', class: 'danger', text: 'Revoke', dataset: { prefix: key.prefix } });
    let armed = false;
    button.addEventListener('click', async () => {
      if (!armed) {
        armed = true;
        button.textContent = `Confirm revoking ${key.prefix}…`;
        return;
      }
      button.disabled = true;
      showError(error, '');
      try {
        await call('DELETE', `/api/keys/${encodeURIComponent(key.prefix)}`);
        if (key.in_use) {
          session.signOut();
          location.hash = '#/try';
          location.reload();
          return;
        }
      } catch (err) {
        showError(error, err.message);
      }
      load();
    });
    return button;
  }

  create.addEventListener('click', async () => {
    create.disabled = true;
    showError(error, '');
    try {
      const data = await call('POST', '/api/keys');
      const status = el('span', { class: 'muted', 'aria-live': 'polite' });
      const value = el('code', { class: 'secret', text: data.key });
      clear(created).append(
        el('p', {}, el('strong', { text: 'New API key, shown only this once: ' }), value),
        el('div', { class: 'row' }, copyButton(() => data.key, value, status), status));
      created.hidden = false;
    } catch (err) {
      showError(error, err.message);
    }
    create.disabled = false;
    load();
  });
  await load();
}

export async function renderAccount(view) {
  const error = errorBox();
  const summary = el('section', { class: 'card' }, el('h1', { text: 'Account' }), error);
  const usageCard = el('section', { class: 'card' });
  const secretCard = el('section', { class: 'card' });
  const keysCard = el('section', { class: 'card' });
  view.append(summary, usageCard, secretCard, keysCard);
  try {
    const account = await call('GET', '/api/account');
    const usage = account.usage || {};
    summary.append(
      el('dl', { class: 'facts' },
        el('dt', { text: 'Account' }), el('dd', { text: `${account.name} (id ${account.account_id})` }),
        el('dt', { text: 'Balance' }), el('dd', { class: 'balance', text: `${account.credits} credits` }),
        el('dt', { text: 'Credits charged' }), el('dd', { text: String(usage.credits_charged ?? 0) }),
        el('dt', { text: 'Credits refunded' }), el('dd', { text: String(usage.credits_refunded ?? 0) }),
        el('dt', { text: 'Tasks' }), el('dd', {
          text: Object.entries(usage.tasks || {}).map(([status, count]) => `${count} ${status}`).join(', '),
        })));
  } catch (err) {
    showError(error, err.message);
    return;
  }
  renderSecret(secretCard);
  await Promise.all([renderUsage(usageCard), renderKeys(keysCard)]);
}
