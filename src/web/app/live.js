// Live events: one WebSocket to /api/v1/ws (by the session cookie), resumed
// with ?since=<last seq> after a drop so nothing is missed or seen twice.
// Parts of the app register handlers by event type with onEvent(); the
// connection's state is in state.live for the header to show.
import { state, update } from './store.js';

const handlers = new Map(); // type -> Set(fn(data, frame))

export function onEvent(type, fn) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type).delete(fn);
}

function dispatch(frame) {
  if (typeof frame.seq === 'number' && frame.seq > state.live.seq) {
    update((s) => ({ live: { ...s.live, seq: frame.seq } }));
  }
  const set = handlers.get(frame.type);
  if (set) set.forEach((fn) => fn(frame.data || {}, frame));
  const any = handlers.get('*');
  if (any) any.forEach((fn) => fn(frame.data || {}, frame));
}

let socket = null;
let stopped = true;
let retryTimer = 0;

function setLive(patch) {
  update((s) => ({ live: { ...s.live, ...patch } }));
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const since = state.live.seq ? '?since=' + state.live.seq : '';
  setLive({ state: 'connecting' });
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws${since}`);
  socket = ws;
  ws.onmessage = (e) => {
    let frame;
    try {
      frame = JSON.parse(e.data);
    } catch {
      return;
    }
    if (frame.type === 'ready') setLive({ state: 'online' });
    dispatch(frame);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    setLive({ state: 'offline' });
    if (!stopped) retryTimer = setTimeout(connect, 1000);
  };
}

export function startLive() {
  if (!stopped) return;
  stopped = false;
  connect();
}

export function stopLive() {
  stopped = true;
  clearTimeout(retryTimer);
  if (socket) {
    const ws = socket;
    socket = null;
    ws.close();
  }
  setLive({ state: 'offline', seq: 0 });
}

// Sends a client frame (typing_start, subscribe...); false when not connected.
export function sendFrame(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}
