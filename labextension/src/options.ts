/**
 * Per-step options in the step editor: retries, timeout, cache and what the step needs to run,
 * edited in a form and written as the grammar's own tags on the step's first code cell. The
 * server checks each tag before anything is written.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { html } from './dom';
import { optionRow } from './optionFields';
import { optionTags } from './tags';
import type { TagSpec } from './types';

class OptionsForm extends Widget {
  private readonly inputs = new Map<string, HTMLInputElement>();

  constructor(
    step: string,
    specs: readonly TagSpec[],
    values: Record<string, string>,
    problems: Record<string, string>
  ) {
    super();
    this.addClass('nb2pipe-options-form');
    html(
      'p',
      'nb2pipe-options-intro',
      `Options of step ${step}, written as tags on its first code cell. Leave a field ` +
        'empty for the default.',
      this.node
    );
    for (const spec of specs) {
      const { row, input } = optionRow(
        spec,
        values[spec.kind] ?? '',
        problems[spec.kind]
      );
      this.node.appendChild(row);
      this.inputs.set(spec.kind, input);
    }
  }

  getValue(): Record<string, string> {
    const values: Record<string, string> = {};
    for (const [kind, input] of this.inputs) {
      values[kind] =
        input.type === 'checkbox' ? (input.checked ? '' : 'off') : input.value;
    }
    return values;
  }
}

/**
 * Asks for a step's options until they are valid or the user cancels. `check` returns the
 * server's problems by tag. Resolves with the option tags to write, or null.
 */
export async function askStepOptions(
  step: string,
  specs: readonly TagSpec[],
  current: Record<string, string>,
  check: (tags: string[]) => Promise<Record<string, string>>
): Promise<string[] | null> {
  let values = current;
  let problems: Record<string, string> = {};
  for (;;) {
    const form = new OptionsForm(step, specs, values, problems);
    const answer = await showDialog({
      title: `Step ${step}: options`,
      body: form,
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: 'Save options' })
      ]
    });
    if (!answer.button.accept || !answer.value) {
      return null;
    }
    values = answer.value;
    const tags = optionTags(specs, values);
    const found = await check(tags);
    problems = {};
    for (const spec of specs) {
      const tag = tags.find(t => t.startsWith(`${spec.prefix}:`));
      if (tag && found[tag]) {
        problems[spec.kind] = found[tag];
      }
    }
    if (!Object.keys(problems).length) {
      return tags;
    }
  }
}
