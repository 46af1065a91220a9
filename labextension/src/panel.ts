/**
 * The Export to Pipeline panel, docked beside the notebook so that clicking a step or a
 * diagnostic shows its cell: steps, the drawn graph, diagnostics, output folder, Export, Run.
 */

import { Notification } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { Widget } from '@lumino/widgets';

import {
  analyzeFile,
  ApiError,
  exportPipeline,
  runStatus,
  startRun
} from './api';
import { drawGraph, showStates } from './graph';
import {
  exportBlocked,
  plural,
  seconds,
  stepColor,
  summary,
  where
} from './present';
import type {
  Analysis,
  Diagnostic,
  ExportResult,
  RunStatus,
  StepState
} from './types';

const POLL_MS = 1000;

/** What the panel needs from the application. */
export interface PanelHost {
  /** Select (and show) a 1-based cell of the notebook, opening it if needed. */
  selectCell(path: string, cell: number): Promise<void>;
  /** Save the notebook when it is open with unsaved changes. */
  saveIfDirty(path: string): Promise<void>;
  /** Let the user pick an existing folder; undefined when cancelled. */
  pickFolder(): Promise<string | undefined>;
  openFile(path: string): void;
}

function html<K extends keyof HTMLElementTagNameMap>(
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

function find<T extends HTMLElement>(root: HTMLElement, selector: string): T {
  const node = root.querySelector<T>(selector);
  if (!node) {
    throw new Error(`the panel has no ${selector}`);
  }
  return node;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class PipelinePanel extends Widget {
  private analysis: Analysis | null = null;
  private graph: SVGSVGElement | null = null;
  private runTimer: number | undefined;
  private readonly output: HTMLInputElement;
  private readonly body: HTMLElement;
  private readonly status: HTMLElement;
  private outputEdited = false;

  constructor(
    readonly path: string,
    private readonly host: PanelHost
  ) {
    super();
    this.id = `nb2pipe-panel-${path.replace(/[^A-Za-z0-9_-]/g, '-')}`;
    this.title.label = `Pipeline: ${PathExt.basename(path)}`;
    this.title.caption = `Export to Pipeline: ${path}`;
    this.title.closable = true;
    this.addClass('nb2pipe-panel');

    const header = html('header', 'nb2pipe-header', undefined, this.node);
    html('h2', 'nb2pipe-title', 'Export to Pipeline', header);
    html('div', 'nb2pipe-path', path, header);
    this.status = html('div', 'nb2pipe-summary', 'Analyzing…', header);
    const refresh = html(
      'button',
      'jp-mod-styled nb2pipe-refresh',
      'Analyze again',
      header
    );
    refresh.addEventListener('click', () => void this.refresh());

    this.body = html('div', 'nb2pipe-body', undefined, this.node);

    const footer = html('footer', 'nb2pipe-footer', undefined, this.node);
    const folder = html(
      'label',
      'nb2pipe-output-label',
      'Output folder',
      footer
    );
    this.output = html(
      'input',
      'jp-mod-styled nb2pipe-output',
      undefined,
      folder
    );
    this.output.addEventListener('input', () => (this.outputEdited = true));
    const choose = html(
      'button',
      'jp-mod-styled nb2pipe-choose',
      'Choose…',
      footer
    );
    choose.addEventListener('click', () => void this.choose());
    const exportButton = html(
      'button',
      'jp-mod-styled jp-mod-accept nb2pipe-export',
      'Export',
      footer
    );
    exportButton.addEventListener('click', () => void this.export());
    const run = html(
      'button',
      'jp-mod-styled nb2pipe-run',
      'Run pipeline',
      footer
    );
    run.addEventListener('click', () => void this.run());
    html('div', 'nb2pipe-blocked', '', footer);
    html('div', 'nb2pipe-export-result', '', footer);
    html('div', 'nb2pipe-run-state', '', footer);
    html('pre', 'nb2pipe-run-log', '', footer);
  }

  private part<T extends HTMLElement>(selector: string): T {
    return find<T>(this.node, selector);
  }

  /** Saves pending edits, analyzes the file and draws the result. */
  async refresh(): Promise<void> {
    this.status.textContent = 'Analyzing…';
    this.node.classList.remove('nb2pipe-mod-ready');
    try {
      await this.host.saveIfDirty(this.path);
      this.display(await analyzeFile(this.path));
    } catch (error) {
      this.analysis = null;
      this.body.replaceChildren();
      this.status.textContent = `Cannot analyze ${this.path}: ${messageOf(error)}`;
      this.status.classList.add('nb2pipe-mod-error');
      this.setBlocked(messageOf(error));
    }
  }

  private display(analysis: Analysis): void {
    this.analysis = analysis;
    this.status.textContent = summary(analysis);
    this.status.classList.toggle('nb2pipe-mod-error', !analysis.ok);
    if (!this.outputEdited) {
      this.output.value = analysis.default_output;
    }
    this.body.replaceChildren(
      this.stepsSection(analysis),
      this.graphSection(analysis)
    );
    this.body.appendChild(this.diagnosticsSection(analysis.check.diagnostics));
    this.setBlocked(exportBlocked(analysis));
    this.node.classList.add('nb2pipe-mod-ready');
  }

  private setBlocked(reason: string | null): void {
    this.part<HTMLButtonElement>('.nb2pipe-export').disabled = reason !== null;
    this.part<HTMLButtonElement>('.nb2pipe-run').disabled = reason !== null;
    this.part('.nb2pipe-blocked').textContent = reason ?? '';
  }

  private stepsSection(analysis: Analysis): HTMLElement {
    const section = html('section', 'nb2pipe-section');
    html('h3', '', `Steps (${analysis.check.steps.length})`, section);
    const list = html('ol', 'nb2pipe-steps', undefined, section);
    analysis.check.steps.forEach((step, index) => {
      const item = html('li', 'nb2pipe-step', undefined, list);
      item.dataset.step = step.name;
      item.tabIndex = 0;
      item.title = 'Select the first cell of this step';
      const swatch = html('span', 'nb2pipe-swatch', undefined, item);
      swatch.style.background = stepColor(index);
      html('span', 'nb2pipe-step-name', step.name, item);
      const cells = step.cells.length === 1 ? 'cell' : 'cells';
      html(
        'span',
        'nb2pipe-step-cells',
        `${cells} ${step.cells.join(', ')}`,
        item
      );
      html('span', 'nb2pipe-step-state', '', item);
      const node = analysis.layout.nodes.find(n => n.name === step.name);
      const cell = node?.first_cell ?? step.cells[0];
      item.addEventListener(
        'click',
        () => void this.host.selectCell(this.path, cell)
      );
    });
    return section;
  }

  private graphSection(analysis: Analysis): HTMLElement {
    const section = html('section', 'nb2pipe-section');
    html('h3', '', 'Dependency graph', section);
    const frame = html('div', 'nb2pipe-graph-frame', undefined, section);
    this.graph = drawGraph(analysis.layout, {
      onStep: name => {
        const node = analysis.layout.nodes.find(n => n.name === name);
        if (node) {
          void this.host.selectCell(this.path, node.first_cell);
        }
      }
    });
    frame.appendChild(this.graph);
    return section;
  }

  private diagnosticsSection(diagnostics: readonly Diagnostic[]): HTMLElement {
    const section = html('section', 'nb2pipe-section');
    html('h3', '', `Diagnostics (${diagnostics.length})`, section);
    if (!diagnostics.length) {
      html('p', 'nb2pipe-none', 'No problems found.', section);
      return section;
    }
    const list = html('ul', 'nb2pipe-diagnostics', undefined, section);
    for (const d of diagnostics) {
      const item = html(
        'li',
        `nb2pipe-diagnostic nb2pipe-mod-${d.severity}`,
        undefined,
        list
      );
      item.dataset.code = d.code;
      const head = html('div', 'nb2pipe-diagnostic-head', undefined, item);
      html('span', 'nb2pipe-code', `${d.code} ${d.severity}`, head);
      html('span', 'nb2pipe-where', where(d), head);
      html('div', 'nb2pipe-message', d.message, item);
      if (d.hint) {
        html('div', 'nb2pipe-hint', `hint: ${d.hint}`, item);
      }
      if (d.cell !== null) {
        const cell = d.cell;
        item.dataset.cell = String(cell);
        item.tabIndex = 0;
        item.title = `Select cell ${cell}`;
        item.addEventListener(
          'click',
          () => void this.host.selectCell(this.path, cell)
        );
      }
    }
    return section;
  }

  private async choose(): Promise<void> {
    const folder = await this.host.pickFolder();
    if (folder !== undefined) {
      this.output.value = folder;
      this.outputEdited = true;
    }
  }

  private async export(): Promise<void> {
    const result = this.part('.nb2pipe-export-result');
    result.textContent = 'Exporting…';
    result.classList.remove('nb2pipe-mod-error');
    await this.refresh();
    if (!this.analysis?.ok) {
      result.textContent = '';
      return;
    }
    try {
      this.exported(await exportPipeline(this.path, this.output.value.trim()));
    } catch (error) {
      const message = messageOf(error);
      result.textContent = `Nothing was exported: ${message}`;
      result.classList.add('nb2pipe-mod-error');
      if (error instanceof ApiError) {
        Notification.error(`Export to Pipeline failed: ${message}`, {
          autoClose: false
        });
      }
    }
  }

  private exported(exported: ExportResult): void {
    const result = this.part('.nb2pipe-export-result');
    const changed = exported.written.length;
    result.replaceChildren();
    html(
      'div',
      'nb2pipe-export-summary',
      `Exported to ${exported.output}: ${plural(changed, 'file')} written, ` +
        `${exported.unchanged.length} unchanged.`,
      result
    );
    const list = html('ul', 'nb2pipe-written', undefined, result);
    for (const file of exported.written) {
      html('li', '', file, list);
    }
    const flow = exported.flow;
    Notification.success(`Exported ${this.path} to ${exported.output}`, {
      autoClose: 8000,
      actions: flow
        ? [{ label: 'Open flow.py', callback: () => this.host.openFile(flow) }]
        : []
    });
  }

  private async run(): Promise<void> {
    const button = this.part<HTMLButtonElement>('.nb2pipe-run');
    const state = this.part('.nb2pipe-run-state');
    button.disabled = true;
    this.showRun(null);
    state.textContent = 'Run: starting';
    try {
      await this.refresh();
      const { id } = await startRun(this.path);
      await this.follow(id);
    } catch (error) {
      state.textContent = `Run: failed: ${messageOf(error)}`;
      state.dataset.state = 'failed';
    } finally {
      button.disabled = !this.analysis?.ok;
    }
  }

  private follow(id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const poll = async (): Promise<void> => {
        try {
          const status = await runStatus(id);
          this.showRun(status);
          if (status.state === 'completed' || status.state === 'failed') {
            resolve();
            return;
          }
          this.runTimer = window.setTimeout(() => void poll(), POLL_MS);
        } catch (error) {
          reject(error);
        }
      };
      void poll();
    });
  }

  /** Per-step status in the list and the graph, the run's state and its log. */
  private showRun(status: RunStatus | null): void {
    const states: Record<string, StepState | undefined> = {};
    this.node.querySelectorAll<HTMLElement>('.nb2pipe-step').forEach(item => {
      const step = status?.steps[item.dataset.step ?? ''];
      states[item.dataset.step ?? ''] = step?.state;
      const label = find(item, '.nb2pipe-step-state');
      label.textContent = step
        ? `${step.state}${step.duration !== null ? ` (${seconds(step.duration)})` : ''}`
        : '';
      label.title = step?.error ?? '';
      item.dataset.state = step?.state ?? '';
    });
    if (this.graph) {
      showStates(this.graph, states);
    }
    const state = this.part('.nb2pipe-run-state');
    state.textContent = status
      ? `Run: ${status.state}${status.error ? `: ${status.error}` : ''}`
      : '';
    state.dataset.state = status?.state ?? '';
    this.part('.nb2pipe-run-log').textContent = status
      ? status.log.join('\n')
      : '';
  }

  dispose(): void {
    window.clearTimeout(this.runTimer);
    super.dispose();
  }
}
