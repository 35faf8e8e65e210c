import type { HeaderList } from '../http/types.js';

/**
 * The SPA's Content-Security-Policy (CSP Level 3). The build has no inline script or style and
 * every asset comes from this origin, so nothing needs 'unsafe-inline', 'unsafe-eval', a nonce
 * or a hash: scripts, styles, images and fetches are same-origin only. uPlot sizes its canvas
 * through the CSSOM (element.style.x = …), which style-src does not restrict; a `style`
 * attribute in markup would be refused. `frame-ancestors 'none'` forbids framing
 * (clickjacking); `base-uri 'none'` and `form-action 'self'` close the injection routes that
 * default-src does not cover. Trusted Types is required for script sinks: the SPA never writes
 * HTML strings into the DOM (textContent only), so any innerHTML assignment is refused.
 * nginx.conf sends the same value (a test compares them).
 */
export const SPA_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
].join('; ');

/**
 * Powerful features the SPA never uses are switched off for it and anything it could embed
 * (Permissions Policy); the clipboard stays available to this origin for the copy-once button.
 */
export const SPA_PERMISSIONS_POLICY =
  'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), clipboard-write=(self)';

/** Sent with every static answer (HTML and assets alike). */
export const SPA_SECURITY_HEADERS: HeaderList = [
  ['content-security-policy', SPA_CSP],
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  // Legacy twin of frame-ancestors for browsers without CSP 2.
  ['x-frame-options', 'DENY'],
  ['permissions-policy', SPA_PERMISSIONS_POLICY],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
];
