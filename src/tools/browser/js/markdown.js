// browser_get_content: the visible page as markdown, in the spirit of
// markdownify with browser-use's options (ATX headings, "-" bullets, no
// escaping, links only when asked for). arguments[0]: extract_links.
const extractLinks = !!arguments[0];
const SKIP = new Set([
  'SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'META', 'LINK', 'SVG',
  'CANVAS', 'IFRAME', 'OBJECT', 'EMBED', 'INPUT', 'SELECT', 'TEXTAREA',
  'VIDEO', 'AUDIO', 'MAP',
]);
const BLOCK = new Set([
  'P', 'DIV', 'SECTION', 'ARTICLE', 'MAIN', 'HEADER', 'FOOTER', 'NAV', 'ASIDE',
  'FORM', 'FIELDSET', 'FIGURE', 'FIGCAPTION', 'ADDRESS', 'DL', 'DT', 'DD',
  'DETAILS', 'SUMMARY', 'CAPTION', 'LEGEND', 'BODY', 'HTML',
]);

function hidden(el) {
  if (el.hidden) return true;
  const style = getComputedStyle(el);
  return style.display === 'none' || style.visibility === 'hidden';
}

function absolute(url) {
  try { return new URL(url, document.baseURI).href; } catch (e) { return url; }
}

function wrap(text, marker) {
  const t = text.trim();
  return t ? marker + t + marker : '';
}

function listItems(list, depth) {
  const ordered = list.tagName === 'OL';
  let n = ordered ? parseInt(list.getAttribute('start') || '1', 10) || 1 : 1;
  const lines = [];
  for (const child of list.children) {
    if (child.tagName !== 'LI' || hidden(child)) continue;
    const bullet = ordered ? `${n++}. ` : '- ';
    const body = convertChildren(child, depth + 1).trim().replace(/\n{2,}/g, '\n');
    const indented = body.replace(/\n/g, '\n' + ' '.repeat(bullet.length));
    lines.push(bullet + indented);
  }
  return lines.join('\n');
}

function table(el) {
  const rows = [];
  for (const tr of el.querySelectorAll('tr')) {
    if (tr.closest('table') !== el || hidden(tr)) continue;
    const cells = [...tr.children]
      .filter((c) => c.tagName === 'TD' || c.tagName === 'TH')
      .map((c) => convertChildren(c, 0).replace(/\s+/g, ' ').trim().replace(/\|/g, '\\|'));
    if (cells.length) rows.push(cells);
  }
  if (!rows.length) return '';
  const width = Math.max(...rows.map((r) => r.length));
  const line = (r) => '| ' + [...r, ...Array(width - r.length).fill('')].join(' | ') + ' |';
  const out = [line(rows[0]), '| ' + Array(width).fill('---').join(' | ') + ' |'];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join('\n');
}

function convertChildren(el, depth) {
  let out = '';
  for (const child of el.childNodes) out += convert(child, depth);
  return out;
}

function convert(node, depth) {
  if (node.nodeType === Node.TEXT_NODE) {
    return node.nodeValue.replace(/\s+/g, ' ');
  }
  if (node.nodeType !== Node.ELEMENT_NODE) return '';
  const tag = node.tagName.toUpperCase();
  if (SKIP.has(tag) || hidden(node)) return '';
  if (node.shadowRoot) {
    let inner = '';
    for (const child of node.shadowRoot.childNodes) inner += convert(child, depth);
    return inner;
  }
  switch (tag) {
    case 'H1': case 'H2': case 'H3': case 'H4': case 'H5': case 'H6': {
      const text = convertChildren(node, depth).replace(/\s+/g, ' ').trim();
      return text ? `\n\n${'#'.repeat(Number(tag[1]))} ${text}\n\n` : '';
    }
    case 'BR':
      return '  \n';
    case 'HR':
      return '\n\n---\n\n';
    case 'STRONG': case 'B':
      return wrap(convertChildren(node, depth), '**');
    case 'EM': case 'I':
      return wrap(convertChildren(node, depth), '*');
    case 'DEL': case 'S':
      return wrap(convertChildren(node, depth), '~~');
    case 'CODE':
      return node.closest('pre') ? node.textContent : wrap(node.textContent, '`');
    case 'PRE':
      return '\n\n```\n' + node.textContent.replace(/\n$/, '') + '\n```\n\n';
    case 'A': {
      const text = convertChildren(node, depth).trim();
      const href = node.getAttribute('href');
      if (extractLinks && href && !href.startsWith('javascript:')) {
        return `[${text}](${absolute(href)})`;
      }
      return text;
    }
    case 'IMG': {
      const alt = (node.getAttribute('alt') || '').trim();
      const src = node.getAttribute('src') || '';
      if (extractLinks && src && !src.startsWith('data:')) return `![${alt}](${absolute(src)})`;
      return alt;
    }
    case 'UL': case 'OL':
      return '\n\n' + listItems(node, depth) + '\n\n';
    case 'LI':
      return '\n- ' + convertChildren(node, depth).trim() + '\n';
    case 'BLOCKQUOTE': {
      const inner = convertChildren(node, depth).trim().replace(/\n{3,}/g, '\n\n');
      return '\n\n' + inner.split('\n').map((l) => '> ' + l).join('\n') + '\n\n';
    }
    case 'TABLE':
      return '\n\n' + table(node) + '\n\n';
    case 'TR':
      return '\n' + convertChildren(node, depth) + '\n';
    case 'TD': case 'TH':
      return ' ' + convertChildren(node, depth) + ' ';
    default:
      if (BLOCK.has(tag)) return '\n\n' + convertChildren(node, depth).trim() + '\n\n';
      return convertChildren(node, depth);
  }
}

const root = document.body || document.documentElement;
const markdown = convert(root, 0)
  .split('\n')
  .map((line) => line.replace(/[ \t]+$/, (m) => (m === '  ' ? m : '')))
  .join('\n')
  .replace(/\n{3,}/g, '\n\n')
  .trim();
return {
  html_chars: document.documentElement.outerHTML.length,
  markdown,
};
