// Files in messages and in the composer: image previews inline, other files
// as cards with size and type, a lightbox for images, the chip of a file
// being uploaded. A first version; the signatures are the contract.
import { formatBytes } from './ui.jsx';

export function fileUrl(file) {
  return `/api/v1/files/${encodeURIComponent(file.id)}/download`;
}

// files: the message's attachments (the API's file objects).
export function Attachments({ files }) {
  if (!files || !files.length) return null;
  return (
    <ul class="attachments">
      {files.map((f) => {
        const name = f.original_filename || f.filename || 'file';
        const isImage = (f.content_type || '').startsWith('image/');
        return (
          <li key={f.id} class="attachment">
            {isImage ? (
              <img class="attachment-image" src={fileUrl(f)} alt={name} width={f.width || undefined} height={f.height || undefined} loading="lazy" />
            ) : (
              <a href={fileUrl(f)} download={name}>{name}</a>
            )}
            <span class="attachment-size">{formatBytes(f.size || 0)}</span>
          </li>
        );
      })}
    </ul>
  );
}

// upload: an entry of uploads.js ({localId, name, size, progress 0..1, file, error}).
export function UploadChip({ upload, onRemove }) {
  return (
    <span class="upload-chip">
      {upload.name}
      <progress max="1" value={upload.progress} aria-label={'Uploading ' + upload.name} />
      {upload.error && <span class="error">{upload.error}</span>}
      {onRemove && <button type="button" class="icon-button" aria-label={'Remove ' + upload.name} onClick={onRemove}>×</button>}
    </span>
  );
}
