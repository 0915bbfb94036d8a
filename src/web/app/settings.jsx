// SettingsView (route #/settings/<tab>): a nav of tabs and one panel each:
// Profile (display name, bio, avatar), Appearance (theme), Notifications,
// Security (password, two-factor: settings-security.jsx) and API keys
// (settings-apikeys.jsx). Every change goes through the public API; the
// theme is the browser's own choice (localStorage 'parley.theme').
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { state, update, useStore } from './store.js';
import { applyTheme } from './session.js';
import { Avatar } from './ui.jsx';
import { startUpload } from './uploads.js';
import { notificationsEnabled, setNotificationsEnabled } from './notify.js';
import { SecuritySettings } from './settings-security.jsx';
import { ApiKeySettings } from './settings-apikeys.jsx';
import './settings.css';

export const SETTINGS_TABS = [
  { id: 'profile', label: 'Profile' },
  { id: 'appearance', label: 'Appearance' },
  { id: 'notifications', label: 'Notifications' },
  { id: 'security', label: 'Security' },
  { id: 'api-keys', label: 'API keys' },
];

// ---- theme ------------------------------------------------------------------
export function currentTheme() {
  const t = localStorage.getItem('parley.theme');
  return t === 'light' || t === 'dark' ? t : 'system';
}

// Chooses light, dark or system (follows the system's preference, also
// when it changes later) and applies it at once.
export function setTheme(theme) {
  localStorage.setItem('parley.theme', theme);
  update({ theme });
  applyTheme(theme);
}

// "system" follows the system's changes while the page is open.
if (typeof matchMedia === 'function') {
  const mq = matchMedia('(prefers-color-scheme: dark)');
  const follow = () => {
    if (currentTheme() === 'system') applyTheme('system');
  };
  if (mq.addEventListener) mq.addEventListener('change', follow);
  state.theme = currentTheme();
}

// A status line that says what the last action did (role=status or alert).
export function useNotice() {
  const [notice, setNotice] = useState(null);
  const ok = (text) => setNotice({ text, error: false });
  const fail = (err) => setNotice({ text: (err && err.message) || String(err), error: true });
  const view = notice && (
    <p class={notice.error ? 'error' : 'settings-ok'} role={notice.error ? 'alert' : 'status'}>{notice.text}</p>
  );
  return { ok, fail, clear: () => setNotice(null), view };
}

// ---- profile ----------------------------------------------------------------
function ProfileSettings() {
  const me = useStore((s) => s.me) || {};
  const notice = useNotice();
  const avatarNotice = useNotice();
  const [saving, setSaving] = useState(false);
  const [preview, setPreview] = useState('');
  const [upload, setUpload] = useState(null);
  const fileInput = useRef(null);
  useEffect(() => () => preview && URL.revokeObjectURL(preview), [preview]);

  const save = async (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setSaving(true);
    notice.clear();
    try {
      // The API takes a display name of 1-64 characters: an empty field keeps it.
      const body = { bio: String(f.get('bio') || '') };
      const name = String(f.get('display_name') || '').trim();
      if (name) body.display_name = name;
      const user = await api('PUT', '/users/me', { body });
      update({ me: { ...state.me, ...user } });
      notice.ok('Profile saved.');
    } catch (err) {
      notice.fail(err);
    } finally {
      setSaving(false);
    }
  };

  const pick = async (e) => {
    const file = e.currentTarget.files && e.currentTarget.files[0];
    if (!file) return;
    avatarNotice.clear();
    setPreview(URL.createObjectURL(file));
    const up = startUpload(file, setUpload, { url: '/users/me/avatar', method: 'PUT' });
    try {
      const user = await up.promise;
      update({ me: { ...state.me, ...user } });
      avatarNotice.ok('Avatar updated.');
    } catch (err) {
      avatarNotice.fail(new Error((up.entry && up.entry.error) || err.message));
    } finally {
      setUpload(null);
      setPreview('');
      if (fileInput.current) fileInput.current.value = '';
    }
  };

  const removeAvatar = async () => {
    avatarNotice.clear();
    try {
      const user = await api('PUT', '/users/me', { body: { avatar_url: '' } });
      update({ me: { ...state.me, ...user } });
      avatarNotice.ok('Avatar removed.');
    } catch (err) {
      avatarNotice.fail(err);
    }
  };

  return (
    <>
      <section class="settings-card" aria-labelledby="avatar-title">
        <h2 id="avatar-title">Avatar</h2>
        <div class="avatar-row">
          {preview ? <img class="avatar avatar-preview" src={preview} alt="The new avatar" width="72" height="72" />
            : <Avatar user={me} size={72} />}
          <div class="avatar-actions">
            <label class="file-button">
              <span>Upload an image</span>
              <input ref={fileInput} type="file" accept="image/png,image/jpeg,image/gif,image/webp" onChange={pick}
                disabled={!!upload} aria-describedby="avatar-hint" />
            </label>
            {me.avatar_url && <button type="button" onClick={removeAvatar}>Remove avatar</button>}
            <span id="avatar-hint" class="hint">PNG, JPEG, GIF or WebP.</span>
            {upload && <progress max="100" value={Math.round(upload.progress * 100)} aria-label="Uploading the avatar" />}
          </div>
        </div>
        {avatarNotice.view}
      </section>
      <form class="settings-card" onSubmit={save} aria-labelledby="profile-title" key={me.id}>
        <h2 id="profile-title">Profile</h2>
        <p class="hint">Signed in as <strong>{me.username}</strong></p>
        <div class="profile-preview" aria-label="How others see you" role="group">
          <Avatar user={me} size={40} />
          <div>
            <div class="profile-preview-name">{me.display_name || me.username}</div>
            {me.bio && <p class="profile-preview-bio">{me.bio}</p>}
          </div>
        </div>
        <label>Display name
          <input name="display_name" defaultValue={me.display_name || ''} maxLength={64} autocomplete="nickname" />
        </label>
        <label>Bio
          <textarea name="bio" rows="4" maxLength={500} defaultValue={me.bio || ''} />
        </label>
        <div class="settings-actions"><button type="submit" disabled={saving}>{saving ? 'Saving…' : 'Save profile'}</button></div>
        {notice.view}
      </form>
    </>
  );
}

// ---- appearance ---------------------------------------------------------------
function AppearanceSettings() {
  const theme = useStore((s) => s.theme) || currentTheme();
  const choices = [
    ['light', 'Light'],
    ['dark', 'Dark'],
    ['system', 'Same as the system'],
  ];
  return (
    <section class="settings-card" aria-labelledby="appearance-title">
      <h2 id="appearance-title">Appearance</h2>
      <fieldset class="settings-choices">
        <legend>Theme</legend>
        {choices.map(([value, label]) => (
          <label key={value} class="choice">
            <input type="radio" name="theme" value={value} checked={theme === value} onChange={() => setTheme(value)} />
            {label}
          </label>
        ))}
      </fieldset>
      <p class="hint">Kept in this browser only.</p>
    </section>
  );
}

// ---- notifications ------------------------------------------------------------
function NotificationSettings() {
  const supported = typeof window !== 'undefined' && 'Notification' in window;
  const [on, setOn] = useState(() => notificationsEnabled());
  const [busy, setBusy] = useState(false);
  const [permission, setPermission] = useState(supported ? Notification.permission : 'unsupported');
  const toggle = async (e) => {
    const want = e.currentTarget.checked;
    setOn(want);
    setBusy(true);
    try {
      setOn(await setNotificationsEnabled(want));
    } finally {
      setPermission(supported ? Notification.permission : 'unsupported');
      setBusy(false);
    }
  };
  return (
    <section class="settings-card" aria-labelledby="notify-title">
      <h2 id="notify-title">Notifications</h2>
      <label class="choice">
        <input type="checkbox" checked={on} disabled={!supported || busy} onChange={toggle} />
        Notify me of mentions and direct messages while Parley is in the background
      </label>
      <p class={permission === 'denied' ? 'error' : 'hint'} role="status">
        {!supported && 'This browser cannot show notifications.'}
        {permission === 'denied' && 'The browser refused notifications for this site: allow them in the site settings of your browser, then turn them on here.'}
        {permission === 'granted' && (on ? 'Notifications are on.' : 'Notifications are off.')}
        {permission === 'default' && 'Turning them on asks your browser for permission.'}
      </p>
    </section>
  );
}

const PANELS = {
  profile: ProfileSettings,
  appearance: AppearanceSettings,
  notifications: NotificationSettings,
  security: SecuritySettings,
  'api-keys': ApiKeySettings,
};

export function SettingsView({ tab = 'profile' }) {
  const current = PANELS[tab] ? tab : 'profile';
  const Panel = PANELS[current];
  const label = SETTINGS_TABS.find((t) => t.id === current).label;
  return (
    <section class="settings-view" aria-labelledby="settings-title">
      <header class="view-head"><h1 id="settings-title">Settings</h1></header>
      <nav class="settings-tabs" aria-label="Settings sections">
        <ul>
          {SETTINGS_TABS.map((t) => (
            <li key={t.id}>
              <a href={'#/settings/' + t.id} aria-current={t.id === current ? 'page' : undefined}>{t.label}</a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="settings-panel" aria-label={label} role="region"><Panel /></div>
    </section>
  );
}
