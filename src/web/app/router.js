// Routes live in the URL's hash, so the server serves one page at / and a
// link to a message (#/c/<channel>/m/<message>) works from anywhere:
//   #/                     home (the first channel)
//   #/c/<id>               a channel or direct conversation
//   #/c/<id>/m/<msg>       the same, scrolled to a message
//   #/search?q=...         search
//   #/settings[/<tab>]     profile and settings
//   #/admin[/<tab>]        the admin view
import { update } from './store.js';

export function parse(hash) {
  const [path, qs] = hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = Object.fromEntries(new URLSearchParams(qs || ''));
  if (parts[0] === 'c' && parts[1]) {
    return { view: 'channel', channelId: parts[1], messageId: parts[2] === 'm' ? parts[3] : null };
  }
  if (parts[0] === 'search') return { view: 'search', params };
  if (parts[0] === 'settings') return { view: 'settings', tab: parts[1] || 'profile' };
  if (parts[0] === 'admin') return { view: 'admin', tab: parts[1] || 'dashboard' };
  return { view: 'home' };
}

export function navigate(hash) {
  if (location.hash === hash) update({ route: parse(hash) });
  else location.hash = hash;
}

export function channelHash(channelId, messageId) {
  return '#/c/' + encodeURIComponent(channelId) + (messageId ? '/m/' + encodeURIComponent(messageId) : '');
}

export function startRouter() {
  const apply = () => update({ route: parse(location.hash) });
  window.addEventListener('hashchange', apply);
  apply();
}
