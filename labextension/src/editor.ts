/**
 * The step editor: a badge with each code cell's step (from the server's analysis of the
 * notebook as edited) and commands that write plain tags into the selected cells' metadata.
 */

import type { Cell } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';

import { analyzeContent } from './api';
import { stepColor, stepsByCell } from './present';
import { hasKind, kindOf } from './tags';
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

/** Keeps the badges of one notebook in step with its content. */
export class StepBadges {
  analysis: Analysis | null = null;
  private timer: number | undefined;
  private generation = 0;

  constructor(
    private readonly panel: NotebookPanel,
    private readonly grammar: Promise<Grammar>
  ) {
    void panel.context.ready.then(() => {
      this.schedule(0);
      panel.context.model.contentChanged.connect(() =>
        this.schedule(DEBOUNCE_MS)
      );
      panel.content.modelContentChanged.connect(() =>
        this.schedule(DEBOUNCE_MS)
      );
    });
    panel.disposed.connect(() => window.clearTimeout(this.timer));
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

  private async update(): Promise<void> {
    if (this.panel.isDisposed) {
      return;
    }
    const generation = ++this.generation;
    const content = this.panel.context.model.toJSON();
    try {
      const analysis = await analyzeContent(
        this.panel.context.path,
        content as object
      );
      if (generation === this.generation && !this.panel.isDisposed) {
        this.analysis = analysis;
        this.render(await this.grammar);
      }
    } catch (error) {
      // a notebook nb2pipe cannot read (another language, no code yet) simply has no badges
      console.debug('nb2pipe: no step badges:', error);
      this.analysis = null;
      this.render(await this.grammar);
    }
  }

  render(grammar: Grammar): void {
    const byCell = this.analysis ? stepsByCell(this.analysis) : new Map();
    this.panel.content.widgets.forEach((cell, index) => {
      const step = byCell.get(index + 1);
      const tags = cellTags(cell);
      const role = ROLES.find(kind =>
        tags.some(t => kindOf(grammar, t) === kind)
      );
      const label = step ? step.name : role;
      let badge = cell.node.querySelector<HTMLElement>(`:scope > .${BADGE}`);
      if (!label || cell.model.type !== 'code') {
        badge?.remove();
        cell.node.classList.remove('nb2pipe-cell-step');
        delete cell.node.dataset.nb2pipeStep;
        return;
      }
      if (!badge) {
        badge = document.createElement('div');
        badge.className = BADGE;
        cell.node.appendChild(badge);
      }
      badge.textContent = label;
      badge.title = step
        ? `pipeline step ${step.name}${hasKind(grammar, tags, 'step') ? '' : ' (untagged: joins the step above)'}`
        : `${label}: not a pipeline step`;
      const color = step ? stepColor(step.index) : 'var(--jp-border-color1)';
      cell.node.style.setProperty('--nb2pipe-step-color', color);
      cell.node.classList.add('nb2pipe-cell-step');
      badge.classList.toggle('nb2pipe-mod-role', !step);
      cell.node.dataset.nb2pipeStep = label;
    });
  }
}
