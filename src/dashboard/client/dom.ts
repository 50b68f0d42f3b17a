/**
 * The one way the client builds DOM: elements from a tag, properties and children, where a string child
 * becomes a text node. Job data is untrusted and never goes through innerHTML or an attribute that runs
 * code, so a body holding `<script>` or `"><img onerror>` shows as the text it is.
 */

/** A child: text (set as a text node), an element, or nothing (skipped). */
export type Child = Node | string | number | null | undefined | false;

/** Properties an element may be given: plain attributes, written with setAttribute (never `on*`). */
export type Props = Record<string, string | number | boolean | undefined>;

/** Makes `<tag>` with `props` as attributes and `children` appended; `on*` attributes are refused. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (/^on/i.test(name)) throw new TypeError(`refusing to set the event attribute ${name}`);
    node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** Appends `children` to `parent`, strings as text nodes. */
export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces the children of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/** A button that runs `action` on click (keyboard included: it is a real button). */
export function button(label: string, action: () => void, props: Props = {}): HTMLButtonElement {
  const node = el('button', { type: 'button', ...props }, label);
  node.addEventListener('click', action);
  return node;
}

/** A link to a view of the client (`#/tube/NAME`, `#/job/ID`); the parts are URI-encoded. */
export function viewLink(text: string, ...parts: string[]): HTMLAnchorElement {
  return el('a', { href: `#/${parts.map(encodeURIComponent).join('/')}` }, text);
}

/** A table with a header row and `rows`; each cell a child. */
export function table(caption: string, headers: readonly string[], rows: readonly (readonly Child[])[], className = ''): HTMLElement {
  return el(
    'div',
    { class: 'scroll' },
    el(
      'table',
      { class: className },
      el('caption', {}, caption),
      el('thead', {}, el('tr', {}, ...headers.map((name) => el('th', { scope: 'col' }, name)))),
      el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((cell) => el('td', {}, cell))))),
    ),
  );
}

/** Seconds as `1d 2h`, `3h 4m`, `5m 6s` or `7s`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3_600), Math.floor((s % 3_600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** Shows a short message in the status region (announced to screen readers). */
export function toast(message: string, isError = false): void {
  const node = document.getElementById('toast');
  if (!node) return;
  node.className = isError ? 'error' : '';
  node.textContent = message;
}
