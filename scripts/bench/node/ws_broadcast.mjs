// The baseline of make bench's P3 (scripts/bench/ws_fanout.py): a plain
// broadcast server on node's http and the npm package `ws` (pinned by
// package.json and package-lock.json here), as one would write it from ws's
// README. It takes the very connections build/release/bench_ws_client makes
// (GET /api/v1/ws?token=<token>, the 101 is all the client waits for) and
// answers POST /api/v1/channels/<id>/messages by sending one text frame of the
// shape and size of Parley's message.created ({"type","seq","data"}, data the
// message view with the same fields) to every open socket, then 201 with the
// message. It persists nothing and checks nothing but the token: the floor of
// a fan-out on node, measured by the same client, N and M as Parley.
//
//     node scripts/bench/node/ws_broadcast.mjs <token>
// prints "listening <port>" (127.0.0.1, a free port) once it accepts.
import { createServer } from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';

const token = process.argv[2];
if (!token) {
  console.error('usage: node ws_broadcast.mjs <token>');
  process.exit(2);
}

const userId = 'usr_0000000000000000b0b0';
const sender = { id: userId, username: 'bencher', display_name: 'bencher', avatar_url: null };
// Sequence numbers of Parley's size (its start-up unix seconds << 20).
let seq = Math.floor(Date.now() / 1000) * 2 ** 20;

const wss = new WebSocketServer({ noServer: true });

const server = createServer((req, res) => {
  const posted = /^\/api\/v1\/channels\/([^/]+)\/messages$/.exec(req.url);
  if (req.method !== 'POST' || !posted) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    seq += 1;
    const now = new Date().toISOString();
    const message = {
      id: 'msg_' + String(seq).padStart(16, '0'), channel_id: posted[1], user_id: userId, sender,
      content: String(body.content), content_type: 'text', created_at: now, updated_at: now,
      is_edited: false, is_deleted: false, reply_to: null, thread_id: null, mentions: [],
      attachments: [], reactions: [],
    };
    // Encoded once, the same bytes to every socket.
    const frame = Buffer.from(JSON.stringify({ type: 'message.created', seq, data: message }));
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(frame, { binary: false });
    }
    const answer = JSON.stringify(message);
    res.writeHead(201, { 'Content-Type': 'application/json' }).end(answer);
  });
});

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname !== '/api/v1/ws' || url.searchParams.get('token') !== token) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

server.listen(0, '127.0.0.1', 16384, () => {
  console.log('listening ' + server.address().port);
});
