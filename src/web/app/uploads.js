// Uploading a file (POST /api/v1/files, multipart) with progress, for the
// composer's button, drag-and-drop and paste. XMLHttpRequest, not fetch:
// only it reports upload progress.
import { API, ApiError, csrfToken } from './api.js';
import { formatBytes } from './ui.jsx';

let uploadCounter = 0;

// The largest upload the server takes, once it has said (a 413's
// details.max_bytes); files known to be larger fail at once, without sending.
let maxUploadBytes = 0;
export function knownUploadLimit() {
  return maxUploadBytes;
}

// The text shown for a refused upload: the API's errors in the words of
// someone who dropped a file.
export function uploadErrorText(err, name) {
  const d = (err && err.details) || {};
  switch (err && err.status) {
    case 413:
      if (d.reason === 'quota') {
        return `No room left: your files use ${formatBytes(d.used_bytes || 0)} of ${formatBytes(d.quota_bytes || 0)}.`;
      }
      return d.max_bytes ? `${name} is too large (the limit is ${formatBytes(d.max_bytes)}).` : `${name} is too large.`;
    case 415:
      return `Files of this type (${d.content_type || 'unknown'}) are not allowed here.`;
    case 429: {
      const s = d.retry_after || 0;
      return s ? `Too many uploads; try again in ${s} s.` : 'Too many uploads; try again in a moment.';
    }
    case 0:
    case undefined:
      return (err && err.message) || 'The upload failed.';
    default:
      return err.message || `The upload failed (HTTP ${err.status}).`;
  }
}

// startUpload(file: File, onUpdate(entry)) -> {entry, promise, abort}:
// entry = {localId, name, size, type, progress (0..1), file (the API's file
// object once stored), error (text), done, cancelled}; onUpdate is called
// with a copy of the entry after each change; promise resolves to the file
// object (rejects with ApiError, or an Error for network/cancel). `extra`:
// form fields (channel_id, description, is_public) and `url` (another upload
// route, e.g. '/users/me/avatar' with method 'PUT').
export function startUpload(file, onUpdate = () => {}, extra = {}) {
  const entry = {
    localId: 'up' + ++uploadCounter, name: file.name || 'file', size: file.size, type: file.type,
    progress: 0, file: null, error: '', done: false, cancelled: false,
  };
  const xhr = new XMLHttpRequest();
  const changed = (patch) => {
    Object.assign(entry, patch);
    onUpdate({ ...entry });
  };
  let fail;
  const promise = new Promise((resolve, reject) => {
    fail = reject;
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) changed({ progress: e.loaded / e.total });
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        const stored = (body && (body.file || body.data)) || body;
        changed({ progress: 1, file: stored, done: true });
        resolve(stored);
      } else {
        const err = new ApiError(xhr.status, body);
        if (xhr.status === 413 && err.details.max_bytes) maxUploadBytes = err.details.max_bytes;
        changed({ error: uploadErrorText(err, entry.name), done: true });
        reject(err);
      }
    };
    xhr.onerror = () => {
      changed({ error: 'The upload failed (the connection broke).', done: true });
      reject(new Error('network error'));
    };
    xhr.onabort = () => {
      changed({ error: 'Cancelled.', done: true, cancelled: true });
      reject(new Error('cancelled'));
    };
  });
  promise.catch(() => {});
  if (maxUploadBytes && file.size > maxUploadBytes) {
    const err = new ApiError(413, { error: { message: 'too large', details: { max_bytes: maxUploadBytes } } });
    queueMicrotask(() => {
      changed({ error: uploadErrorText(err, entry.name), done: true });
      fail(err);
    });
    return { entry, promise, abort: () => {} };
  }
  const form = new FormData();
  for (const [k, v] of Object.entries(extra)) {
    if (k !== 'url' && k !== 'method' && v !== undefined && v !== null) form.append(k, String(v));
  }
  form.append('file', file, entry.name);
  xhr.open(extra.method || 'POST', API + (extra.url || '/files'));
  xhr.setRequestHeader('X-CSRF-Token', csrfToken());
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.send(form);
  return { entry, promise, abort: () => xhr.abort() };
}
