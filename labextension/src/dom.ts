/** Small DOM helpers shared by the panel's parts. */

export function html<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
  parent?: HTMLElement
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  parent?.appendChild(node);
  return node;
}

/** A button styled by JupyterLab, with an accessible name. */
export function button(
  className: string,
  text: string,
  title: string,
  act: () => void,
  parent?: HTMLElement
): HTMLButtonElement {
  const node = html('button', `jp-mod-styled ${className}`, text, parent);
  node.type = 'button';
  node.title = title;
  node.addEventListener('click', () => {
    if (!isDisabled(node)) {
      act();
    }
  });
  return node;
}

/**
 * Disables a button visibly, keeping it focusable and hoverable so its tooltip says why
 * (a `disabled` button gets no pointer events, so no tooltip); null enables it.
 */
export function setDisabled(
  node: HTMLButtonElement,
  reason: string | null,
  enabledTitle: string
): void {
  node.setAttribute('aria-disabled', String(reason !== null));
  node.classList.toggle('nb2pipe-mod-disabled', reason !== null);
  node.title = reason ?? enabledTitle;
  node.dataset.reason = reason ?? '';
}

export function isDisabled(node: HTMLElement): boolean {
  return node.getAttribute('aria-disabled') === 'true';
}

/** Makes an element act on click and on Enter (or Space), like a button. */
export function actionable(
  node: HTMLElement,
  title: string,
  act: () => void
): void {
  node.tabIndex = 0;
  node.title = title;
  node.setAttribute('role', 'button');
  node.addEventListener('click', event => {
    const inner =
      event.target instanceof Element
        ? event.target.closest('a, button')
        : null;
    if (!inner || inner === node) {
      act();
    }
  });
  node.addEventListener('keydown', event => {
    if ((event.key === 'Enter' || event.key === ' ') && event.target === node) {
      event.preventDefault();
      act();
    }
  });
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
