/** Pure presentation helpers: what the panel and the badges show for a server document. */

import type { Analysis, CheckStep, Diagnostic } from './types';

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f'
];

/** The colour of the step at `index` in notebook order; the same in badges and the graph. */
export function stepColor(index: number): string {
  return PALETTE[index % PALETTE.length];
}

export interface CellStep {
  name: string;
  index: number;
  first: boolean;
}

/** The step of every code cell the analysis placed in one, by 1-based cell position. */
export function stepsByCell(analysis: Analysis): Map<number, CellStep> {
  const found = new Map<number, CellStep>();
  analysis.check.steps.forEach((step: CheckStep, index: number) => {
    step.cells.forEach((cell, position) => {
      found.set(cell, { name: step.name, index, first: position === 0 });
    });
  });
  return found;
}

/** The cell to select for a step: the one that starts it. */
export function firstCell(
  analysis: Analysis,
  step: string
): number | undefined {
  const node = analysis.layout.nodes.find(n => n.name === step);
  return node?.first_cell;
}

/** "cell 4, line 2" */
export function where(diagnostic: Diagnostic): string {
  const parts: string[] = [];
  if (diagnostic.cell !== null) {
    parts.push(`cell ${diagnostic.cell}`);
  }
  if (diagnostic.line !== null) {
    parts.push(`line ${diagnostic.line}`);
  }
  return parts.join(', ');
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** One line under the title: "7 steps, 9 edges, 4 parameters; 0 errors, 1 warning". */
export function summary(analysis: Analysis): string {
  const check = analysis.check;
  const errors = check.diagnostics.filter(d => d.severity === 'error').length;
  const warnings = check.diagnostics.length - errors;
  return (
    `${plural(check.steps.length, 'step')}, ${plural(check.edges.length, 'edge')}, ` +
    `${plural(check.parameters.length, 'parameter')}; ` +
    `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`
  );
}

/** Why Export is disabled, or null when it is allowed. */
export function exportBlocked(analysis: Analysis): string | null {
  if (analysis.ok) {
    return null;
  }
  const errors = analysis.check.diagnostics.filter(
    d => d.severity === 'error'
  ).length;
  return `Export is blocked: the notebook has ${plural(errors, 'error')}. Fix them (click one to see its cell) and analyze again.`;
}

/** "1.2 s" for a step duration. */
export function seconds(duration: number | null): string {
  return duration === null ? '' : `${duration.toFixed(1)} s`;
}
