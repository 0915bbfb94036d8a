// A message's content as Preact nodes, never as an HTML string: the text is
// cut into pieces (``` code blocks ```, `inline code`, **bold**, links,
// @mentions) and each piece becomes an element whose children are plain
// strings, which Preact sets as text. Anything that is not one of these
// stays text, so `<img onerror=...>` shows as those characters.
//   formatContent(text, {me}) -> array of nodes (me: the logged-in user, for
//   its mentions); mentionsMe(message, me) -> whether to highlight it whole.
import { h } from 'preact';

// Only these schemes become links; anything else (javascript:, data:...) stays text.
export function safeHref(url) {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'mailto:') return u.href;
  } catch {
    return null;
  }
  return null;
}

function link(href, text, key) {
  return h('a', { key, href, rel: 'noopener noreferrer', target: '_blank' }, text);
}

// A bare URL's end: trailing punctuation is the sentence's, not the link's;
// a closing parenthesis only when the URL opened one.
function trimUrl(url) {
  let end = url.length;
  for (;;) {
    const ch = url[end - 1];
    if ('.,;:!?\'"'.includes(ch)) end--;
    else if (ch === ')' && (url.slice(0, end).match(/\(/g) || []).length < (url.slice(0, end).match(/\)/g) || []).length) end--;
    else break;
  }
  return url.slice(0, end);
}

// `code`, **bold**, [text](url), bare URLs, @mentions.
const INLINE = /(`[^`\n]+`)|(\*\*(?=\S)[\s\S]*?\S\*\*)|\[([^\]\n]{1,200})\]\(([^)\s]{1,2000})\)|((?:https?:\/\/|mailto:)[^\s<>]+)|(^|[^\w@])@([A-Za-z0-9_.-]{1,32})/g;

function inline(text, opts, keyBase, depth = 0) {
  const out = [];
  let last = 0;
  let k = 0;
  const key = () => keyBase + '.' + k++;
  const re = new RegExp(INLINE.source, 'g');
  let m;
  while ((m = re.exec(text))) {
    let start = m.index;
    let piece = null;
    let consumed = m[0].length;
    if (m[1]) {
      piece = h('code', { key: key() }, m[1].slice(1, -1));
    } else if (m[2]) {
      const inner = m[2].slice(2, -2);
      piece = h('strong', { key: key() }, depth ? inner : inline(inner, opts, keyBase + 'b' + k, depth + 1));
    } else if (m[3] !== undefined) {
      const href = safeHref(m[4]);
      if (href) piece = link(href, m[3], key());
      else {
        // Not a link: leave the whole thing as text.
        continue;
      }
    } else if (m[5]) {
      const url = trimUrl(m[5]);
      const href = safeHref(url);
      consumed = url.length;
      if (href) piece = link(href, url, key());
      else {
        re.lastIndex = start + consumed;
        continue;
      }
    } else if (m[7]) {
      start += m[6].length;
      const name = m[7].replace(/\.+$/, '');
      consumed = 1 + name.length;
      const mine = opts.me && name.toLowerCase() === String(opts.me.username || '').toLowerCase();
      piece = h('span', { key: key(), class: 'mention' + (mine ? ' mention-me' : '') }, '@' + name);
    }
    if (start > last) out.push(text.slice(last, start));
    out.push(piece);
    last = start + consumed;
    re.lastIndex = last;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const FENCE = /```(?:[A-Za-z0-9_+-]{0,20}\n)?([\s\S]*?)```/g;

export function formatContent(text, opts = {}) {
  if (!text) return [];
  const out = [];
  let last = 0;
  let n = 0;
  const re = new RegExp(FENCE.source, 'g');
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(...inline(text.slice(last, m.index), opts, 't' + n++));
    out.push(h('pre', { key: 'pre' + n++, class: 'code-block' }, h('code', null, m[1].replace(/\n$/, ''))));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(...inline(text.slice(last), opts, 't' + n++));
  return out;
}

// Whether a message names the logged-in user (the server's mentions list,
// or an @username in the text).
export function mentionsMe(message, me) {
  if (!me || !message) return false;
  if (Array.isArray(message.mentions) && message.mentions.some((m) => (m && (m.id || m)) === me.id)) return true;
  if (!message.content || !me.username) return false;
  const re = new RegExp('(^|[^\\w@])@' + me.username.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&') + '(?![A-Za-z0-9_-])', 'i');
  return re.test(message.content);
}
