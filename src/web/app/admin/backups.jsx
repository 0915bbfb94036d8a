// Backups: stream one now (GET /admin/backup, a download link that carries
// the session cookie), store one on the server (POST /admin/backup), and the
// stored ones: list, download, delete (GET/DELETE /admin/backups/{name}).
import { useState } from 'preact/hooks';
import { API, api } from '../api.js';
import { toast } from '../store.js';
import { DataTable, ErrorText, bytes, formatNumber, formatWhen, useAction, useLoad } from './common.jsx';

export function backupUrl(includeFiles) {
  return `${API}/admin/backup?include_files=${includeFiles ? 'true' : 'false'}`;
}

export function BackupsTab() {
  const [files, setFiles] = useState(true);
  const list = useLoad(() => api('GET', '/admin/backups'), []);
  const [run, busy, error] = useAction();
  const [confirming, setConfirming] = useState(null);
  const create = () => run(async () => {
    const b = await api('POST', '/admin/backup', { body: { include_files: files } });
    toast(`Backup ${b.name} written (${bytes(b.size)})`);
    list.reload();
  });
  const remove = (b) => run(async () => {
    await api('DELETE', '/admin/backups/' + encodeURIComponent(b.name));
    setConfirming(null);
    toast('Backup deleted');
    list.reload();
  });
  const columns = [
    { key: 'name', label: 'Name', render: (b) => <span class="admin-break">{b.name}</span> },
    { key: 'size', label: 'Size', render: (b) => bytes(b.size) },
    { key: 'created', label: 'Created', render: (b) => formatWhen(b.created_at) },
    { key: 'lsn', label: 'LSN', render: (b) => formatNumber(b.lsn) },
    {
      key: 'actions', label: 'Actions', render: (b) => (
        <span class="admin-row-actions">
          <a class="button" href={`${API}/admin/backups/${encodeURIComponent(b.name)}`} download={b.name}>Download</a>
          {confirming === b.name
            ? (
              <>
                <button type="button" class="danger" disabled={busy} onClick={() => remove(b)}>Delete for good</button>
                <button type="button" onClick={() => setConfirming(null)}>Keep</button>
              </>
            )
            : <button type="button" class="danger" onClick={() => setConfirming(b.name)} aria-label={`Delete ${b.name}`}>Delete</button>}
        </span>
      ),
    },
  ];
  const d = list.data;
  return (
    <div class="admin-backups">
      <p>A backup is one archive (<code>.tar.zst</code>) of everything the server needs to start again elsewhere. One runs at a time.</p>
      <div class="admin-toolbar">
        <label class="admin-check">
          <input type="checkbox" checked={files} onChange={(e) => setFiles(e.currentTarget.checked)} />
          Include uploaded files
        </label>
        <a class="button primary" href={backupUrl(files)} download>Download a backup now</a>
        <button type="button" disabled={busy} onClick={create}>Store a backup on the server</button>
      </div>
      <ErrorText error={error} />
      <h3>Stored on the server</h3>
      <ErrorText error={list.error} />
      {d && <DataTable caption="Stored backups" columns={columns} rows={d.backups} rowKey={(b) => b.name} empty="No stored backup." />}
      {d && d.truncated && <p class="admin-muted">Only the newest 1,000 are listed.</p>}
    </div>
  );
}
