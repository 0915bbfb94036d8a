// Files in messages and in the composer: image previews inline (sized from
// the file's width/height, so nothing jumps when they load), other files as
// cards with an icon, name, size and type, a lightbox for images, the chip of
// a file being uploaded. Names are text, never markup.
import { useState } from 'preact/hooks';
import { formatBytes } from './ui.jsx';
import { Lightbox } from './lightbox.jsx';
import './files.css';

export function fileUrl(file) {
  return `/api/v1/files/${encodeURIComponent(file.id)}/download`;
}

export function fileName(file) {
  return (file && (file.original_filename || file.filename)) || 'file';
}

// Shown inline: images the browser draws (not SVG: the server sends it as an
// attachment, and it can carry script).
export function isPreviewable(file) {
  const t = (file && file.content_type) || '';
  return t.startsWith('image/') && t !== 'image/svg+xml';
}

const PREVIEW_MAX = 360;

// The preview's box: the image's own size scaled down to fit PREVIEW_MAX
// square, keeping its ratio; a fixed box when the size is unknown.
export function previewSize(file, max = PREVIEW_MAX) {
  const w = file && file.width, h = file && file.height;
  if (!(w > 0 && h > 0)) return { width: Math.round(max * 2 / 3), height: Math.round(max / 2) };
  const scale = Math.min(1, max / w, max / h);
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}

// The card's icon: a page with a short label of the kind (no emoji font needed).
function kindLabel(file) {
  const t = (file && file.content_type) || '';
  const ext = (fileName(file).match(/\.([A-Za-z0-9]{1,4})$/) || [])[1];
  if (t === 'application/pdf') return 'PDF';
  if (/zip|tar|gzip|x-7z|x-rar|x-xz|zstd|bzip/.test(t)) return ext ? ext.toUpperCase() : 'ZIP';
  if (ext) return ext.toUpperCase();
  if (t.startsWith('video/')) return 'VID';
  if (t.startsWith('audio/')) return 'AUD';
  if (t.startsWith('image/')) return 'IMG';
  if (t.startsWith('text/')) return 'TXT';
  return 'FILE';
}

function FileIcon({ file }) {
  const label = kindLabel(file);
  return (
    <svg class="file-card-icon" viewBox="0 0 32 40" width="32" height="40" aria-hidden="true" focusable="false">
      <path class="file-icon-page" d="M2 1h19l9 9v29H2z" />
      <path class="file-icon-fold" d="M21 1v9h9" />
      <text x="16" y="31" text-anchor="middle" font-size={label.length > 3 ? 7 : 8.5} font-weight="700">{label}</text>
    </svg>
  );
}

// A file that is not an image: a card with a download link.
export function FileCard({ file }) {
  const name = fileName(file);
  return (
    <div class="file-card">
      <FileIcon file={file} />
      <span class="file-card-text">
        <a class="file-card-name" href={fileUrl(file)} download={name} title={name}>{name}</a>
        <span class="file-card-meta">
          <span class="attachment-size">{formatBytes(file.size || 0)}</span>
          {' · '}
          <span class="attachment-type">{file.content_type || 'unknown type'}</span>
        </span>
      </span>
    </div>
  );
}

// files: the message's attachments (the API's file objects). Clicking an
// image opens the lightbox on it, with arrows to the message's other images.
export function Attachments({ files }) {
  const [open, setOpen] = useState(-1);
  if (!files || !files.length) return null;
  const images = files.filter(isPreviewable);
  return (
    <div class="attachments-wrap">
      <ul class="attachments">
        {files.map((f) => {
          const name = fileName(f);
          if (!isPreviewable(f)) {
            return <li key={f.id} class="attachment attachment-file"><FileCard file={f} /></li>;
          }
          const box = previewSize(f);
          return (
            <li key={f.id} class="attachment attachment-picture">
              <button type="button" class="attachment-thumb" aria-label={'Open image ' + name}
                onClick={() => setOpen(images.indexOf(f))}>
                <img class="attachment-image" src={fileUrl(f)} alt={name} width={box.width} height={box.height}
                  loading="lazy" decoding="async" />
              </button>
            </li>
          );
        })}
      </ul>
      {open >= 0 && images[open] && (
        <Lightbox images={images} index={open} onIndex={setOpen} onClose={() => setOpen(-1)} />
      )}
    </div>
  );
}

// upload: an entry of uploads.js ({localId, name, size, progress 0..1, file,
// error, done}); onRemove: cancels a running upload or removes the chip
// (the caller decides: abort() while running, drop it from the list after).
export function UploadChip({ upload, onRemove }) {
  const running = !upload.done && !upload.error;
  const pct = Math.round((upload.progress || 0) * 100);
  return (
    <span class={'upload-chip' + (upload.error ? ' upload-chip-error' : '')} data-state={upload.error ? 'error' : upload.done ? 'done' : 'running'}>
      <span class="upload-chip-name" title={upload.name}>{upload.name}</span>
      {upload.size > 0 && <span class="upload-chip-size">{formatBytes(upload.size)}</span>}
      {!upload.error && (
        <progress max="100" value={pct} aria-label={'Uploading ' + upload.name}>{pct + '%'}</progress>
      )}
      {upload.error && <span class="error" role="alert">{upload.error}</span>}
      {onRemove && (
        <button type="button" class="icon-button" aria-label={(running ? 'Cancel upload of ' : 'Remove ') + upload.name}
          onClick={onRemove}>×</button>
      )}
    </span>
  );
}
