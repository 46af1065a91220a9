/** Export from the pipeline panel: write the project, and when files were edited by hand,
 * offer Overwrite and Show diff instead of a command-line flag. */

import { Notification } from '@jupyterlab/apputils';

import { ApiError, exportDiff, exportPipeline } from './api';
import { button, html, messageOf } from './dom';
import type { PanelParts } from './host';
import { plural } from './present';
import type { ExportResult } from './types';

export class Exporter {
  constructor(
    private readonly panel: PanelParts,
    private readonly output: () => string
  ) {}

  async export(force: boolean): Promise<void> {
    if (!(await this.panel.saved('Export'))) {
      return;
    }
    this.panel.setBusy('Exporting…');
    this.panel.result.replaceChildren();
    this.panel.say(
      force ? 'Exporting (overwriting edited files)…' : 'Exporting…',
      'busy'
    );
    try {
      this.exported(
        await exportPipeline(this.panel.path, this.output(), force)
      );
    } catch (error) {
      const body =
        error instanceof ApiError
          ? (error.body as Partial<ExportResult>)
          : null;
      if (body && Array.isArray(body.edited) && body.edited.length) {
        this.conflict(body.edited, messageOf(error));
      } else {
        this.panel.say(`Nothing was exported: ${messageOf(error)}`, 'error');
        html('p', 'nb2pipe-export-error', messageOf(error), this.panel.result);
      }
    } finally {
      this.panel.setBusy(null);
    }
  }

  private exported(exported: ExportResult): void {
    const changed = exported.written.length;
    const text =
      `Exported to ${exported.output}: ${plural(changed, 'file')} written, ` +
      `${exported.unchanged.length} unchanged.`;
    this.panel.say(text, 'success');
    const box = html(
      'div',
      'nb2pipe-export-result',
      undefined,
      this.panel.result
    );
    html('div', 'nb2pipe-export-summary', text, box);
    if (exported.written.length) {
      const list = html('ul', 'nb2pipe-written', undefined, box);
      for (const file of exported.written) {
        html('li', '', file, list);
      }
    }
    const flow = exported.flow;
    if (flow) {
      button(
        'nb2pipe-open-flow',
        'Open flow.py',
        `Open ${flow}`,
        () => this.panel.host.openFile(flow),
        box
      );
    }
    Notification.success(`Exported ${this.panel.path} to ${exported.output}`, {
      autoClose: 8000,
      actions: flow
        ? [
            {
              label: 'Open flow.py',
              callback: () => this.panel.host.openFile(flow)
            }
          ]
        : []
    });
  }

  /** Files edited by hand since the last export: Overwrite, or see what would change. */
  private conflict(edited: string[], message: string): void {
    this.panel.say(
      `Nothing was exported: ${plural(edited.length, 'file')} changed by hand.`,
      'error'
    );
    const box = html('div', 'nb2pipe-conflict', undefined, this.panel.result);
    html(
      'p',
      'nb2pipe-conflict-text',
      `${edited.join(', ')} ${edited.length === 1 ? 'was' : 'were'} changed by hand since ` +
        'the last export. Export would overwrite the changes; move them into the notebook ' +
        'to keep them.',
      box
    );
    box.title = message;
    const choices = html('div', 'nb2pipe-conflict-actions', undefined, box);
    button(
      'jp-mod-warn nb2pipe-overwrite',
      'Overwrite',
      'Export anyway, replacing the edited files',
      () => void this.export(true),
      choices
    );
    button(
      'nb2pipe-show-diff',
      'Show diff',
      'What Export would change in each file',
      () => void this.showDiff(box),
      choices
    );
  }

  private async showDiff(box: HTMLElement): Promise<void> {
    box.querySelector('.nb2pipe-diffs')?.remove();
    try {
      const diff = await exportDiff(this.panel.path, this.output());
      const list = html('div', 'nb2pipe-diffs', undefined, box);
      if (diff.message) {
        html('p', 'nb2pipe-export-error', diff.message, list);
      }
      for (const file of diff.files) {
        const item = html('details', 'nb2pipe-diff', undefined, list);
        item.open = diff.files.length <= 3;
        html('summary', '', file.path, item);
        const pre = html('pre', 'nb2pipe-diff-text', undefined, item);
        for (const line of file.diff.split('\n')) {
          const kind =
            line.startsWith('+++') || line.startsWith('---')
              ? 'file'
              : line.startsWith('+')
                ? 'add'
                : line.startsWith('-')
                  ? 'remove'
                  : line.startsWith('@@')
                    ? 'hunk'
                    : 'same';
          html('span', `nb2pipe-diff-${kind}`, `${line}\n`, pre);
        }
      }
      if (!diff.files.length && !diff.message) {
        html('p', 'nb2pipe-none', 'No file would change.', list);
      }
    } catch (error) {
      this.panel.say(`Cannot show the diff: ${messageOf(error)}`, 'error');
    }
  }
}
