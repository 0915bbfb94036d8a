// Browser notifications (the Notification API) for mentions and direct
// messages while the tab is hidden. To be built (issue 18); the signatures
// are the contract. The preference is kept in localStorage 'parley.notify'.

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
