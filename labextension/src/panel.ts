/**
 * One notebook's view in the pipeline sidebar (sidebar.ts): a fixed header (Export, Run,
 * Stop, the output folder and one status line), then the latest action's result, the on-ramp
 * for notebooks without step tags, the Run parameters, the steps, the graph, the diagnostics
 * and the notebook's run history. It follows the notebook's live analysis (so tag edits show
 * at once) and re-attaches to a run still going when it is made again.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { analyzeFile, errorReply, splitTags } from './api';
import { html, messageOf, setDisabled } from './dom';
import { Exporter } from './exporting';
import { GraphView } from './graph';
import { EXPORT_TITLE, panelHeader, RUN_TITLE, STOP_TITLE } from './header';
import type { PanelHost, PanelParts, StatusKind } from './host';
import { exportBlocked, plural, runBlocked, summary } from './present';
import { RunControl } from './running';
import {
  diagnosticsSection,
  onrampSection,
  parametersSection,
  stepsSection
} from './sections';
import type { Analysis } from './types';

export type { PanelHost } from './host';

export class PipelinePanel extends Widget implements PanelParts {
  private analysis: Analysis | null = null;
  private shownAnalysis = '';
  private graph: GraphView | null = null;
  private busy: string | null = null;
  private outputEdited = false;
  private parametersOpen = false;
  private readonly exporter: Exporter;
  private readonly runs: RunControl;
  private readonly unwatch: () => void;
  private readonly exportButton: HTMLButtonElement;
  private readonly runButton: HTMLButtonElement;
  private readonly stopButton: HTMLButtonElement;
  private readonly output: HTMLInputElement;
  private readonly summaryLine: HTMLElement;
  private readonly status: HTMLElement;
  readonly result: HTMLElement;
  private readonly content: HTMLElement;

  constructor(
    readonly path: string,
    readonly host: PanelHost
  ) {
    super();
    this.id = `nb2pipe-panel-${path.replace(/[^A-Za-z0-9_-]/g, '-')}`;
    this.addClass('nb2pipe-panel');
    this.node.dataset.path = path;

    const header = panelHeader(path, this.node, {
      export: () => void this.exporter.export(false),
      run: () => void this.runs.start(this.analysis),
      stop: () => void this.runs.stop(),
      refresh: () => void this.refresh(),
      choose: () => void this.choose(),
      explain: reason => this.say(reason, 'info'),
      outputEdited: () => (this.outputEdited = true)
    });
    this.summaryLine = header.summaryLine;
    this.exportButton = header.exportButton;
    this.runButton = header.runButton;
    this.stopButton = header.stopButton;
    this.output = header.output;
    this.status = header.status;

    const body = html('div', 'nb2pipe-body', undefined, this.node);
    this.result = html('div', 'nb2pipe-result', undefined, body);
    this.result.setAttribute('aria-live', 'polite');
    this.content = html('div', 'nb2pipe-content', undefined, body);
    const historyBox = html('div', 'nb2pipe-history-box', undefined, body);
    this.exporter = new Exporter(this, () => this.output.value.trim());
    this.runs = new RunControl(this, historyBox, {
      changed: () => {
        if (this.runs.run) {
          this.node.dataset.run = this.runs.run.state;
        }
        this.renderSteps();
        this.updateButtons();
      },
      refused: () => {
        this.parametersOpen = true;
        this.renderContent();
      }
    });
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
    void this.runs.loadHistory(true);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.runs.dispose();
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
      this.shownAnalysis = '';
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
    // An edit that changes nothing of the pipeline (JupyterLab recording the kernel, a
    // markdown typo) redraws nothing: the graph keeps its zoom and place under the pointer.
    this.summaryLine.textContent = summary(analysis);
    this.summaryLine.classList.toggle('nb2pipe-mod-error', !analysis.ok);
    const shown = JSON.stringify(analysis);
    if (shown === this.shownAnalysis) {
      return;
    }
    this.shownAnalysis = shown;
    this.analysis = analysis;
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
        this.runs.form,
        this.parametersOpen,
        open => (this.parametersOpen = open)
      )
    );
    parts.push(
      stepsSection(analysis, this.runs.run?.steps ?? null, {
        select,
        options: step => void this.host.editStepOptions(this.path, step),
        report: this.reportOpener()
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
      }
    );
    graphSection.appendChild(this.graph.node);
    parts.push(graphSection);
    parts.push(diagnosticsSection(analysis.check.diagnostics, select));
    this.content.replaceChildren(...parts);
    this.graph.setZoom(zoom); // an edit redraws the graph at the zoom the user chose
    this.showStates();
  }

  private showStates(): void {
    this.graph?.showStates(
      Object.fromEntries(
        Object.entries(this.runs.run?.steps ?? {}).map(([name, s]) => [
          name,
          s.state
        ])
      )
    );
  }

  // --- header -----------------------------------------------------------------------

  private updateButtons(): void {
    const running = this.runs.following !== null;
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
      !running
        ? 'No run of this notebook is in progress.'
        : this.runs.stopping
          ? 'Stopping the run…'
          : null,
      STOP_TITLE
    );
  }

  /** The one status line: what happens now, or what happened last. */
  say(text: string, kind: StatusKind): void {
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

  setBusy(reason: string | null): void {
    this.busy = reason;
    this.updateButtons();
  }

  /** Export and Run read the saved file: offer to save first when the cells (their code,
   * kind or tags: what the pipeline is made of) differ from the file's. */
  async saved(action: string): Promise<boolean> {
    if (!this.host.isDirty(this.path)) {
      return true;
    }
    const answer = await showDialog({
      title: 'Save the notebook?',
      body: `${action} reads the saved notebook, and its cells have unsaved changes.`,
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

  // --- the parts' view of the run ------------------------------------------------------

  /** Opens the report of the run on show at a step, when that run wrote one. */
  private reportOpener(): ((step: string) => void) | undefined {
    const run = this.runs.run;
    return run?.report ? step => this.runs.openReport(run.id, step) : undefined;
  }

  /** The step list and graph states of the run on show, without redrawing the rest. */
  private renderSteps(): void {
    const analysis = this.analysis;
    const old = this.content.querySelector('.nb2pipe-steps-section');
    if (analysis && old) {
      old.replaceWith(
        stepsSection(analysis, this.runs.run?.steps ?? null, {
          select: (cell, line) =>
            void this.host.selectCell(this.path, cell, line),
          options: step => void this.host.editStepOptions(this.path, step),
          report: this.reportOpener()
        })
      );
    }
    this.showStates();
  }
}
