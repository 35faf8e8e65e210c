/**
 * The API key the playground uses. The secret is shown once (it is never stored server-side in
 * the clear), so the playground cannot fetch it: the user pastes one, or the key page hands over
 * the key it just created. It lives in this module only — never in localStorage, sessionStorage,
 * a cookie or the URL — so a reload, a new tab or logging out forgets it.
 */
let secret: string | null = null;
let label: string | null = null;

export const setPlaygroundKey = (value: string, name: string | null = null): void => {
  secret = value;
  label = name;
};
export const playgroundKey = (): { secret: string; label: string | null } | null => (secret === null ? null : { secret, label });
export const forgetPlaygroundKey = (): void => {
  secret = null;
  label = null;
};
