// Uploading a file (POST /api/v1/files, multipart) with progress, for the
// composer's button, drag-and-drop and paste.
// To be built (issue 18); the signature is the contract.

// startUpload(file: File, onUpdate(entry)) -> {entry, promise, abort}:
// entry = {localId, name, size, progress (0..1), file (the API's file object
// once stored), error (text)}; promise resolves to the file object.
export function startUpload(file, onUpdate) {
  const entry = { localId: Math.random().toString(36).slice(2), name: file.name, size: file.size, progress: 0, file: null, error: '' };
  const promise = Promise.reject(new Error('uploads are not built yet'));
  promise.catch(() => {});
  return { entry, promise, abort() {} };
}
