// Browser notifications (the Notification API) for mentions and direct
// messages while the tab is hidden. The preference is kept in localStorage
// 'parley.notify' (a preference, never a credential).
import { navigate, channelHash } from './router.js';

export function notificationsEnabled() {
  return localStorage.getItem('parley.notify') === 'on' && 'Notification' in window && Notification.permission === 'granted';
}

// Turns them on (asking the browser's permission) or off; resolves to the
// state after (true: on).
export async function setNotificationsEnabled(on) {
  if (!on || !('Notification' in window)) {
    localStorage.setItem('parley.notify', 'off');
    return false;
  }
  const permission = await Notification.requestPermission();
  localStorage.setItem('parley.notify', permission === 'granted' ? 'on' : 'off');
  return permission === 'granted';
}

// A message that mentions me or came in a direct conversation: shown as a
// notification when the tab is hidden and notifications are on. The text
// is given as text (the Notification API renders no markup).
export function notifyMessage(message, channel) {
  if (!document.hidden || !notificationsEnabled()) return null;
  const sender = message.sender || {};
  const who = sender.display_name || sender.username || 'Someone';
  const where = channel && channel.type !== 'direct' ? ` in #${channel.name}` : '';
  const body = message.content ? String(message.content).slice(0, 200) : 'sent an attachment';
  try {
    const n = new Notification(who + where, { body, tag: message.channel_id });
    n.onclick = () => {
      window.focus();
      navigate(channelHash(message.channel_id, message.id));
      n.close();
    };
    return n;
  } catch {
    return null; // some browsers only allow notifications from a service worker
  }
}
