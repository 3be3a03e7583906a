// browser_start_recording without rrweb: an event log kept in the page
// (page metadata, a DOM snapshot, clicks, input lengths, scrolls and
// mutation counts) that the session drains between tool calls. Installing twice is a
// no-op. arguments[0]: "install", "drain" or "stop".
const command = arguments[0];
const MAX_BUFFERED = 20000;
const MAX_SNAPSHOT = 2000000;
let rec = window.__agentServerRecorder;

if (command === 'drain' || command === 'stop') {
  if (!rec) return null;
  const events = rec.events;
  rec.events = [];
  if (command === 'stop') {
    rec.observer.disconnect();
    for (const [target, type, handler] of rec.listeners) {
      target.removeEventListener(type, handler, true);
    }
    delete window.__agentServerRecorder;
  }
  return events;
}

if (rec) return 'already_recording';

rec = { events: [], listeners: [], observer: null };
window.__agentServerRecorder = rec;
const push = (type, data) => {
  if (rec.events.length < MAX_BUFFERED) rec.events.push({ type, timestamp: Date.now(), data });
};
const describe = (el) => {
  if (!el || el.nodeType !== Node.ELEMENT_NODE) return null;
  const parts = [];
  for (let node = el; node && node.nodeType === Node.ELEMENT_NODE && parts.length < 5; node = node.parentElement) {
    let part = node.tagName.toLowerCase();
    if (node.id) { parts.unshift(part + '#' + node.id); break; }
    const parent = node.parentElement;
    if (parent) {
      const same = [...parent.children].filter((c) => c.tagName === node.tagName);
      if (same.length > 1) part += `:nth-of-type(${same.indexOf(node) + 1})`;
    }
    parts.unshift(part);
  }
  return parts.join(' > ');
};
const listen = (target, type, handler) => {
  target.addEventListener(type, handler, true);
  rec.listeners.push([target, type, handler]);
};

push('meta', { href: location.href, title: document.title, width: innerWidth, height: innerHeight });
push('full_snapshot', { html: document.documentElement.outerHTML.slice(0, MAX_SNAPSHOT) });
listen(document, 'click', (e) => push('click', { target: describe(e.target), x: e.clientX, y: e.clientY }));
// Typed text may be a credential: only its length is recorded.
listen(document, 'input', (e) => {
  const t = e.target;
  push('input', { target: describe(t), length: String(t.value ?? t.textContent ?? '').length });
});
let lastScroll = 0;
listen(window, 'scroll', () => {
  const now = Date.now();
  if (now - lastScroll < 100) return;
  lastScroll = now;
  push('scroll', { x: Math.round(scrollX), y: Math.round(scrollY) });
});
rec.observer = new MutationObserver((mutations) => {
  let added = 0, removed = 0, attributes = 0, text = 0;
  for (const m of mutations) {
    added += m.addedNodes.length;
    removed += m.removedNodes.length;
    if (m.type === 'attributes') attributes += 1;
    if (m.type === 'characterData') text += 1;
  }
  push('mutation', { added, removed, attributes, text });
});
rec.observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
return 'started';
