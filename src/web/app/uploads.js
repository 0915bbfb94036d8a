// Uploading a file (POST /api/v1/files, multipart) with progress, for the
// composer's button, drag-and-drop and paste. XMLHttpRequest, not fetch:
// only it reports upload progress.
import { API, ApiError, csrfToken } from './api.js';

let uploadCounter = 0;

// startUpload(file: File, onUpdate(entry)) -> {entry, promise, abort}:
// entry = {localId, name, size, type, progress (0..1), file (the API's file
// object once stored), error (text)}; onUpdate is called with the entry after
// each change; promise resolves to the file object (rejects with ApiError).
export function startUpload(file, onUpdate = () => {}) {
  const entry = { localId: 'up' + ++uploadCounter, name: file.name || 'file', size: file.size, type: file.type, progress: 0, file: null, error: '' };
  const xhr = new XMLHttpRequest();
  const changed = (patch) => {
    Object.assign(entry, patch);
    onUpdate({ ...entry });
  };
  const promise = new Promise((resolve, reject) => {
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
        changed({ progress: 1, file: stored });
        resolve(stored);
      } else {
        const err = new ApiError(xhr.status, body);
        changed({ error: err.message });
        reject(err);
      }
    };
    xhr.onerror = () => {
      changed({ error: 'the upload failed (network)' });
      reject(new Error('network error'));
    };
    xhr.onabort = () => {
      changed({ error: 'cancelled' });
      reject(new Error('cancelled'));
    };
  });
  promise.catch(() => {});
  const form = new FormData();
  form.append('file', file, entry.name);
  xhr.open('POST', API + '/files');
  xhr.setRequestHeader('X-CSRF-Token', csrfToken());
  xhr.send(form);
  return { entry, promise, abort: () => xhr.abort() };
}
