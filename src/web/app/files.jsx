// Files in messages and in the composer: image previews inline, other files
// as cards with size and type, a lightbox for images, the chip of a file
// being uploaded. To be built (issue 18); the signatures are the contract.
import { formatBytes } from './ui.jsx';

// files: the message's attachments (the API's file objects).
export function Attachments({ files }) {
  if (!files || !files.length) return null;
  return (
    <ul class="attachments">
      {files.map((f) => <li key={f.id}><a href={`/api/v1/files/${encodeURIComponent(f.id)}/download`}>{f.original_filename || f.filename}</a> {formatBytes(f.size || 0)}</li>)}
    </ul>
  );
}

// upload: an entry of uploads.js ({localId, name, size, progress 0..1, file, error}).
export function UploadChip({ upload, onRemove }) {
  return <span class="upload-chip">{upload.name}</span>;
}
