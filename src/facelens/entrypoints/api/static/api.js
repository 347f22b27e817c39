// The public API, same origin. The key lives in sessionStorage (gone when the tab
// closes), travels only in the Authorization header, and never appears in a URL.

const STORAGE_KEY = 'facelens.apiKey';
export const SUCCESS = 100000;
export const ACCESS_DENIED = 100030;

export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

export const session = {
  key: () => sessionStorage.getItem(STORAGE_KEY) || '',
  signIn: (key) => sessionStorage.setItem(STORAGE_KEY, key),
  signOut: () => sessionStorage.removeItem(STORAGE_KEY),
};

let onDenied = () => {};
/** Called when the stored key is refused (revoked meanwhile): the app signs out. */
export function whenDenied(handler) {
  onDenied = handler;
}

/**
 * call('GET', '/api/account') -> the envelope's `data`; throws ApiError carrying the
 * API's own message for any code other than 100000.
 * Options: json (a body), form (FormData), query (object; empty values dropped),
 * key (sign-in check with a key not yet stored).
 */
export async function call(method, path, { json, form, query, key } = {}) {
  const headers = { Authorization: `Bearer ${key ?? session.key()}`, Accept: 'application/json' };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  let response;
  try {
    response = await fetch(url, {
      method, headers, body, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError('The facelens server could not be reached.', 0, 0);
  }
  let envelope;
  try {
    envelope = await response.json();
  } catch {
    throw new ApiError(`Unexpected answer from the server (HTTP ${response.status}).`, 0, response.status);
  }
  if (!envelope || envelope.code !== SUCCESS) {
    const message = (envelope && envelope.message) || `HTTP ${response.status}`;
    const error = new ApiError(message, envelope ? envelope.code : 0, response.status);
    if (error.code === ACCESS_DENIED && key === undefined) onDenied(error);
    throw error;
  }
  return envelope.data;
}
