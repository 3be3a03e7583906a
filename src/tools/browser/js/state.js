// browser_get_state: the page's interactive elements, in document order.
// Returns the elements themselves (WebDriver turns them into references the
// session keeps for browser_click and browser_type) with what the model sees.
const SELECTOR = [
  'a[href]', 'button', 'input:not([type="hidden"])', 'select', 'textarea',
  'summary', 'details', '[onclick]', '[contenteditable=""]',
  '[contenteditable="true"]', '[tabindex]:not([tabindex="-1"])',
  '[role="button"]', '[role="link"]', '[role="checkbox"]', '[role="radio"]',
  '[role="tab"]', '[role="menuitem"]', '[role="option"]', '[role="switch"]',
  '[role="textbox"]', '[role="combobox"]', '[role="searchbox"]',
  '[role="slider"]', '[role="spinbutton"]',
].join(',');
// Like browser-use: elements further than this beyond the viewport are left out.
const VIEWPORT_THRESHOLD = 1000;
const MAX_ELEMENTS = 2000;

function visible(el) {
  if (el.getClientRects().length === 0) return false;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || style.visibility === 'collapse') return false;
  const rect = el.getBoundingClientRect();
  if (rect.width === 0 && rect.height === 0) return false;
  return rect.bottom >= -VIEWPORT_THRESHOLD && rect.top <= innerHeight + VIEWPORT_THRESHOLD;
}

// browser-use's get_all_children_text(max_depth=2): text nodes at depth <= 2.
function childText(el) {
  const parts = [];
  (function walk(node, depth) {
    if (depth > 2) return;
    if (node.nodeType === Node.TEXT_NODE) {
      parts.push(node.nodeValue);
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      for (const child of node.childNodes) walk(child, depth + 1);
    }
  })(el, 0);
  return parts.join('\n').trim().slice(0, 400);
}

const elements = [];
for (const el of document.querySelectorAll(SELECTOR)) {
  if (elements.length >= MAX_ELEMENTS) break;
  if (!visible(el)) continue;
  elements.push({
    element: el,
    tag: el.tagName.toLowerCase(),
    text: childText(el),
    placeholder: el.getAttribute('placeholder') || '',
    href: el.getAttribute('href') || '',
    target: el.getAttribute('target') || '',
  });
}
const doc = document.documentElement;
return {
  title: document.title,
  elements,
  viewport: { width: innerWidth, height: innerHeight },
  page: {
    width: Math.max(doc.scrollWidth, document.body ? document.body.scrollWidth : 0),
    height: Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0),
  },
  scroll: { x: Math.round(scrollX), y: Math.round(scrollY) },
};
