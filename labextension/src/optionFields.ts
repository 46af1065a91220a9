/** The fields of the step options form (options.ts): what each says and wants. */

import { html } from './dom';
import { isSwitch } from './tags';
import type { TagSpec } from './types';

/** What each kind of value a field wants, as its placeholder says it. */
const WANTS: Record<string, string> = {
  int: 'a whole number, e.g. 2',
  seconds: 'seconds, e.g. 600',
  number: 'a number, e.g. 2',
  size: 'a size, e.g. 4GB',
  name: 'a step name'
};

/** The cache switch reads as what it does when checked. */
const CACHE_LABEL = 'cache results';
const CACHE_HELP =
  'Checked (the default): a run takes the step from the cache while its code, parameters ' +
  'and inputs are unchanged. Unchecked: the step runs every time (tag cache:off).';

/** One option of the form: a switch for an on/off option, a text field for the others. */
export function optionRow(
  spec: TagSpec,
  value: string,
  problem?: string
): { row: HTMLElement; input: HTMLInputElement } {
  const row = html('label', 'nb2pipe-option');
  row.dataset.kind = spec.kind;
  const input = html('input', 'jp-mod-styled nb2pipe-option-input');
  const help = isSwitch(spec) ? CACHE_HELP : spec.description;
  if (isSwitch(spec)) {
    input.type = 'checkbox';
    input.checked = value !== 'off';
    const name = spec.kind === 'cache' ? CACHE_LABEL : spec.kind;
    row.append(input, html('span', 'nb2pipe-option-name', name));
  } else {
    input.type = 'text';
    input.value = value;
    input.placeholder = (spec.value && WANTS[spec.value]) ?? '';
    input.spellcheck = false;
    if (spec.value === 'int' || spec.value === 'seconds') {
      input.inputMode = 'numeric';
    } else if (spec.value === 'number') {
      input.inputMode = 'decimal';
    }
    row.append(html('span', 'nb2pipe-option-name', spec.kind), input);
  }
  const helpText = html('span', 'nb2pipe-option-help', help, row);
  helpText.id = `nb2pipe-option-help-${spec.kind}-${Math.random().toString(36).slice(2, 8)}`;
  input.setAttribute('aria-describedby', helpText.id);
  if (problem) {
    html('span', 'nb2pipe-option-error', problem, row);
    input.setAttribute('aria-invalid', 'true');
  }
  return { row, input };
}
