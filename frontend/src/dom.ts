/**
 * Building DOM without HTML strings: text goes through text nodes only, so nothing a server or
 * a user wrote can become markup (the CSP also requires Trusted Types for HTML sinks, so an
 * innerHTML assignment would be refused anyway). No `style` attributes either: the CSP allows
 * stylesheets from this origin only.
 */
export type Child = Node | string | number | null | undefined | false;
type AttrValue = string | number | boolean | null | undefined;
export type Attrs = { [name: string]: AttrValue | EventListener } & { style?: never };

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

let ids = 0;
/** A document-unique id for label/aria wiring. */
export const uid = (prefix: string): string => `${prefix}-${++ids}`;

/** The page's h1, focusable so client-side navigation can move focus to it (WCAG 2.4.3). */
export const pageHeading = (text: string): HTMLHeadingElement => h('h1', { tabindex: -1, class: 'page-title' }, text);

/** A horizontally scrollable, keyboard-focusable region for wide tables on narrow screens. */
export const scrollRegion = (label: string, child: Node): HTMLDivElement =>
  h('div', { class: 'table-scroll', role: 'region', 'aria-label': label, tabindex: 0 }, child);
