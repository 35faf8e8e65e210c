import { h, uid } from './dom.js';

/**
 * Labelled form fields whose errors sit next to them and are tied to them for assistive
 * technology (aria-describedby + aria-invalid, WCAG 3.3.1), and a form-level alert.
 */
export interface Field<E extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement = HTMLInputElement> {
  wrap: HTMLDivElement;
  input: E;
  setError(message: string | null): void;
}

export interface FieldOptions {
  name: string;
  label: string;
  type?: string;
  hint?: string;
  autocomplete?: string;
  required?: boolean;
  maxlength?: number;
  value?: string;
  placeholder?: string;
}

function wire<E extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(input: E, opts: FieldOptions): Field<E> {
  const id = input.id;
  const hint = opts.hint ? h('p', { class: 'hint', id: `${id}-hint` }, opts.hint) : null;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const describe = (withError: boolean) => [hint ? `${id}-hint` : null, withError ? `${id}-error` : null].filter(Boolean).join(' ');
  if (hint) input.setAttribute('aria-describedby', describe(false));
  const label = h('label', { for: id }, opts.label, opts.required ? null : h('span', { class: 'optional' }, ' (optional)'));
  const wrap = h('div', { class: 'field' }, label, hint, input, error);
  return {
    wrap,
    input,
    setError(message) {
      error.textContent = message ?? '';
      error.hidden = message === null;
      wrap.classList.toggle('invalid', message !== null);
      if (message === null) input.removeAttribute('aria-invalid');
      else input.setAttribute('aria-invalid', 'true');
      const d = describe(message !== null);
      if (d) input.setAttribute('aria-describedby', d);
      else input.removeAttribute('aria-describedby');
    },
  };
}

export function inputField(opts: FieldOptions): Field {
  const input = h('input', {
    id: uid(opts.name),
    name: opts.name,
    type: opts.type ?? 'text',
    autocomplete: opts.autocomplete ?? 'off',
    required: opts.required ?? false,
    maxlength: opts.maxlength,
    placeholder: opts.placeholder,
    spellcheck: opts.type === 'text' || opts.type === undefined ? 'false' : undefined,
  });
  if (opts.value !== undefined) input.value = opts.value;
  return wire(input, opts);
}

export function textareaField(opts: FieldOptions & { rows?: number }): Field<HTMLTextAreaElement> {
  const input = h('textarea', {
    id: uid(opts.name),
    name: opts.name,
    rows: opts.rows ?? 4,
    required: opts.required ?? false,
    maxlength: opts.maxlength,
  });
  if (opts.value !== undefined) input.value = opts.value;
  return wire(input, opts);
}

export function selectField(opts: FieldOptions): Field<HTMLSelectElement> {
  return wire(h('select', { id: uid(opts.name), name: opts.name, required: opts.required ?? false }), opts);
}

/** The form's own alert: announced at once when it appears (role=alert). */
export function formAlert(): { node: HTMLDivElement; show(message: string | null): void } {
  const node = h('div', { class: 'form-alert', role: 'alert', hidden: true });
  return {
    node,
    show(message) {
      node.textContent = message ?? '';
      node.hidden = message === null;
    },
  };
}

/** Client-side checks before a request; the server checks again and its answer wins. */
export const looksLikeEmail = (s: string): boolean => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s.trim());

/**
 * Counts down from `seconds` (a Retry-After), calling `tick` with the whole seconds left, then
 * `done`. Driven by the wall clock, so a throttled background tab still ends on time.
 */
export function countdown(seconds: number, tick: (left: number) => void, done: () => void): () => void {
  const until = Date.now() + seconds * 1000;
  const step = (): void => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left > 0) return tick(left);
    window.clearInterval(timer);
    done();
  };
  const timer = window.setInterval(step, 250);
  step();
  return () => window.clearInterval(timer);
}
