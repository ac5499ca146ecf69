// The console's calls to /console/api/: the session cookie goes by itself; changes carry the CSRF token.

let csrf = null;
let onSignedOut = () => {};

export function setCsrf(token) {
  csrf = token;
}

export function whenSignedOut(f) {
  onSignedOut = f;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET (no body) or POST (JSON body, X-CSRF-Token). Throws ApiError on a non-2xx answer. */
export async function call(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'GET') {
    init.headers['content-type'] = 'application/json';
    if (csrf) init.headers['x-csrf-token'] = csrf;
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(`/console/api/${path}`, init);
  let data = {};
  try {
    data = await res.json();
  } catch {
    data = {};
  }
  if (res.status === 401 && path !== 'sign-in') onSignedOut();
  if (!res.ok) throw new ApiError(res.status, data.code ?? `HTTP_${res.status}`, data.error ?? `HTTP ${res.status}`);
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);

/** A query string from an object, skipping empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
