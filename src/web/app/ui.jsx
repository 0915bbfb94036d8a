// Small shared pieces of the interface: a modal dialog that keeps focus and
// closes on Esc, an avatar, times. Text is always rendered as text: nothing
// here (or anywhere in the client) sets innerHTML.
import { useLayoutEffect, useRef } from 'preact/hooks';

// Open modals, the newest last: Esc closes the newest only, wherever the
// focus is (a button that disables itself drops the focus to the body),
// unless something inside handled that Esc (a picker, a list: they call
// preventDefault).
const openModals = [];

document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || !openModals.length || e.defaultPrevented) return;
  e.preventDefault();
  openModals[openModals.length - 1].close();
});

export function Modal({ title, onClose, children, wide }) {
  const ref = useRef(null);
  const entry = useRef({ close: onClose });
  entry.current.close = onClose;
  // Before paint: the focus is inside the dialog as soon as it shows.
  useLayoutEffect(() => {
    const prev = document.activeElement;
    const el = ref.current;
    const first = el && el.querySelector('input, select, textarea, button, [tabindex]');
    if (first) first.focus();
    const me = entry.current;
    openModals.push(me);
    // Tab stays inside the dialog.
    const onKey = (e) => {
      if (e.key !== 'Tab') return;
      const focusable = [...el.querySelectorAll('a[href], input, select, textarea, button, [tabindex]:not([tabindex="-1"])')]
        .filter((n) => !n.disabled && n.offsetParent !== null);
      if (!focusable.length) return;
      const firstEl = focusable[0];
      const lastEl = focusable[focusable.length - 1];
      if (e.shiftKey && document.activeElement === firstEl) {
        e.preventDefault();
        lastEl.focus();
      } else if (!e.shiftKey && document.activeElement === lastEl) {
        e.preventDefault();
        firstEl.focus();
      }
    };
    el.addEventListener('keydown', onKey);
    return () => {
      el.removeEventListener('keydown', onKey);
      const i = openModals.indexOf(me);
      if (i >= 0) openModals.splice(i, 1);
      if (prev && prev.focus && document.contains(prev)) prev.focus();
    };
  }, []);
  return (
    <div class="modal-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class={'modal' + (wide ? ' modal-wide' : '')} role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <header class="modal-head">
          <h2>{title}</h2>
          <button type="button" class="icon-button" aria-label="Close" onClick={onClose}>×</button>
        </header>
        <div class="modal-body">{children}</div>
      </div>
    </div>
  );
}

// The initials of a name on a colour derived from it, or the avatar image.
export function Avatar({ user, size = 32 }) {
  const name = (user && (user.display_name || user.username)) || '?';
  const hue = [...name].reduce((h, ch) => (h * 31 + ch.codePointAt(0)) % 360, 7);
  if (user && user.avatar_url) {
    return <img class="avatar" src={user.avatar_url} alt="" width={size} height={size} />;
  }
  return (
    <span class="avatar" aria-hidden="true" style={{ width: size + 'px', height: size + 'px', background: `hsl(${hue} 45% 45%)` }}>
      {[...name][0].toUpperCase()}
    </span>
  );
}

export function displayName(user) {
  return (user && (user.display_name || user.username)) || 'unknown';
}

export function formatTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function formatDay(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86400000);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return d.toLocaleDateString([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

export function formatBytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}
