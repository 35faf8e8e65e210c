import { ApiError, portal, type User } from '../api.js';
import { h, pageHeading } from '../dom.js';
import { countdown, formAlert, inputField, looksLikeEmail, type Field } from '../forms.js';
import type { Page, PageContext } from '../router.js';

/** Handed from sign-up to the login page in memory (never in the URL). */
let justRegistered: string | null = null;

/** Server codes that belong to one field; everything else is shown above the form. */
const FIELD_OF: Record<string, 'email' | 'password'> = {
  invalid_email: 'email',
  email_taken: 'email',
  weak_password: 'password',
};

interface AuthForm {
  form: HTMLFormElement;
  email: Field;
  password: Field;
  submit: HTMLButtonElement;
  alert: ReturnType<typeof formAlert>;
  dispose(): void;
}

function authForm(opts: { submitLabel: string; newPassword: boolean; email?: string; onSubmit(f: AuthForm): Promise<void> }): AuthForm {
  const email = inputField({
    name: 'email',
    label: 'Email',
    type: 'email',
    autocomplete: 'username',
    required: true,
    maxlength: 254,
    value: opts.email,
  });
  const password = inputField({
    name: 'password',
    label: 'Password',
    type: 'password',
    autocomplete: opts.newPassword ? 'new-password' : 'current-password',
    required: true,
    maxlength: 1024,
    hint: opts.newPassword ? 'At least 12 characters; not a common password and not containing your email address.' : undefined,
  });
  const alert = formAlert();
  const submit = h('button', { type: 'submit', class: 'primary' }, opts.submitLabel);
  const form = h(
    'form',
    { class: 'stack narrow', novalidate: true },
    alert.node,
    email.wrap,
    password.wrap,
    h('div', { class: 'actions' }, submit),
  );
  let stopCountdown: (() => void) | null = null;
  const f: AuthForm = { form, email, password, submit, alert, dispose: () => stopCountdown?.() };

  const validate = (): boolean => {
    email.setError(looksLikeEmail(email.input.value) ? null : 'Enter an email address such as name@example.com.');
    const min = opts.newPassword ? 12 : 1;
    password.setError(
      password.input.value.length >= min ? null : opts.newPassword ? 'Use at least 12 characters.' : 'Enter your password.',
    );
    const firstBad = [email, password].find((x) => x.input.getAttribute('aria-invalid') === 'true');
    firstBad?.input.focus();
    return firstBad === undefined;
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (submit.disabled) return;
    alert.show(null);
    if (!validate()) return;
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    opts
      .onSubmit(f)
      .catch((err: unknown) => {
        const e = err instanceof ApiError ? err : new ApiError(0, 'unknown', 'Something went wrong; retry.');
        const field = FIELD_OF[e.code] ?? (e.code === 'bad_request' && (e.field === 'email' || e.field === 'password') ? e.field : null);
        if (field) {
          (field === 'email' ? email : password).setError(e.code === 'bad_request' ? e.detail : e.message);
          (field === 'email' ? email : password).input.focus();
        } else if (e.code === 'invalid_credentials') {
          alert.show(e.message);
          password.setError('Check your email and password.');
          password.input.select();
        } else if (e.status === 429 && e.retryAfter !== null) {
          // Throttled: the button stays off, counting down from Retry-After.
          alert.show(`${e.message.replace(/;? ?retry in \d+ s\.?$/i, '')}. You can try again in ${e.retryAfter} s.`);
          stopCountdown?.();
          stopCountdown = countdown(
            e.retryAfter,
            (left) => {
              submit.textContent = `${opts.submitLabel} (${left} s)`;
              submit.disabled = true;
            },
            () => {
              submit.textContent = opts.submitLabel;
              submit.disabled = false;
              alert.show('You can try again now.');
            },
          );
          return;
        } else {
          alert.show(e.message);
        }
        submit.disabled = false;
      })
      .finally(() => form.removeAttribute('aria-busy'));
  });
  return f;
}

export function renderLogin(ctx: PageContext): Page {
  const registered = justRegistered;
  justRegistered = null;
  const notice = registered
    ? h('p', { class: 'notice success', role: 'status' }, `Account created for ${registered}. Log in to get your API keys.`)
    : ctx.query.get('expired')
      ? h('p', { class: 'notice', role: 'status' }, 'Your session ended. Log in again to continue.')
      : null;
  const f = authForm({
    submitLabel: 'Log in',
    newPassword: false,
    email: registered ?? undefined,
    async onSubmit(form) {
      const res = await portal<{ user: User }>(
        'POST',
        '/portal/login',
        { email: form.email.input.value.trim(), password: form.password.input.value },
        { quiet401: true },
      );
      ctx.setUser(res.user);
      const next = ctx.query.get('next');
      // Only a path of this site: never an open redirect.
      ctx.navigate(next && /^\/(?!\/)/.test(next) ? next : '/keys', { replace: true });
      ctx.announce(`Logged in as ${res.user.email}.`);
    },
  });
  if (registered) queueMicrotask(() => f.password.input.focus());
  return {
    node: h(
      'div',
      { class: 'page' },
      pageHeading('Log in'),
      notice,
      f.form,
      h('p', null, 'No account yet? ', h('a', { href: '/signup' }, 'Sign up'), '.'),
    ),
    dispose: f.dispose,
  };
}

export function renderSignup(ctx: PageContext): Page {
  const f = authForm({
    submitLabel: 'Create account',
    newPassword: true,
    async onSubmit(form) {
      const email = form.email.input.value.trim();
      await portal('POST', '/portal/register', { email, password: form.password.input.value }, { quiet401: true });
      justRegistered = email;
      ctx.navigate('/login');
    },
  });
  return {
    node: h(
      'div',
      { class: 'page' },
      pageHeading('Sign up'),
      h('p', { class: 'lede' }, 'Create an account to get API keys for the gateway: OpenAI-compatible on /v1, Ollama-compatible on /api.'),
      f.form,
      h('p', null, 'Already have an account? ', h('a', { href: '/login' }, 'Log in'), '.'),
    ),
    dispose: f.dispose,
  };
}
