// Starting and ending the logged-in state: who is logged in, the live
// connection, and everything that belongs to that login.
import { api } from './api.js';
import { update } from './store.js';
import { setSessionEndHandler, startLive, stopLive } from './live.js';

export function loggedIn(me) {
  update({ me, authNotice: '' });
  startLive();
}

// Back to the login page; `notice` (the server's message: a ban, a blocked
// address, an ended login) is shown there.
export function loggedOut(notice = '') {
  stopLive();
  update({
    me: null, channels: {}, messages: {}, presence: {}, typing: {}, panel: null, users: {},
    sidebarOpen: false, authNotice: notice,
  });
}

setSessionEndHandler((message) => loggedOut(message));

// Logs out on the server (the cookies are cleared), then here whatever it answered.
export async function logout() {
  try {
    await api('POST', '/auth/logout', { noSessionEnd: true });
  } catch {
    // The login may be over already: nothing more to end.
  }
  loggedOut();
}

// An admin: the admin role, or the permission the admin routes check.
export function isAdmin(me) {
  return !!me && ((Array.isArray(me.roles) && me.roles.includes('admin')) ||
    (Array.isArray(me.permissions) && me.permissions.includes('users.manage')));
}

export function applyTheme(theme) {
  const dark = theme === 'dark' || (theme === 'system' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}
