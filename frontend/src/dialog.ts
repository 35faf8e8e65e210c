import { h, uid } from './dom.js';
import { textareaField } from './forms.js';

/**
 * A confirmation in a modal <dialog>: the browser traps focus inside it, Escape cancels, and
 * the page behind is inert. Focus returns to the control that opened it (WCAG 2.4.3).
 */
export interface ConfirmOptions {
  title: string;
  body: string;
  confirmLabel: string;
  danger?: boolean;
  /** Ask for a text (a reason) that must be filled in before confirming. */
  reason?: { label: string; hint: string; minLength: number; maxLength: number };
}

export function confirmDialog(opts: ConfirmOptions): Promise<{ confirmed: false } | { confirmed: true; reason: string }> {
  const opener = document.activeElement as HTMLElement | null;
  const titleId = uid('dialog-title');
  const bodyId = uid('dialog-body');
  const reason = opts.reason
    ? textareaField({
        name: 'reason',
        label: opts.reason.label,
        hint: opts.reason.hint,
        required: true,
        maxlength: opts.reason.maxLength,
        rows: 3,
      })
    : null;
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const ok = h('button', { type: 'submit', class: opts.danger ? 'danger' : 'primary' }, opts.confirmLabel);
  const form = h(
    'form',
    { class: 'stack', novalidate: true },
    h('h2', { id: titleId }, opts.title),
    h('p', { id: bodyId }, opts.body),
    reason?.wrap,
    h('div', { class: 'actions' }, cancel, ok),
  );
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'aria-describedby': bodyId }, form);
  document.body.append(dialog);

  return new Promise((resolve) => {
    let result: { confirmed: false } | { confirmed: true; reason: string } = { confirmed: false };
    dialog.addEventListener('close', () => {
      dialog.remove();
      opener?.focus();
      resolve(result);
    });
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = reason?.input.value.trim() ?? '';
      if (reason && opts.reason && text.length < opts.reason.minLength) {
        reason.setError(`Write at least ${opts.reason.minLength} characters.`);
        reason.input.focus();
        return;
      }
      result = { confirmed: true, reason: text };
      dialog.close();
    });
    dialog.showModal();
    (reason?.input ?? cancel).focus();
  });
}
