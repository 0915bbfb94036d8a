// The channels and direct conversations of the sidebar, in state.channels
// (id -> the API's channel object with is_member, unread_count, and the
// client's own mention_count and, for a direct channel, dm_user_ids: the
// other members). Loaded from GET /channels, kept current from the live
// events (channel.updated/deleted, member.joined/left), reloaded on `resync`.
import { api, items } from './api.js';
import { onEvent } from './live.js';
import { navigate, channelHash } from './router.js';
import { rememberUsers, state, update } from './store.js';

function setChannel(id, fn) {
  update((s) => {
    const c = fn(s.channels[id]);
    const channels = { ...s.channels };
    if (c) channels[id] = c;
    else delete channels[id];
    return { channels };
  });
}

// The users of a direct channel other than me, their profiles (names, status).
async function loadDirectMembers(channelId) {
  const page = await api('GET', `/channels/${encodeURIComponent(channelId)}/members`, { query: { limit: 100 } });
  const me = state.me && state.me.id;
  const others = ((page && page.members) || []).filter((m) => m.user_id !== me);
  const unknown = others.filter((m) => !state.users[m.user_id] || !state.users[m.user_id].status);
  rememberUsers(others.map((m) => ({ id: m.user_id, username: m.username })));
  const profiles = await Promise.all(unknown.map((m) => api('GET', `/users/${encodeURIComponent(m.user_id)}`).catch(() => null)));
  rememberPresence(profiles.filter(Boolean));
  setChannel(channelId, (c) => c && { ...c, dm_user_ids: others.map((m) => m.user_id) });
}

// A user's public profile (name, status), fetched once when not known yet.
const userRequests = new Map();
export function ensureUser(id) {
  if (!id || (state.users[id] && state.users[id].username)) return Promise.resolve(state.users[id]);
  if (!userRequests.has(id)) {
    userRequests.set(id, api('GET', `/users/${encodeURIComponent(id)}`)
      .then((u) => {
        rememberPresence([u]);
        return u;
      })
      .catch(() => null)
      .finally(() => userRequests.delete(id)));
  }
  return userRequests.get(id);
}

// Users seen with their status: into state.users and state.presence.
export function rememberPresence(users) {
  rememberUsers(users);
  const known = users.filter((u) => u && u.id && u.status);
  if (!known.length) return;
  update((s) => {
    const presence = { ...s.presence };
    for (const u of known) presence[u.id] = u.status === 'online' ? 'online' : 'offline';
    return { presence };
  });
}

function merge(old, fresh) {
  return {
    ...old,
    ...fresh,
    mention_count: fresh.unread_count === 0 ? 0 : (old && old.mention_count) || 0,
  };
}

export async function loadChannels() {
  const all = [];
  for (let page = 1; page <= 50; page++) {
    const answer = await api('GET', '/channels', { query: { limit: 100, page } });
    all.push(...items(answer));
    if (!answer || page >= (answer.pages || 1)) break;
  }
  update((s) => {
    const channels = {};
    for (const c of all) channels[c.id] = merge(s.channels[c.id], c);
    return { channels };
  });
  await Promise.all(all.filter((c) => c.type === 'direct' && !(state.channels[c.id] || {}).dm_user_ids)
    .map((c) => loadDirectMembers(c.id).catch(() => {})));
}

async function loadChannel(id) {
  const c = await api('GET', `/channels/${encodeURIComponent(id)}`);
  setChannel(id, (old) => merge(old, c));
  if (c.type === 'direct') await loadDirectMembers(id);
  return c;
}

export function channelLabel(c) {
  if (!c) return '';
  if (c.type !== 'direct') return c.name;
  const names = (c.dm_user_ids || []).map((id) => {
    const u = state.users[id];
    return (u && (u.display_name || u.username)) || '…';
  });
  return names.length ? names.join(', ') : 'Direct conversation';
}

export async function joinChannel(id) {
  await api('POST', `/channels/${encodeURIComponent(id)}/join`);
  setChannel(id, (c) => c && { ...c, is_member: true });
  await loadChannel(id).catch(() => {});
}

export async function leaveChannel(id) {
  await api('POST', `/channels/${encodeURIComponent(id)}/leave`);
  const c = state.channels[id];
  setChannel(id, (old) => (old && !old.is_private ? { ...old, is_member: false, unread_count: 0, mention_count: 0 } : null));
  if (state.route.channelId === id && c && c.is_private) navigate('#/');
}

export async function createChannel({ name, description, isPrivate }) {
  const body = { name, is_private: !!isPrivate };
  if (description) body.description = description;
  const c = await api('POST', '/channels', { body });
  setChannel(c.id, () => ({ ...c, is_member: true, unread_count: 0, mention_count: 0, last_message: null }));
  navigate(channelHash(c.id));
  return c;
}

// A direct conversation with the users named (usernames, without @).
export async function openDirect(usernames) {
  const users = await Promise.all(usernames.map(async (name) => {
    try {
      return await api('GET', `/users/by-username/${encodeURIComponent(name)}`);
    } catch (err) {
      if (err.status === 404) throw new Error(`There is no user named ${name}.`);
      throw err;
    }
  }));
  rememberPresence(users);
  const c = await api('POST', '/channels/direct', { body: { user_ids: users.map((u) => u.id) } });
  const me = state.me && state.me.id;
  setChannel(c.id, (old) => ({
    unread_count: 0, mention_count: 0, last_message: null, ...old, ...c, is_member: true,
    dm_user_ids: users.map((u) => u.id).filter((id) => id !== me),
  }));
  navigate(channelHash(c.id));
  return c;
}

// Public channels I am not in (for "Browse channels"), fresh from the server.
export async function browsableChannels() {
  await loadChannels();
  return Object.values(state.channels).filter((c) => c.type !== 'direct' && !c.is_private && !c.is_member);
}

const isMe = (userId) => state.me && userId === state.me.id;

onEvent('channel.updated', (data) => {
  const id = data.id || data.channel_id;
  if (!id) return;
  if (!state.channels[id]) {
    loadChannel(id).catch(() => {});
    return;
  }
  setChannel(id, (old) => ({ ...old, ...data, unread_count: old.unread_count, mention_count: old.mention_count, is_member: old.is_member }));
});

onEvent('channel.deleted', (data) => {
  const id = data.channel_id || data.id;
  setChannel(id, () => null);
  if (state.route.channelId === id) navigate('#/');
});

onEvent('member.joined', (data) => {
  if (isMe(data.user_id)) {
    loadChannel(data.channel_id).catch(() => {});
    return;
  }
  if (data.user) rememberUsers([{ ...data.user, id: data.user_id }]);
  const c = state.channels[data.channel_id];
  if (c) {
    setChannel(data.channel_id, (old) => ({ ...old, member_count: (old.member_count || 0) + 1 }));
    if (c.type === 'direct') loadDirectMembers(data.channel_id).catch(() => {});
  }
});

onEvent('member.left', (data) => {
  const c = state.channels[data.channel_id];
  if (!c) return;
  if (isMe(data.user_id)) {
    if (c.is_private || c.type === 'direct') {
      setChannel(data.channel_id, () => null);
      if (state.route.channelId === data.channel_id) navigate('#/');
    } else {
      setChannel(data.channel_id, (old) => ({ ...old, is_member: false, unread_count: 0, mention_count: 0 }));
    }
    return;
  }
  setChannel(data.channel_id, (old) => ({ ...old, member_count: Math.max(0, (old.member_count || 1) - 1) }));
});

onEvent('user.updated', (data) => {
  if (data.user && data.user.id) rememberUsers([data.user]);
});

// My own dot: online while the connection is.
onEvent('ready', () => {
  if (state.me) update((s) => ({ presence: { ...s.presence, [state.me.id]: 'online' } }));
});

onEvent('resync', () => {
  loadChannels().catch(() => {});
});

// A message in a channel we do not know yet (a new conversation): fetch it.
export function ensureChannel(id) {
  if (state.channels[id]) return Promise.resolve(state.channels[id]);
  return loadChannel(id).catch(() => null);
}
