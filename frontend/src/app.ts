import { ApiError, portal, setSessionLostHandler, type User } from './api.js';
import { h, pageHeading } from './dom.js';
import { renderIncidents } from './pages/incidents.js';
import { renderKeys } from './pages/keys.js';
import { renderLogin, renderSignup } from './pages/auth.js';
import { renderPenalties } from './pages/penalties.js';
import { renderPlayground } from './pages/playground.js';
import { renderUsage } from './pages/usage.js';
import { forgetPlaygroundKey } from './playground-key.js';
import { interceptLinks, isOperator, type Page, type PageContext, type Route } from './router.js';

const ROUTES: Route[] = [
  { path: '/login', title: 'Log in', access: 'guest', render: renderLogin },
  { path: '/signup', title: 'Sign up', access: 'guest', render: renderSignup },
  { path: '/keys', title: 'API keys', access: 'user', render: renderKeys },
  { path: '/usage', title: 'Usage', access: 'user', render: renderUsage },
  { path: '/playground', title: 'Playground', access: 'user', render: renderPlayground },
  { path: '/operator/incidents', title: 'Incidents', access: 'operator', render: renderIncidents },
  { path: '/operator/penalties', title: 'Penalty box', access: 'operator', render: renderPenalties },
];

const NAV: Record<'guest' | 'user' | 'operator', Array<[string, string]>> = {
  guest: [
    ['/login', 'Log in'],
    ['/signup', 'Sign up'],
  ],
  user: [
    ['/keys', 'API keys'],
    ['/usage', 'Usage'],
    ['/playground', 'Playground'],
  ],
  operator: [
    ['/operator/incidents', 'Incidents'],
    ['/operator/penalties', 'Penalty box'],
  ],
};

const simplePage = (title: string, ...body: Array<Node | string>): Page => ({
  node: h('div', { class: 'page' }, pageHeading(title), ...body),
});

export function startApp(): void {
  const main = document.getElementById('main')!;
  const nav = document.getElementById('nav')!;
  const account = document.getElementById('account')!;
  const announcer = document.getElementById('announcer')!;
  let user: User | null = null;
  let current: Page | null = null;
  let renderedPath = '';
  let firstRender = true;
  let generation = 0;

  const announce = (message: string): void => {
    // Cleared first so the same message twice is announced twice.
    announcer.textContent = '';
    window.setTimeout(() => (announcer.textContent = message), 50);
  };

  const navigate = (path: string, opts: { replace?: boolean } = {}): void => {
    if (opts.replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    void render();
  };

  const drawShell = (): void => {
    const links = user === null ? NAV.guest : isOperator(user) ? [...NAV.user, ...NAV.operator] : NAV.user;
    nav.replaceChildren(
      h(
        'ul',
        null,
        ...links.map(([href, label]) => h('li', null, h('a', { href, 'aria-current': location.pathname === href ? 'page' : null }, label))),
      ),
    );
    if (user === null) {
      account.replaceChildren();
      return;
    }
    const out = h('button', { type: 'button', class: 'link-button' }, 'Log out');
    out.addEventListener('click', () => void logout());
    account.replaceChildren(
      h('span', { class: 'who' }, user.email, user.role === 'user' ? null : h('span', { class: 'badge' }, user.role)),
      out,
    );
  };

  const setUser = (u: User | null): void => {
    user = u;
    if (u === null) forgetPlaygroundKey();
    drawShell();
  };

  async function logout(): Promise<void> {
    try {
      await portal('POST', '/portal/logout', undefined, { quiet401: true });
    } catch {
      // Already logged out or unreachable: the session is dropped locally either way.
    }
    setUser(null);
    navigate('/login');
    announce('You are logged out.');
  }

  async function render(): Promise<void> {
    const gen = ++generation;
    const path = location.pathname;
    if (path === '/' || path === '/index.html') return navigate(user ? '/keys' : '/login', { replace: true });
    const route = ROUTES.find((r) => r.path === path.replace(/\/$/, ''));
    if (route?.access === 'guest' && user) return navigate('/keys', { replace: true });
    if ((route?.access === 'user' || route?.access === 'operator') && !user) {
      return navigate(`/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
    }
    const ctx: PageContext = { user, query: new URLSearchParams(location.search), navigate, announce, setUser };
    let page: Page;
    let title: string;
    if (!route) {
      title = 'Page not found';
      page = simplePage(title, h('p', null, 'There is no page at this address. ', h('a', { href: '/' }, 'Go to the start page'), '.'));
    } else if (route.access === 'operator' && !isOperator(user)) {
      title = 'Operators only';
      page = simplePage(
        title,
        h(
          'p',
          null,
          'This page shows incidents and the penalty box to accounts with the operator role. Ask an administrator to run ',
          h('code', null, 'fluxgate users promote'),
          ' if you need it.',
        ),
      );
    } else {
      title = route.title;
      try {
        page = await route.render(ctx);
      } catch (e) {
        page = simplePage(
          title,
          h('p', { role: 'alert', class: 'error' }, e instanceof ApiError ? e.message : 'This page could not be loaded; retry shortly.'),
        );
      }
    }
    // A newer navigation started while this page loaded: it wins.
    if (gen !== generation) return page.dispose?.();
    current?.dispose?.();
    current = page;
    renderedPath = location.pathname + location.search;
    document.title = `${title} · Fluxgate`;
    main.replaceChildren(page.node);
    drawShell();
    // Client-side navigation moves focus to the new page's heading (WCAG 2.4.3); the first load keeps the browser's.
    if (!firstRender) (main.querySelector('h1') ?? main).focus();
    firstRender = false;
  }

  setSessionLostHandler(() => {
    if (user === null) return;
    setUser(null);
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}&expired=1`, { replace: true });
  });
  interceptLinks((path) => navigate(path));
  window.addEventListener('popstate', () => {
    // A fragment change (the skip link) is not a new page.
    if (location.pathname + location.search !== renderedPath) void render();
  });

  void (async () => {
    try {
      user = await portal<User>('GET', '/portal/me', undefined, { quiet401: true });
    } catch {
      user = null;
    }
    drawShell();
    await render();
  })();
}
