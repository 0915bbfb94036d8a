// The admin view (#/admin/<tab>): a labelled nav of tabs, each a module of
// this folder that talks to /api/v1/admin (docs/admin.md). An account
// without the admin role sees a refusal and no admin request is made.
import { useStore } from '../store.js';
import { isAdmin } from '../session.js';
import { Dashboard } from './dashboard.jsx';
import { UsersTab } from './users.jsx';
import { ReportsTab } from './reports.jsx';
import { BlockedTab } from './blocked.jsx';
import { AdminSettingsTab } from './settings.jsx';
import { InvitesTab } from './invites.jsx';
import { AuditTab } from './audit.jsx';
import { BackupsTab } from './backups.jsx';
import './admin.css';

export const ADMIN_TABS = [
  ['dashboard', 'Dashboard', Dashboard],
  ['users', 'Users', UsersTab],
  ['reports', 'Reports', ReportsTab],
  ['blocked', 'Blocked addresses', BlockedTab],
  ['settings', 'Settings', AdminSettingsTab],
  ['invites', 'Invites', InvitesTab],
  ['audit', 'Audit log', AuditTab],
  ['backups', 'Backups', BackupsTab],
];

// Whether a user (GET /users/me) holds the admin role.
export { isAdmin };

export function AdminView({ tab }) {
  const me = useStore((s) => s.me);
  if (!isAdmin(me)) {
    return (
      <section class="admin admin-refused" aria-labelledby="admin-refused-title">
        <h1 id="admin-refused-title">Administration</h1>
        <p>This needs the admin role. Ask an administrator of this server if you need something changed.</p>
        <p><a href="#/">Back to the chat</a></p>
      </section>
    );
  }
  const current = ADMIN_TABS.find(([id]) => id === tab) || ADMIN_TABS[0];
  const [id, label, Tab] = current;
  return (
    <div class="admin">
      <header class="admin-head">
        <h1>Administration</h1>
        <nav class="admin-tabs" aria-label="Administration sections">
          <ul>
            {ADMIN_TABS.map(([t, text]) => (
              <li key={t}>
                <a href={'#/admin/' + t} aria-current={t === id ? 'page' : undefined}>{text}</a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <section class="admin-body" aria-labelledby="admin-tab-title" data-tab={id}>
        <h2 id="admin-tab-title">{label}</h2>
        <Tab key={id} />
      </section>
    </div>
  );
}
