// The console's shell: sign in, navigation by hash routes, the credits badge.
import { call, session, whenDenied } from './api.js';
import { clear, el, errorBox, field, showError } from './dom.js';
import { renderTry } from './try.js';
import { renderAccount } from './account.js';
import { renderTaskDetail, renderTaskList } from './tasks.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const credits = document.getElementById('credits');
const signOutButton = document.getElementById('sign-out');

const PAGES = [
  { path: '/try', label: 'Try it', render: renderTry },
  { path: '/tasks', label: 'Tasks', render: renderTaskList },
  { path: '/account', label: 'Account', render: renderAccount },
];
const DETAIL = { path: '/tasks', render: renderTaskDetail };

/** The page for a hash path: '/tasks?status=failed' is the list, '/tasks/12' a task. */
function pageFor(path) {
  const route = path.split('?')[0];
  if (/^\/tasks\/[^/]+$/.test(route)) return DETAIL;
  return PAGES.find((page) => page.path === route) || PAGES[0];
}

/** Shown in the header after every call that may change the balance. */
export async function refreshCredits() {
  try {
    const account = await call('GET', '/api/account');
    credits.textContent = `${account.credits} credits`;
    credits.hidden = false;
    return account;
  } catch {
    return null;
  }
}

const app = { refreshCredits };

function renderNav(current) {
  clear(nav);
  for (const page of PAGES) {
    const link = el('a', { href: `#${page.path}`, text: page.label });
    if (current === page.path) link.setAttribute('aria-current', 'page');
    nav.append(link);
  }
  nav.hidden = false;
  signOutButton.hidden = false;
}

function renderSignIn(message) {
  nav.hidden = true;
  credits.hidden = true;
  signOutButton.hidden = true;
  const input = el('input', {
    id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off',
    spellcheck: 'false', required: true,
  });
  const error = errorBox();
  const button = el('button', { type: 'submit', text: 'Sign in' });
  const form = el(
    'form', { class: 'card sign-in', novalidate: true },
    el('h1', { text: 'Sign in' }),
    el('p', { class: 'muted', text: 'Use an API key of your account (make serve prints one on first start).' }),
    field('API key', input),
    button,
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showError(error, 'Enter an API key.');
      input.focus();
      return;
    }
    button.disabled = true;
    showError(error, '');
    try {
      await call('GET', '/api/account', { key });
      session.signIn(key);
      input.value = '';
      if (!location.hash || location.hash === '#/' || location.hash === '#/sign-in') {
        location.hash = '#/try';
      }
      route();
    } catch (err) {
      showError(error, err.message);
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  clear(view).append(form);
  if (message) showError(error, message);
  input.focus();
}

function signOut(message) {
  session.signOut();
  credits.textContent = '';
  renderSignIn(message);
}

function route() {
  if (!session.key()) {
    renderSignIn();
    return;
  }
  const path = location.hash.replace(/^#/, '') || '/try';
  const page = pageFor(path);
  renderNav(page.path);
  clear(view);
  page.render(view, app, path);
  refreshCredits();
}

signOutButton.addEventListener('click', () => signOut());
whenDenied((error) => signOut(error.message));
window.addEventListener('hashchange', route);
route();
