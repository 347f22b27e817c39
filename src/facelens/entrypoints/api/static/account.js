// Account: balance and usage.
import { call } from './api.js';
import { el, errorBox, showError } from './dom.js';

function table(caption, head, rows) {
  return el('table', {},
    el('caption', { text: caption }),
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows.map((row) => el('tr', {}, row.map((cell) => el('td', { text: cell }))))));
}

export async function renderAccount(view) {
  const error = errorBox();
  const summary = el('section', { class: 'card' }, el('h1', { text: 'Account' }), error);
  view.append(summary);
  try {
    const account = await call('GET', '/api/account');
    const usage = account.usage || {};
    summary.append(
      el('dl', { class: 'facts' },
        el('dt', { text: 'Account' }), el('dd', { text: `${account.name} (id ${account.account_id})` }),
        el('dt', { text: 'Balance' }), el('dd', { class: 'balance', text: `${account.credits} credits` }),
        el('dt', { text: 'Credits charged' }), el('dd', { text: String(usage.credits_charged ?? 0) }),
        el('dt', { text: 'Credits refunded' }), el('dd', { text: String(usage.credits_refunded ?? 0) })),
      table('Tasks by status', ['Status', 'Tasks'],
        Object.entries(usage.tasks || {}).map(([status, count]) => [status, String(count)])));
  } catch (err) {
    showError(error, err.message);
  }
}
