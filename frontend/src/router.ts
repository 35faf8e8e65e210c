import type { User } from './api.js';

/**
 * History-API routing: real paths (`/keys`, `/operator/incidents`), which the data plane and
 * nginx answer with index.html, so reloads and shared links work. Same-origin links marked
 * `data-nav` (and any same-origin link without a target) are handled here without a reload.
 */

export type Access = 'guest' | 'user' | 'operator' | 'any';

export interface PageContext {
  user: User | null;
  query: URLSearchParams;
  navigate(path: string, opts?: { replace?: boolean }): void;
  /** Polite screen-reader announcement (the shell's live region). */
  announce(message: string): void;
  setUser(user: User | null): void;
}

export interface Page {
  node: HTMLElement;
  /** Stops timers and aborts requests when the page is left. */
  dispose?(): void;
}

export interface Route {
  path: string;
  title: string;
  access: Access;
  render(ctx: PageContext): Page | Promise<Page>;
}

export const isOperator = (u: User | null): boolean => u !== null && (u.role === 'operator' || u.role === 'admin');

/** Intercepts plain left clicks on same-origin links so they navigate in place. */
export function interceptLinks(navigate: (path: string) => void): void {
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin) return;
    // In-page fragments (the skip link) keep their native behaviour.
    if (url.pathname === location.pathname && url.search === location.search && url.hash !== '') return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
}
