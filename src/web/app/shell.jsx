// The logged-in layout: the sidebar, the current view, the side panel, the
// header with the connection state (a "Reconnecting…" banner when not
// online). Keyboard: Ctrl/Cmd+K opens the channel switcher, Esc closes the
// side panel (or the phone-width sidebar). A skip link leads to the main
// view. At phone width a button opens and closes the sidebar.
import { useEffect, useRef, useState } from 'preact/hooks';
import { state, update, useStore } from './store.js';
import { Sidebar, sidebarChannels } from './sidebar.jsx';
import { Switcher } from './switcher.jsx';
import { ChannelView } from './channel.jsx';
import { SearchView } from './search.jsx';
import { SettingsView } from './settings.jsx';
import { AdminView } from './admin/admin.jsx';
import { ThreadPanel } from './thread.jsx';
import { subscribeChannel, unsubscribeChannel } from './live.js';
import { channelHash, navigate, parse } from './router.js';
import { channelLabel } from './core-channels.js';
import './unread.js';
import './shell.css';

function CurrentView() {
  const route = useStore((s) => s.route);
  switch (route.view) {
    case 'channel':
      return <ChannelView channelId={route.channelId} messageId={route.messageId} />;
    case 'search':
      return <SearchView params={route.params} />;
    case 'settings':
      return <SettingsView tab={route.tab} />;
    case 'admin':
      return <AdminView tab={route.tab} />;
    default:
      return <div class="empty-view"><p>Pick a channel on the left, or start a conversation.</p></div>;
  }
}

function SidePanel() {
  const panel = useStore((s) => s.panel);
  if (!panel) return null;
  if (panel.kind === 'thread') return <ThreadPanel messageId={panel.messageId} />;
  return null;
}

const LIVE_TEXT = { online: 'Connected', connecting: 'Connecting…', offline: 'Offline' };

// Home: the first channel I am in, once the list is there.
function useHomeRedirect() {
  const route = useStore((s) => s.route);
  const channels = useStore((s) => s.channels);
  useEffect(() => {
    // The address as it is now, not as rendered: a navigation made since
    // (a link followed while the list loaded) is not overridden.
    if (route.view !== 'home' || parse(location.hash).view !== 'home') return;
    const { named, direct } = sidebarChannels(channels);
    const first = named[0] || direct[0];
    if (first) navigate(channelHash(first.id));
  }, [route, channels]);
}

// A public channel looked at without being a member: its events by subscribe.
function useChannelSubscription() {
  const route = useStore((s) => s.route);
  const member = useStore((s) => {
    const c = s.route.view === 'channel' && s.channels[s.route.channelId];
    return c ? c.is_member !== false : true;
  });
  useEffect(() => {
    if (route.view !== 'channel' || member) return undefined;
    const id = route.channelId;
    subscribeChannel(id);
    return () => unsubscribeChannel(id);
  }, [route.channelId, route.view, member]);
}

function isMac() {
  return /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
}

export function Shell() {
  const live = useStore((s) => s.live.state);
  const hadSeq = useStore((s) => s.live.seq > 0);
  const transport = useStore((s) => s.live.transport || '');
  const route = useStore((s) => s.route);
  const sidebarOpen = useStore((s) => s.sidebarOpen);
  const title = useStore((s) => {
    const r = s.route;
    if (r.view === 'channel') {
      const c = s.channels[r.channelId];
      return c ? (c.type === 'direct' ? channelLabel(c) : '#' + c.name) : '';
    }
    return { search: 'Search', settings: 'Settings', admin: 'Admin' }[r.view] || '';
  });
  const [switcher, setSwitcher] = useState(false);
  const mainRef = useRef(null);
  useHomeRedirect();
  useChannelSubscription();

  useEffect(() => {
    const onKey = (e) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === 'k' || e.key === 'K')) {
        e.preventDefault();
        setSwitcher((open) => !open);
        return;
      }
      if (e.key === 'Escape' && !e.defaultPrevented && !document.querySelector('.modal')) {
        if (state.sidebarOpen) update({ sidebarOpen: false });
        else if (state.panel) update({ panel: null });
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  const toggleSidebar = () => update((s) => ({ sidebarOpen: !s.sidebarOpen }));
  const closeSidebar = () => state.sidebarOpen && update({ sidebarOpen: false });
  const skip = (e) => {
    e.preventDefault();
    if (mainRef.current) mainRef.current.focus();
  };
  const notOnline = live !== 'online';
  return (
    <div class={'shell' + (sidebarOpen ? ' sidebar-open' : '')}>
      <a class="skip-link" href="#main" onClick={skip}>Skip to main content</a>
      <nav class="sidebar" id="sidebar" aria-label="Channels and conversations"><Sidebar onNavigate={closeSidebar} /></nav>
      {sidebarOpen && <div class="sidebar-backdrop" onClick={closeSidebar} aria-hidden="true" />}
      <main class="main" id="main" tabIndex={-1} ref={mainRef}>
        <header class="shell-header">
          <button type="button" class="icon-button sidebar-toggle" aria-controls="sidebar" aria-expanded={sidebarOpen ? 'true' : 'false'}
            aria-label={sidebarOpen ? 'Close the sidebar' : 'Open the sidebar'} onClick={toggleSidebar}>☰</button>
          <span class="shell-title">{title}</span>
          <button type="button" class="switcher-button" onClick={() => setSwitcher(true)}
            aria-keyshortcuts={isMac() ? 'Meta+K' : 'Control+K'}>
            Jump to… <kbd>{isMac() ? '⌘K' : 'Ctrl+K'}</kbd>
          </button>
          <span class="live-state" role="status" data-state={live} data-transport={transport}
            title={LIVE_TEXT[live] + (live === 'online' && transport === 'sse' ? ' (event stream)' : '')}>
            <span class="live-dot" aria-hidden="true" /> <span class="live-text">{LIVE_TEXT[live] || live}</span>
          </span>
        </header>
        {notOnline && (
          <div class="reconnect-banner" role="alert">
            {hadSeq ? 'Reconnecting…' : 'Connecting…'}
          </div>
        )}
        <CurrentView />
      </main>
      <SidePanel />
      <footer class="footer"><a href="/docs">API documentation</a> · <a href="/redoc">Reference</a></footer>
      {switcher && <Switcher onClose={() => setSwitcher(false)} />}
    </div>
  );
}
