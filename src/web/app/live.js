// Live events: one WebSocket to /api/v1/ws (by the session cookie), resumed
// with ?since=<last seq> after a drop so nothing is missed or seen twice
// (an event whose seq is not above the last one seen is dropped). When the
// WebSocket cannot be opened a few times in a row, the event stream
// (EventSource /api/v1/events, resumed the same way) takes over.
// Reconnects back off exponentially with jitter (1 s .. 30 s), and happen at
// once when the browser comes back online or the tab is shown after a sleep.
// Parts of the app register handlers by event type with onEvent(); the
// pseudo-event `resync` says events were lost (RESYNC_REQUIRED): reload over
// HTTP. The connection's state is in state.live for the header to show.
import { api } from './api.js';
import { state, update } from './store.js';

const handlers = new Map(); // type -> Set(fn(data, frame))

export function onEvent(type, fn) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type).delete(fn);
}

function emit(type, data, frame) {
  const set = handlers.get(type);
  if (set) [...set].forEach((fn) => fn(data, frame));
}

// Frames that are not events: they carry the resume point, never counted.
const CONTROL = new Set(['ready', 'pong', 'ack', 'subscribed', 'unsubscribed', 'authenticated', 'error']);

function setLive(patch) {
  update((s) => ({ live: { ...s.live, ...patch } }));
}

function dispatch(frame) {
  const isEvent = !CONTROL.has(frame.type) && typeof frame.seq === 'number';
  if (isEvent) {
    if (frame.seq <= state.live.seq) return; // seen before (a replay overlapping what we had)
    setLive({ seq: frame.seq });
  } else if (frame.type === 'ready' && typeof frame.seq === 'number' && frame.seq > state.live.seq) {
    setLive({ seq: frame.seq });
  }
  emit(frame.type, frame.data || {}, frame);
  if (isEvent) emit('*', frame.data || {}, frame);
}

const SSE_TYPES = ['message.created', 'message.updated', 'message.deleted', 'reaction.added', 'reaction.removed',
  'typing', 'presence', 'channel.updated', 'channel.deleted', 'member.joined', 'member.left', 'user.updated',
  'message_status'];

let socket = null; // the WebSocket, when that is the transport
let source = null; // the EventSource, when the stream is
let stopped = true;
let retryTimer = 0;
let attempt = 0; // failures in a row, for the backoff
let wsFailures = 0; // WebSockets that never opened, in a row
let useSse = false;
let lastFrameAt = 0;
let lastTick = Date.now();
let pingTimer = 0;
let endNotice = ''; // the server's message before a close that ends the login
const subscriptions = new Set();
let onSessionEnded = () => {};

// session.js hands the function that goes back to the login page with a message.
export function setSessionEndHandler(fn) {
  onSessionEnded = fn;
}

export function backoffDelay(n) {
  const cap = Math.min(30000, 1000 * 2 ** n);
  return Math.max(1000, cap / 2 + Math.random() * (cap / 2));
}

function scheduleReconnect() {
  if (stopped) return;
  clearTimeout(retryTimer);
  const delay = backoffDelay(attempt);
  attempt += 1;
  retryTimer = setTimeout(connect, delay);
}

function handleFrame(frame) {
  lastFrameAt = Date.now();
  if (frame.type === 'ready') {
    attempt = 0;
    wsFailures = 0;
    setLive({ state: 'online', transport: socket ? 'websocket' : 'sse' });
    if (subscriptions.size) sendFrame({ type: 'subscribe', channels: [...subscriptions] });
  }
  if (frame.type === 'error' && frame.data) {
    const code = frame.data.code;
    if (code === 'RESYNC_REQUIRED') {
      // What we had is too old: take the server's resume point, reload over HTTP.
      if (typeof frame.seq === 'number') setLive({ seq: frame.seq });
      dispatch(frame);
      emit('resync', {}, frame);
      return;
    }
    if (code === 'ACCOUNT_BANNED' || code === 'IP_BLOCKED' || code === 'TOKEN_INVALID' || code === 'TOKEN_EXPIRED' ||
        code === 'AUTHENTICATION_REQUIRED') {
      endNotice = frame.data.message || code;
    }
  }
  dispatch(frame);
}

function endSession(message) {
  stopLive();
  onSessionEnded(message || 'Your session has ended. Please log in again.');
}

function connectWs() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const since = state.live.seq ? '?since=' + state.live.seq : '';
  // A socket that closes before its `ready` (refused, or cut by a proxy
  // that takes the upgrade and drops it) counts as one that did not open.
  let ready = false;
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws${since}`);
  socket = ws;
  ws.onmessage = (e) => {
    let frame;
    try {
      frame = JSON.parse(e.data);
    } catch {
      return;
    }
    if (frame.type === 'ready') ready = true;
    if (socket === ws) handleFrame(frame);
  };
  ws.onclose = (e) => {
    if (socket !== ws) return;
    socket = null;
    setLive({ state: 'offline' });
    if (e.code === 4001 || e.code === 4003) {
      endSession(endNotice || e.reason);
      return;
    }
    if (!ready) {
      wsFailures += 1;
      checkSession();
      if (wsFailures >= 3 && typeof EventSource !== 'undefined') useSse = true;
    }
    scheduleReconnect();
  };
}

function connectSse() {
  const since = state.live.seq ? '?since=' + state.live.seq : '';
  const es = new EventSource('/api/v1/events' + since);
  source = es;
  const onFrame = (type) => (e) => {
    if (source !== es) return;
    let data = {};
    try {
      data = e.data ? JSON.parse(e.data) : {};
    } catch {
      return;
    }
    const seq = type === 'ready' ? data.seq : e.lastEventId ? Number(e.lastEventId) : undefined;
    handleFrame({ type, seq, data });
  };
  for (const type of ['ready', 'ping', ...SSE_TYPES]) es.addEventListener(type, onFrame(type));
  es.addEventListener('error', (e) => {
    if (source !== es) return;
    if (e.data) {
      // The server's own `event: error`: its data says why.
      onFrame('error')(e);
      if (!endNotice) return;
      es.close();
      source = null;
      endSession(endNotice);
      return;
    }
    // The stream broke: reconnect ourselves, with our own resume point.
    es.close();
    source = null;
    setLive({ state: 'offline' });
    checkSession();
    scheduleReconnect();
  });
}

// After a transport that could not open: is the login still there? A 401,
// a ban or a blocked address end it (with the server's message).
function checkSession() {
  api('GET', '/users/me', { noSessionEnd: true }).catch((err) => {
    if (stopped) return;
    if (err.status === 401 || err.code === 'ACCOUNT_BANNED' || err.code === 'IP_BLOCKED') endSession(err.message);
  });
}

function connect() {
  if (stopped) return;
  clearTimeout(retryTimer);
  endNotice = '';
  setLive({ state: 'connecting' });
  if (useSse) connectSse();
  else connectWs();
}

// Closes the WebSocket or the event stream, whichever there is, unheard
// (its handlers see it is no longer the current one).
function dropTransport() {
  const ws = socket;
  const es = source;
  socket = null;
  source = null;
  if (ws) ws.close();
  if (es) es.close();
}

// Drops the current transport (if any) and connects again at once.
export function reconnectNow() {
  if (stopped) return;
  attempt = 0;
  dropTransport();
  connect();
}

function onOnline() {
  if (!stopped && state.live.state !== 'online') reconnectNow();
}

// The tab is shown again: after a sleep (or a long throttled stretch in the
// background) the socket may be dead without knowing it. One that has been
// quiet longer than the pings allow is replaced at once; else a ping checks it.
function onVisible() {
  if (stopped || document.visibilityState !== 'visible') return;
  if (state.live.state !== 'online' || Date.now() - lastFrameAt > 45000) reconnectNow();
  else sendFrame({ type: 'ping' });
}

// Every 10 s: a ping when the connection has been quiet (its pong is a
// frame), a new connection when it stayed quiet too long, or when the gap
// since the last tick says the machine slept. Hidden tabs have their timers
// throttled, so there a gap is no sleep (onVisible looks when shown).
function tick() {
  const now = Date.now();
  const slept = now - lastTick > 30000 && !document.hidden;
  lastTick = now;
  if (stopped) return;
  if (slept) reconnectNow();
  else if (socket && socket.readyState === WebSocket.OPEN) {
    if (now - lastFrameAt > 70000) reconnectNow();
    else if (now - lastFrameAt > 30000) sendFrame({ type: 'ping' });
  }
}

export function startLive() {
  if (!stopped) return;
  stopped = false;
  attempt = 0;
  wsFailures = 0;
  useSse = false;
  lastTick = Date.now();
  lastFrameAt = Date.now();
  window.addEventListener('online', onOnline);
  document.addEventListener('visibilitychange', onVisible);
  pingTimer = setInterval(tick, 10000);
  connect();
}

export function stopLive() {
  stopped = true;
  clearTimeout(retryTimer);
  clearInterval(pingTimer);
  window.removeEventListener('online', onOnline);
  document.removeEventListener('visibilitychange', onVisible);
  dropTransport();
  subscriptions.clear();
  setLive({ state: 'offline', seq: 0 });
}

// Sends a client frame (typing_start, subscribe...); false when not connected
// (or connected by the event stream, which only receives).
export function sendFrame(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

// Events of a public channel one looks at without being a member; kept
// across reconnects (sent again after every `ready`).
export function subscribeChannel(id) {
  if (subscriptions.has(id)) return;
  subscriptions.add(id);
  sendFrame({ type: 'subscribe', channels: [id] });
}

// (A member's unsubscribe would mute the channel: not sent for a channel
// joined in the meantime.)
export function unsubscribeChannel(id) {
  if (!subscriptions.delete(id)) return;
  const c = state.channels[id];
  if (c && c.is_member) return;
  sendFrame({ type: 'unsubscribe', channels: [id] });
}
