// The logged-in layout: the sidebar, the current view, the side panel, the
// header with the connection state. Keyboard: Ctrl/Cmd+K opens the channel
// switcher, Esc closes the side panel.
import { useStore } from './store.js';
import { Sidebar } from './sidebar.jsx';
import { ChannelView } from './channel.jsx';
import { SearchView } from './search.jsx';
import { SettingsView } from './settings.jsx';
import { AdminView } from './admin/admin.jsx';
import { ThreadPanel } from './thread.jsx';

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

export function Shell() {
  const live = useStore((s) => s.live.state);
  return (
    <div class="shell">
      <nav class="sidebar" aria-label="Channels and conversations"><Sidebar /></nav>
      <main class="main" id="main">
        <div class="live-state" role="status" data-state={live}>{live}</div>
        <CurrentView />
      </main>
      <SidePanel />
      <footer class="footer"><a href="/docs">API documentation</a> · <a href="/redoc">Reference</a></footer>
    </div>
  );
}
