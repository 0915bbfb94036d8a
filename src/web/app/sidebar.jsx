// Sidebar: who I am (with logout), the channels I am in and the direct
// conversations, each with its unread badge and mention highlight, the
// current one marked (aria-current); browse and join public channels,
// create a channel, start a direct or group conversation by usernames;
// links to search, settings and (for admins) the admin view.
import { useEffect, useState } from 'preact/hooks';
import { useStore } from './store.js';
import { useSubmit } from './core-form.js';
import { channelHash, navigate } from './router.js';
import { isAdmin, logout } from './session.js';
import { Modal, displayName } from './ui.jsx';
import { PresenceDot } from './presence.jsx';
import {
  browsableChannels, channelLabel, createChannel, joinChannel, loadChannels, openDirect,
} from './core-channels.js';
import './sidebar.css';

function byName(a, b) {
  return channelLabel(a).localeCompare(channelLabel(b), undefined, { sensitivity: 'base' });
}

// The channels and conversations of the sidebar, in its order.
export function sidebarChannels(channels) {
  const list = Object.values(channels).filter((c) => c.is_member !== false);
  return {
    named: list.filter((c) => c.type !== 'direct').sort(byName),
    direct: list.filter((c) => c.type === 'direct').sort(byName),
  };
}

function Badges({ channel }) {
  const unread = channel.unread_count || 0;
  const mentions = channel.mention_count || 0;
  return (
    <>
      {mentions > 0 && <span class="badge badge-mention" aria-label={`${mentions} mention${mentions === 1 ? '' : 's'}`}>@{mentions}</span>}
      {unread > 0 && <span class="badge" aria-label={`${unread >= 1000 ? '1000+' : unread} unread`}>{unread >= 1000 ? '999+' : unread}</span>}
    </>
  );
}

function ChannelItem({ channel, active, onPick }) {
  const direct = channel.type === 'direct';
  const others = channel.dm_user_ids || [];
  const cls = ['channel-item', active && 'active', channel.unread_count > 0 && 'has-unread',
    channel.mention_count > 0 && 'has-mention'].filter(Boolean).join(' ');
  return (
    <li>
      <a class={cls} href={channelHash(channel.id)} aria-current={active ? 'page' : undefined}
        data-channel-id={channel.id} onClick={onPick}>
        {direct
          ? (others.length === 1 ? <PresenceDot userId={others[0]} /> : <span class="channel-sigil" aria-hidden="true">{others.length || ''}</span>)
          : <span class="channel-sigil" aria-hidden="true">{channel.is_private ? '🔒' : '#'}</span>}
        <span class="channel-name">{channelLabel(channel)}</span>
        <Badges channel={channel} />
      </a>
    </li>
  );
}

function BrowseDialog({ onClose }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState('');
  const [filter, setFilter] = useState('');
  useEffect(() => {
    browsableChannels().then(setList).catch((e) => setError(e.message));
  }, []);
  const join = async (c) => {
    setError('');
    try {
      await joinChannel(c.id);
      onClose();
      navigate(channelHash(c.id));
    } catch (e) {
      setError(e.message);
    }
  };
  const f = filter.trim().toLowerCase();
  const shown = (list || []).filter((c) => !f || c.name.toLowerCase().includes(f) || (c.description || '').toLowerCase().includes(f));
  return (
    <Modal title="Browse channels" onClose={onClose}>
      <label>Filter <input type="search" value={filter} onInput={(e) => setFilter(e.target.value)} autocomplete="off" /></label>
      {error && <p class="error" role="alert">{error}</p>}
      {list === null && !error && <p role="status">Loading…</p>}
      {list && !shown.length && <p>No public channel to join.</p>}
      <ul class="browse-list">
        {shown.map((c) => (
          <li key={c.id} class="browse-item">
            <div>
              <strong># {c.name}</strong>
              <span class="browse-meta"> · {c.member_count} member{c.member_count === 1 ? '' : 's'}</span>
              {c.description && <p class="browse-description">{c.description}</p>}
            </div>
            <span class="browse-actions">
              <a href={channelHash(c.id)} onClick={onClose} aria-label={`View ${c.name}`}>View</a>
              <button type="button" onClick={() => join(c)} aria-label={`Join ${c.name}`}>Join</button>
            </span>
          </li>
        ))}
      </ul>
    </Modal>
  );
}

function FormDialog({ title, onClose, run, submitLabel, children }) {
  const { error, busy, submit } = useSubmit(run, { onDone: onClose });
  return (
    <Modal title={title} onClose={onClose}>
      <form class="dialog-form" onSubmit={submit}>
        {children}
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>{submitLabel}</button>
      </form>
    </Modal>
  );
}

function CreateDialog({ onClose }) {
  return (
    <FormDialog title="Create a channel" submitLabel="Create" onClose={onClose}
      run={(form) => createChannel({
        name: String(form.get('name')).trim(),
        description: String(form.get('description') || '').trim(),
        isPrivate: form.get('visibility') === 'private',
      })}>
      <label>Name <input name="name" required maxLength={80} autocomplete="off" /></label>
      <label>Description <textarea name="description" maxLength={500} rows={2} /></label>
      <fieldset class="visibility">
        <legend>Who can join</legend>
        <label class="inline"><input type="radio" name="visibility" value="public" defaultChecked /> Public: anyone can join</label>
        <label class="inline"><input type="radio" name="visibility" value="private" /> Private: by invitation</label>
      </fieldset>
    </FormDialog>
  );
}

// "alice, @bob carol" -> ['alice', 'bob', 'carol']
export function parseUsernames(text) {
  return [...new Set(String(text).split(/[\s,]+/).map((s) => s.replace(/^@/, '')).filter(Boolean))];
}

function DirectDialog({ onClose }) {
  return (
    <FormDialog title="New conversation" submitLabel="Start" onClose={onClose}
      run={(form) => {
        const names = parseUsernames(form.get('usernames'));
        if (!names.length) throw new Error('Give at least one username.');
        return openDirect(names);
      }}>
      <label>Usernames (separated by commas or spaces)
        <input name="usernames" required autocomplete="off" placeholder="alice, bob" />
      </label>
    </FormDialog>
  );
}

export function Sidebar({ onNavigate }) {
  const channels = useStore((s) => s.channels);
  const route = useStore((s) => s.route);
  const me = useStore((s) => s.me);
  const users = useStore((s) => s.users);
  const [dialog, setDialog] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    loadChannels().catch((e) => setError(e.message));
  }, []);
  const { named, direct } = sidebarChannels(channels);
  const activeId = route.view === 'channel' ? route.channelId : null;
  const pick = () => onNavigate && onNavigate();
  const close = () => setDialog(null);
  void users; // names of direct conversations follow the users' profiles
  return (
    <div class="sidebar-inner">
      <header class="sidebar-head">
        <span class="sidebar-me">
          {me && <PresenceDot userId={me.id} />}
          <span class="sidebar-me-name">{displayName(me)}</span>
        </span>
        <button type="button" class="sidebar-logout" onClick={() => logout()}>Log out</button>
      </header>
      {error && <p class="error" role="alert">{error}</p>}
      <section class="sidebar-section" aria-labelledby="sidebar-channels">
        <div class="sidebar-section-head">
          <h2 id="sidebar-channels">Channels</h2>
          <button type="button" class="icon-button" aria-label="Create a channel" title="Create a channel" onClick={() => setDialog('create')}>+</button>
        </div>
        <ul class="channel-list">
          {named.map((c) => <ChannelItem key={c.id} channel={c} active={c.id === activeId} onPick={pick} />)}
        </ul>
        <button type="button" class="sidebar-action" onClick={() => setDialog('browse')}>Browse channels</button>
      </section>
      <section class="sidebar-section" aria-labelledby="sidebar-direct">
        <div class="sidebar-section-head">
          <h2 id="sidebar-direct">Direct messages</h2>
          <button type="button" class="icon-button" aria-label="New conversation" title="New conversation" onClick={() => setDialog('direct')}>+</button>
        </div>
        <ul class="channel-list">
          {direct.map((c) => <ChannelItem key={c.id} channel={c} active={c.id === activeId} onPick={pick} />)}
        </ul>
      </section>
      <ul class="sidebar-links">
        <li><a href="#/search" aria-current={route.view === 'search' ? 'page' : undefined} onClick={pick}>Search</a></li>
        <li><a href="#/settings" aria-current={route.view === 'settings' ? 'page' : undefined} onClick={pick}>Settings</a></li>
        {isAdmin(me) && <li><a href="#/admin" aria-current={route.view === 'admin' ? 'page' : undefined} onClick={pick}>Admin</a></li>}
      </ul>
      {dialog === 'browse' && <BrowseDialog onClose={close} />}
      {dialog === 'create' && <CreateDialog onClose={close} />}
      {dialog === 'direct' && <DirectDialog onClose={close} />}
    </div>
  );
}

