/**
 * The pipeline panel, docked beside the notebook: a fixed header (Export, Run, Stop, the
 * output folder and one status line), then the latest action's result, the on-ramp for
 * notebooks without step tags, the Run parameters, the steps, the graph, the diagnostics
 * and the notebook's run history. It follows the notebook's live analysis (so tag edits show
 * at once) and re-attaches to a run still going when it is opened again.
 */

import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  analyzeFile,
  ApiError,
  cancelRun,
  errorReply,
  exportDiff,
  exportPipeline,
  reportUrl,
  runHistory,
  runStatus,
  splitTags,
  startRun
} from './api';
import { button, html, messageOf, setDisabled } from './dom';
import { GraphView, showStates } from './graph';
import {
  changedParameters,
  errorHead,
  exportBlocked,
  isFinished,
  plural,
  runBlocked,
  stateLabel,
  summary
} from './present';
import {
  diagnosticsSection,
  historySection,
  onrampSection,
  ParameterForm,
  parametersSection,
  RunView,
  stepsSection
} from './sections';
import type {
  Analysis,
  ExportResult,
  RunStatus,
  RunSummary,
  SplitTags
} from './types';

const POLL_MS = 1000;
const EXPORT_TITLE = 'Write the Prefect project into the output folder';
const RUN_TITLE = 'Run the pipeline (nb2pipe run) with the parameters below';
const STOP_TITLE = 'Stop the run and everything it started';

/** What the panel needs from the application. */
export interface PanelHost {
  /** Select (and show) a 1-based cell of the notebook, opening it if needed; with a line,
   * mark that line. */
  selectCell(path: string, cell: number, line?: number | null): Promise<void>;
  /** Calls back with each new analysis of the open notebook's content; returns the
   * function that stops it. */
  watch(
    path: string,
    listener: (analysis: Analysis | null) => void
  ): () => void;
  /** The open notebook's latest analysis, after analyzing it now; undefined when the
   * notebook is not open. */
  analyzeOpen(path: string): Promise<Analysis | null> | undefined;
  /** The open notebook's content for the server (no outputs); null when it is not open. */
  content(path: string): object | null;
  isDirty(path: string): boolean;
  save(path: string): Promise<void>;
  /** Writes tags into the notebook's cells (opening it if needed); returns how many cells
   * changed. */
  applyTags(path: string, cells: SplitTags['cells']): Promise<number>;
  /** Opens the options of a step (the step editor's dialog). */
  editStepOptions(path: string, step: string): Promise<void>;
  showNotebook(path: string): Promise<void>;
  pickFolder(): Promise<string | undefined>;
  openFile(path: string): void;
}

type StatusKind = 'info' | 'busy' | 'success' | 'error';

export class PipelinePanel extends Widget {
  private analysis: Analysis | null = null;
  private graph: GraphView | null = null;
  private run: RunStatus | null = null; // the run on show
  private following: string | null = null; // the active run being polled
  private runView: RunView | null = null;
  private history: RunSummary[] = [];
  private busy: string | null = null;
  private pollTimer: number | undefined;
  private outputEdited = false;
  private parametersOpen = false;
  private readonly form: ParameterForm = { typed: {}, errors: {} };
  private readonly unwatch: () => void;
  private readonly exportButton: HTMLButtonElement;
  private readonly runButton: HTMLButtonElement;
  private readonly stopButton: HTMLButtonElement;
  private readonly output: HTMLInputElement;
  private readonly summaryLine: HTMLElement;
  private readonly status: HTMLElement;
  private readonly result: HTMLElement;
  private readonly content: HTMLElement;
  private readonly historyBox: HTMLElement;

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
    const titleRow = html('div', 'nb2pipe-title-row', undefined, header);
    html('h2', 'nb2pipe-title', PathExt.basename(path), titleRow);
    this.summaryLine = html('span', 'nb2pipe-summary', 'Analyzing…', titleRow);
    const actions = html('div', 'nb2pipe-actions', undefined, header);
    actions.setAttribute('role', 'toolbar');
    actions.setAttribute('aria-label', 'Pipeline actions');
    this.exportButton = button(
      'jp-mod-accept nb2pipe-export',
      'Export',
      EXPORT_TITLE,
      () => void this.export(false),
      actions
    );
    this.runButton = button(
      'nb2pipe-run',
      '▶ Run',
      RUN_TITLE,
      () => void this.start(),
      actions
    );
    this.stopButton = button(
      'nb2pipe-stop',
      '■ Stop',
      STOP_TITLE,
      () => void this.stop(),
      actions
    );
    const refresh = button(
      'nb2pipe-refresh',
      '⟳',
      'Analyze the notebook again',
      () => void this.refresh(),
      actions
    );
    refresh.setAttribute('aria-label', 'Analyze again');
    for (const b of [this.exportButton, this.runButton, this.stopButton]) {
      b.addEventListener('click', () => {
        if (b.dataset.reason) {
          this.say(b.dataset.reason, 'info');
        }
      });
    }
    const folder = html('label', 'nb2pipe-output-label', undefined, header);
    html('span', '', 'Export to', folder);
    this.output = html(
      'input',
      'jp-mod-styled nb2pipe-output',
      undefined,
      folder
    );
    this.output.spellcheck = false;
    this.output.addEventListener('input', () => (this.outputEdited = true));
    button(
      'nb2pipe-choose',
      'Choose…',
      'Pick the output folder',
      () => void this.choose(),
      folder
    );
    this.status = html('div', 'nb2pipe-status', '', header);
    this.status.setAttribute('role', 'status');
    this.status.setAttribute('aria-live', 'polite');

    const body = html('div', 'nb2pipe-body', undefined, this.node);
    this.result = html('div', 'nb2pipe-result', undefined, body);
    this.result.setAttribute('aria-live', 'polite');
    this.content = html('div', 'nb2pipe-content', undefined, body);
    this.historyBox = html('div', 'nb2pipe-history-box', undefined, body);
    this.updateButtons();

    this.unwatch = host.watch(path, analysis => {
      if (analysis) {
        this.display(analysis);
      }
    });
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this.refresh();
    void this.loadHistory(true);
  }

  /** Closing the panel disposes it (it is made anew when opened again); a run goes on. */
  protected onCloseRequest(msg: Message): void {
    super.onCloseRequest(msg);
    this.dispose();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this.pollTimer);
    this.unwatch();
    this.graph?.dispose();
    super.dispose();
  }

  // --- analysis ----------------------------------------------------------------------

  /** Analyzes the notebook: as the editor holds it when open (nothing is saved), else the
   * file. */
  async refresh(): Promise<void> {
    this.summaryLine.textContent = 'Analyzing…';
    try {
      const open = this.host.analyzeOpen(this.path);
      const analysis = open ? await open : await analyzeFile(this.path);
      if (analysis) {
        this.display(analysis);
      } else if (!this.analysis) {
        this.display(await analyzeFile(this.path));
      }
    } catch (error) {
      if (errorReply(error)?.superseded || this.isDisposed) {
        return;
      }
      this.analysis = null;
      this.content.replaceChildren();
      this.summaryLine.textContent = `Cannot analyze ${this.path}`;
      this.say(`Cannot analyze ${this.path}: ${messageOf(error)}`, 'error');
      this.updateButtons();
    }
  }

  private display(analysis: Analysis): void {
    if (this.isDisposed) {
      return;
    }
    this.analysis = analysis;
    this.summaryLine.textContent = summary(analysis);
    this.summaryLine.classList.toggle('nb2pipe-mod-error', !analysis.ok);
    if (!this.outputEdited) {
      this.output.value = analysis.default_output;
    }
    this.renderContent();
    this.updateButtons();
    this.node.classList.add('nb2pipe-mod-ready');
    this.node.dataset.steps = String(analysis.check.steps.length);
  }

  private renderContent(): void {
    const analysis = this.analysis;
    if (!analysis) {
      return;
    }
    const select = (cell: number, line: number | null): void =>
      void this.host.selectCell(this.path, cell, line);
    const parts: HTMLElement[] = [];
    if (analysis.onramp) {
      parts.push(
        onrampSection(analysis.onramp, {
          split: mode => void this.split(mode),
          byHand: () => void this.tagByHand()
        })
      );
    }
    parts.push(
      parametersSection(
        analysis.check.parameters,
        this.form,
        this.parametersOpen,
        open => (this.parametersOpen = open)
      )
    );
    parts.push(
      stepsSection(analysis, this.run?.steps ?? null, {
        select,
        options: step => void this.host.editStepOptions(this.path, step)
      })
    );
    const graphSection = html(
      'section',
      'nb2pipe-section nb2pipe-graph-section'
    );
    html('h3', 'nb2pipe-section-title', 'Dependency graph', graphSection);
    const zoom = this.graph?.zoomLevel ?? 'fit';
    this.graph?.dispose();
    this.graph = new GraphView(
      {
        steps: analysis.check.steps.map(s => s.name),
        edges: analysis.check.edges,
        cycles: analysis.cycle_edges
      },
      {
        onStep: name => {
          const first = analysis.steps.find(s => s.name === name)?.first_cell;
          if (first !== undefined) {
            select(first, null);
          }
        }
      },
      Math.max(this.content.clientWidth - 24, 240)
    );
    this.graph.setZoom(zoom); // an edit redraws the graph at the zoom the user chose
    graphSection.appendChild(this.graph.node);
    parts.push(graphSection);
    parts.push(diagnosticsSection(analysis.check.diagnostics, select));
    this.content.replaceChildren(...parts);
    this.showStates();
  }

  private showStates(): void {
    if (this.graph) {
      const states = Object.fromEntries(
        Object.entries(this.run?.steps ?? {}).map(([name, s]) => [
          name,
          s.state
        ])
      );
      showStates(this.graph.svg, states);
    }
  }

  // --- header -----------------------------------------------------------------------

  private updateButtons(): void {
    const running = this.following !== null;
    setDisabled(
      this.exportButton,
      exportBlocked(this.analysis, this.busy),
      EXPORT_TITLE
    );
    setDisabled(
      this.runButton,
      this.busy ?? runBlocked(this.analysis, running),
      RUN_TITLE
    );
    setDisabled(
      this.stopButton,
      running ? null : 'No run of this notebook is in progress.',
      STOP_TITLE
    );
  }

  /** The one status line: what happens now, or what happened last. */
  private say(text: string, kind: StatusKind): void {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  private async choose(): Promise<void> {
    const folder = await this.host.pickFolder();
    if (folder !== undefined) {
      this.output.value = folder;
      this.outputEdited = true;
    }
  }

  /** Export and Run read the saved file: offer to save unsaved changes first. */
  private async saved(action: string): Promise<boolean> {
    if (!this.host.isDirty(this.path)) {
      return true;
    }
    const answer = await showDialog({
      title: 'Save the notebook?',
      body: `${action} reads the saved notebook, and it has unsaved changes.`,
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: `Save and ${action.toLowerCase()}` })
      ]
    });
    if (!answer.button.accept) {
      return false;
    }
    await this.host.save(this.path);
    return true;
  }

  // --- export ------------------------------------------------------------------------

  private async export(force: boolean): Promise<void> {
    if (!(await this.saved('Export'))) {
      return;
    }
    this.busy = 'Exporting…';
    this.updateButtons();
    this.result.replaceChildren();
    this.say(
      force ? 'Exporting (overwriting edited files)…' : 'Exporting…',
      'busy'
    );
    try {
      this.exported(
        await exportPipeline(this.path, this.output.value.trim(), force)
      );
    } catch (error) {
      const body =
        error instanceof ApiError
          ? (error.body as Partial<ExportResult>)
          : null;
      if (body && Array.isArray(body.edited) && body.edited.length) {
        this.conflict(body.edited, messageOf(error));
      } else {
        this.say(`Nothing was exported: ${messageOf(error)}`, 'error');
        html('p', 'nb2pipe-export-error', messageOf(error), this.result);
      }
    } finally {
      this.busy = null;
      this.updateButtons();
    }
  }

  private exported(exported: ExportResult): void {
    const changed = exported.written.length;
    const text =
      `Exported to ${exported.output}: ${plural(changed, 'file')} written, ` +
      `${exported.unchanged.length} unchanged.`;
    this.say(text, 'success');
    const box = html('div', 'nb2pipe-export-result', undefined, this.result);
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
        () => this.host.openFile(flow),
        box
      );
    }
    Notification.success(`Exported ${this.path} to ${exported.output}`, {
      autoClose: 8000,
      actions: flow
        ? [{ label: 'Open flow.py', callback: () => this.host.openFile(flow) }]
        : []
    });
  }

  /** Files edited by hand since the last export: Overwrite, or see what would change. */
  private conflict(edited: string[], message: string): void {
    this.say(
      `Nothing was exported: ${plural(edited.length, 'file')} changed by hand.`,
      'error'
    );
    const box = html('div', 'nb2pipe-conflict', undefined, this.result);
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
      const diff = await exportDiff(this.path, this.output.value.trim());
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
      this.say(`Cannot show the diff: ${messageOf(error)}`, 'error');
    }
  }

  // --- on-ramp -----------------------------------------------------------------------

  private async split(mode: 'headings' | 'cells'): Promise<void> {
    this.say(`Tagging the notebook's cells by ${mode}…`, 'busy');
    try {
      const tags = await splitTags(
        this.path,
        mode,
        this.host.content(this.path)
      );
      const changed = await this.host.applyTags(this.path, tags.cells);
      this.say(
        `${plural(changed, 'cell')} tagged with a step; save the notebook to keep the tags.`,
        'success'
      );
    } catch (error) {
      this.say(`Cannot tag the cells: ${messageOf(error)}`, 'error');
    }
  }

  private async tagByHand(): Promise<void> {
    await this.host.showNotebook(this.path);
    this.say(
      'Select the cells of a step, then right-click → Pipeline Step → Assign Cells to Step…',
      'info'
    );
  }

  // --- runs --------------------------------------------------------------------------

  private async start(): Promise<void> {
    const analysis = this.analysis;
    if (!analysis || !(await this.saved('Run'))) {
      return;
    }
    this.form.errors = {};
    this.say('Starting the run…', 'busy');
    this.busy = 'Starting the run…';
    this.updateButtons();
    try {
      const changed = changedParameters(
        analysis.check.parameters,
        this.form.typed
      );
      const run = await startRun(this.path, changed);
      this.follow(run);
    } catch (error) {
      const reply = errorReply(error);
      if (reply?.id) {
        this.say('This notebook is already running: showing that run.', 'info');
        this.follow(await runStatus(reply.id));
      } else {
        if (reply?.parameter) {
          this.form.errors[reply.parameter] = reply.message;
          this.parametersOpen = true;
          this.renderContent();
        }
        this.say(`The run did not start: ${messageOf(error)}`, 'error');
      }
    } finally {
      this.busy = null;
      this.updateButtons();
    }
  }

  /** Shows a run and polls it until it ends. */
  private follow(run: RunStatus): void {
    window.clearTimeout(this.pollTimer);
    this.following = isFinished(run.state) ? null : run.id;
    this.showRun(run);
    void this.loadHistory(false);
    if (this.following) {
      this.pollTimer = window.setTimeout(() => void this.poll(run.id), POLL_MS);
    }
  }

  private async poll(id: string): Promise<void> {
    if (this.isDisposed || this.following !== id) {
      return;
    }
    try {
      const run = await runStatus(id);
      if (this.following !== id) {
        return;
      }
      if (!this.run || this.run.id === id) {
        this.showRun(run); // unless the user picked another run from the history
      }
      if (isFinished(run.state)) {
        this.following = null;
        this.updateButtons();
        void this.loadHistory(false);
        return;
      }
    } catch (error) {
      this.say(`Lost track of the run: ${messageOf(error)}`, 'error');
    }
    this.pollTimer = window.setTimeout(() => void this.poll(id), POLL_MS);
  }

  private async stop(): Promise<void> {
    const id = this.following;
    if (!id) {
      return;
    }
    this.say('Stopping the run…', 'busy');
    setDisabled(this.stopButton, 'Stopping…', STOP_TITLE);
    try {
      const run = await cancelRun(id);
      this.following = null;
      window.clearTimeout(this.pollTimer);
      this.showRun(run);
      void this.loadHistory(false);
    } catch (error) {
      this.say(`Cannot stop the run: ${messageOf(error)}`, 'error');
    } finally {
      this.updateButtons();
    }
  }

  private showRun(run: RunStatus): void {
    if (this.isDisposed) {
      return;
    }
    this.run = run;
    if (!this.runView || this.runView.id !== run.id) {
      this.runView = new RunView(
        run.id,
        (cell, line) => void this.host.selectCell(this.path, cell, line),
        reportUrl
      );
      this.result.replaceChildren(this.runView.node);
    }
    this.runView.show(run);
    if (isFinished(run.state)) {
      const kind = run.state === 'completed' ? 'success' : 'error';
      const reason =
        run.state === 'completed' || !run.error
          ? ''
          : `: ${errorHead(run.error)}`;
      this.say(`Run ${stateLabel(run.state, run.duration)}${reason}`, kind);
    } else {
      this.say(
        `Run ${run.state}: ${run.message ?? run.phase ?? 'working'}`,
        'busy'
      );
    }
    this.node.dataset.run = run.state;
    this.renderSteps();
    this.updateButtons();
    this.renderHistory();
  }

  /** The step list and graph states of the run on show, without redrawing the rest. */
  private renderSteps(): void {
    const analysis = this.analysis;
    const old = this.content.querySelector('.nb2pipe-steps-section');
    if (analysis && old) {
      old.replaceWith(
        stepsSection(analysis, this.run?.steps ?? null, {
          select: (cell, line) =>
            void this.host.selectCell(this.path, cell, line),
          options: step => void this.host.editStepOptions(this.path, step)
        })
      );
    }
    this.showStates();
  }

  private async loadHistory(attach: boolean): Promise<void> {
    try {
      const history = await runHistory(this.path);
      this.history = history.runs;
      this.renderHistory();
      if (attach && history.active && !this.following) {
        this.follow(await runStatus(history.active));
        this.say(
          'A run of this notebook is in progress: following it.',
          'busy'
        );
      }
    } catch (error) {
      console.warn('nb2pipe: no run history:', error);
    }
  }

  private renderHistory(): void {
    this.historyBox.replaceChildren(
      historySection(
        this.history,
        this.run?.id ?? null,
        id => void this.pick(id),
        reportUrl
      )
    );
  }

  /** Shows a past run (the active one is followed). */
  private async pick(id: string): Promise<void> {
    try {
      const run = await runStatus(id);
      if (isFinished(run.state)) {
        this.showRun(run);
      } else {
        this.follow(run);
      }
    } catch (error) {
      this.say(`Cannot show the run: ${messageOf(error)}`, 'error');
    }
  }
}
