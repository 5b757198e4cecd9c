// Talking to the box: same-origin fetch with the session cookie; every change carries the
// session's CSRF token (X-CSRF-Token). Errors come back as {detail, code}.
let csrf = null;

export function setCsrf(token) { csrf = token; }

function cookieCsrf() {
  const m = document.cookie.match(/(?:^|;\s*)sunbox_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

export class ApiError extends Error {
  constructor(status, detail, code, body) {
    super(detail);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['X-CSRF-Token'] = csrf || cookieCsrf() || '';
    if (body !== undefined) headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) {
    const detail = (data && data.detail) || `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, typeof detail === 'string' ? detail : JSON.stringify(detail), data && data.code, data);
    if (res.status === 401 && path !== '/api/login') window.dispatchEvent(new CustomEvent('sunbox:logged-out'));
    throw err;
  }
  return data;
}

export async function svg(path) {
  const res = await fetch(path, { credentials: 'same-origin' });
  if (!res.ok) throw new ApiError(res.status, `${res.status}`, null, null);
  return res.text();
}
