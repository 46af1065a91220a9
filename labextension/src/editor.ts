/**
 * The step editor: each code cell's step in its header (from the server's analysis of the
 * notebook as edited), and the helpers the commands use to write plain tags into the
 * selected cells' metadata. The analysis is shared with the notebook's pipeline panel.
 */

import type { Cell } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { Signal } from '@lumino/signaling';

import { analyzeContent, errorReply } from './api';
import { applyColors, stepPalette } from './colors';
import { stepsByCell, type CellStep } from './present';
import { kindOf } from './tags';
import type { Analysis, Grammar } from './types';

const DEBOUNCE_MS = 700;
const BADGE = 'nb2pipe-badge';
const ROLES = ['parameters', 'skip', 'library'];

export function cellTags(cell: Cell): string[] {
  const tags = cell.model.getMetadata('tags');
  return Array.isArray(tags)
    ? tags.filter((t): t is string => typeof t === 'string')
    : [];
}

/** Writes the cell's tags through the model (so JupyterLab saves them); nothing else changes. */
export function setCellTags(cell: Cell, tags: readonly string[]): void {
  const before = cellTags(cell);
  if (before.length === tags.length && before.every((t, i) => t === tags[i])) {
    return;
  }
  if (tags.length) {
    cell.model.setMetadata('tags', [...tags]);
  } else {
    cell.model.deleteMetadata('tags');
  }
}

export function selectedCells(panel: NotebookPanel): Cell[] {
  const notebook = panel.content;
  return notebook.widgets.filter(cell => notebook.isSelectedOrActive(cell));
}

type Json = { [key: string]: unknown };

/** The notebook as the analysis needs it: sources and metadata, not outputs or attachments
 * (which can be megabytes). */
export function withoutOutputs(content: Json): Json {
  const cells = Array.isArray(content.cells) ? content.cells : [];
  return {
    ...content,
    cells: cells.map((cell: Json) => {
      const copy: Json = { ...cell };
      delete copy.attachments;
      if (copy.cell_type === 'code') {
        copy.outputs = [];
        copy.execution_count = null;
      }
      return copy;
    })
  };
}

/**
 * What the pipeline is made of, as one string: each cell's kind, code and tags. Two notebooks
 * with the same one give the same pipeline, whatever else differs (the kernel JupyterLab
 * records in the metadata, outputs, execution counts).
 */
export function pipelineSource(content: Json): string {
  const cells = Array.isArray(content.cells) ? content.cells : [];
  return JSON.stringify(
    cells.map((cell: Json) => {
      const source = Array.isArray(cell.source)
        ? cell.source.join('')
        : String(cell.source ?? '');
      const metadata =
        typeof cell.metadata === 'object' && cell.metadata !== null
          ? (cell.metadata as Json)
          : {};
      const tags = Array.isArray(metadata.tags) ? metadata.tags : [];
      return [cell.cell_type, source, tags];
    })
  );
}

/** Keeps the badges of one notebook in step with its content; tells who listens. */
export class StepBadges {
  analysis: Analysis | null = null;
  /** Emitted with each new analysis (null: the notebook cannot be analyzed). */
  readonly analyzed = new Signal<StepBadges, Analysis | null>(this);
  private timer: number | undefined;
  private generation = 0;
  private waiting: ((analysis: Analysis | null) => void)[] = [];
  private grammar: Grammar | null = null;
  private readonly pending = new WeakSet<Cell>();
  /** `pipelineSource` of the file as last loaded or saved. */
  private savedSource: string | null = null;

  /** `onBadge`: a step's badge was clicked (or Enter pressed on it). */
  constructor(
    readonly panel: NotebookPanel,
    grammar: Promise<Grammar>,
    private readonly onBadge?: (step: string) => void
  ) {
    void grammar.then(loaded => {
      this.grammar = loaded;
      this.render();
    });
    void panel.context.ready.then(() => {
      this.savedSource = this.pipelineSource();
      // saved or reverted: the model is the file's again
      panel.context.fileChanged.connect(
        () => (this.savedSource = this.pipelineSource())
      );
      this.schedule(0);
      panel.context.model.contentChanged.connect(() =>
        this.schedule(DEBOUNCE_MS)
      );
      panel.content.modelContentChanged.connect(() =>
        this.schedule(DEBOUNCE_MS)
      );
      panel.context.saveState.connect((_, state) => {
        if (state === 'completed') {
          this.schedule(0);
        }
      });
      panel.context.pathChanged.connect(() => this.schedule(0));
    });
    panel.disposed.connect(() => {
      window.clearTimeout(this.timer);
      Signal.clearData(this);
    });
  }

  get path(): string {
    return this.panel.context.path;
  }

  /** Step names in notebook order, as of the last analysis. */
  get stepNames(): string[] {
    return this.analysis?.check.steps.map(s => s.name) ?? [];
  }

  /** The step of a cell (0-based index in the notebook), as of the last analysis. */
  stepOf(index: number): string | undefined {
    return this.analysis
      ? stepsByCell(this.analysis).get(index + 1)?.name
      : undefined;
  }

  schedule(delay: number): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.update(), delay);
  }

  /** Analyze now; resolves with the analysis of the content as it is at this moment. */
  refresh(): Promise<Analysis | null> {
    const next = new Promise<Analysis | null>(resolve =>
      this.waiting.push(resolve)
    );
    this.schedule(0);
    return next;
  }

  /** The notebook as the editor holds it, ready to send for analysis. */
  content(): Json {
    return withoutOutputs(this.panel.context.model.toJSON() as Json);
  }

  private pipelineSource(): string {
    return pipelineSource(this.panel.context.model.toJSON() as Json);
  }

  /** Whether the cells (what the pipeline is made of) differ from the saved file's. A
   * notebook JupyterLab marks changed only for its kernel's metadata has none. */
  unsaved(): boolean {
    if (!this.panel.context.model.dirty) {
      return false;
    }
    return (
      this.savedSource === null || this.pipelineSource() !== this.savedSource
    );
  }

  private async update(): Promise<void> {
    if (this.panel.isDisposed) {
      return;
    }
    const generation = ++this.generation;
    const waiting = this.waiting.splice(0);
    let analysis: Analysis | null;
    try {
      analysis = await analyzeContent(this.path, this.content());
    } catch (error) {
      if (errorReply(error)?.superseded) {
        this.waiting.push(...waiting); // a newer request answers them
        return;
      }
      // a notebook nb2pipe cannot read (another language, no code yet) simply has no badges
      console.debug('nb2pipe: no step badges:', error);
      analysis = null;
    }
    if (generation !== this.generation || this.panel.isDisposed) {
      this.waiting.push(...waiting);
      return;
    }
    this.analysis = analysis;
    this.render();
    this.analyzed.emit(analysis);
    waiting.forEach(resolve => resolve(analysis));
  }

  /** A step's badge opens the step's options, by mouse and by keyboard. */
  private clickable(badge: HTMLElement): void {
    const open = (event: Event): void => {
      const step = badge.dataset.step;
      if (step && this.onBadge) {
        event.preventDefault();
        event.stopPropagation(); // the cell would take the click as a selection
        this.onBadge(step);
      }
    };
    badge.addEventListener('click', open);
    badge.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        open(event);
      }
    });
  }

  render(): void {
    if (!this.grammar || this.panel.isDisposed) {
      return;
    }
    const byCell = this.analysis ? stepsByCell(this.analysis) : new Map();
    this.panel.content.widgets.forEach((cell, index) =>
      this.renderCell(cell, index, byCell)
    );
  }

  /** One cell's badge. A cell not drawn yet (a placeholder of a long notebook) gets it once
   * it is: one wait per cell, whatever the number of renders meanwhile. */
  private renderCell(
    cell: Cell,
    index: number,
    byCell: Map<number, CellStep>
  ): void {
    const grammar = this.grammar;
    if (!grammar) {
      return;
    }
    if (cell.isPlaceholder()) {
      this.renderWhenDrawn(cell);
      return;
    }
    const header = cell.node.querySelector<HTMLElement>(
      ':scope > .jp-CellHeader'
    );
    const step = byCell.get(index + 1);
    const tags = cellTags(cell);
    const role = ROLES.find(kind =>
      tags.some(t => kindOf(grammar, t) === kind)
    );
    let badge = header?.querySelector<HTMLElement>(`:scope > .${BADGE}`);
    if (!header || (!step && !role) || cell.model.type !== 'code') {
      badge?.remove();
      cell.node.classList.remove('nb2pipe-cell-step');
      delete cell.node.dataset.nb2pipeStep;
      return;
    }
    if (!badge) {
      badge = document.createElement('div');
      badge.className = BADGE;
      header.appendChild(badge);
      this.clickable(badge);
    }
    describeBadge(badge, step, role);
    if (step && this.analysis) {
      const names = this.analysis.check.steps.map(s => s.name);
      applyColors(cell.node, stepPalette(names).colors(step.name));
    }
    cell.node.classList.toggle('nb2pipe-cell-step', Boolean(step));
    cell.node.dataset.nb2pipeStep = step ? step.name : (role ?? '');
  }

  /** Renders a placeholder cell's badge once the cell is drawn. */
  private renderWhenDrawn(cell: Cell): void {
    if (this.pending.has(cell)) {
      return;
    }
    this.pending.add(cell);
    void cell.ready.then(() => {
      this.pending.delete(cell);
      const at = this.panel.content.widgets.indexOf(cell);
      if (at >= 0 && !this.panel.isDisposed) {
        const now = this.analysis ? stepsByCell(this.analysis) : new Map();
        this.renderCell(cell, at, now);
      }
    });
  }
}

/** A badge's text, tooltip and role: the cell's step (where it starts, or a cell that joins
 * it), or the role of a cell that is no step (parameters, skip, library). */
function describeBadge(
  badge: HTMLElement,
  step: CellStep | undefined,
  role: string | undefined
): void {
  const continued = step && !step.first;
  badge.textContent = step
    ? continued
      ? `↳ ${step.name}`
      : `step ${step.name}`
    : (role ?? '');
  badge.title = step
    ? continued
      ? `part of step ${step.name}: a cell with no step tag joins the step above it. ` +
        "Click for the step's options"
      : `pipeline step ${step.name} starts here. Click for its options: retries, ` +
        'timeout, cache, resources'
    : `${role}: not a pipeline step`;
  badge.dataset.step = step?.name ?? '';
  if (step) {
    badge.setAttribute('role', 'button');
    badge.tabIndex = 0;
  } else {
    badge.removeAttribute('role');
    badge.removeAttribute('tabindex');
  }
  badge.classList.toggle('nb2pipe-mod-role', !step);
  badge.classList.toggle('nb2pipe-mod-continued', Boolean(continued));
}
