/** Pure presentation helpers: what the panel and the badges show for a server document. */

import type {
  Analysis,
  CheckParameter,
  CheckStep,
  ParameterValue,
  RunState,
  RunStatus,
  RunSummary,
  StepOptions,
  StepState
} from './types';

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
  return analysis.steps.find(s => s.name === step)?.first_cell;
}

/** "cell 4, line 2" */
export function where(place: {
  cell: number | null;
  line: number | null;
}): string {
  const parts: string[] = [];
  if (place.cell !== null) {
    parts.push(`cell ${place.cell}`);
  }
  if (place.line !== null) {
    parts.push(`line ${place.line}`);
  }
  return parts.join(', ');
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** One line: "7 steps, 9 edges, 4 parameters; 0 errors, 1 warning" (notes, severity info,
 * are not warnings and are not counted). */
export function summary(analysis: Analysis): string {
  const check = analysis.check;
  const errors = check.diagnostics.filter(d => d.severity === 'error').length;
  const warnings = check.diagnostics.filter(
    d => d.severity === 'warning'
  ).length;
  return (
    `${plural(check.steps.length, 'step')}, ${plural(check.edges.length, 'edge')}, ` +
    `${plural(check.parameters.length, 'parameter')}; ` +
    `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`
  );
}

function errorCount(analysis: Analysis): number {
  return analysis.check.diagnostics.filter(d => d.severity === 'error').length;
}

/** Why Export is unavailable, or null when it is allowed. */
export function exportBlocked(
  analysis: Analysis | null,
  busy: string | null = null
): string | null {
  if (!analysis) {
    return 'The notebook has not been analyzed yet.';
  }
  if (!analysis.ok) {
    return `Export is blocked: the notebook has ${plural(errorCount(analysis), 'error')}. Fix them (select one to see its cell).`;
  }
  return busy;
}

/** Why Run is unavailable, or null when it is allowed. */
export function runBlocked(
  analysis: Analysis | null,
  running: boolean
): string | null {
  if (running) {
    return 'A run of this notebook is in progress: Stop it first.';
  }
  if (!analysis) {
    return 'The notebook has not been analyzed yet.';
  }
  if (!analysis.ok) {
    return `Run is blocked: the notebook has ${plural(errorCount(analysis), 'error')}. Fix them (select one to see its cell).`;
  }
  return null;
}

/** A duration as every view of a run writes it ("0.42 s", "12.3 s", "2 min 5 s"): the
 * run's report follows the same rule (nb2pipe/runtime/report.py `duration_text`). */
export function seconds(duration: number | null): string {
  if (duration === null) {
    return '';
  }
  if (duration >= 90) {
    return `${Math.floor(duration / 60)} min ${Math.round(duration % 60)} s`;
  }
  return `${duration.toFixed(duration < 10 ? 2 : 1)} s`;
}

/** Whole seconds of waiting, as the status line counts them: "7 s", "1 min 5 s". */
export function elapsed(duration: number): string {
  const whole = Math.max(0, Math.floor(duration));
  return whole >= 60
    ? `${Math.floor(whole / 60)} min ${whole % 60} s`
    : `${whole} s`;
}

/** What a run is doing, in words for the status line: never an address (the links below
 * the status open those). */
export function phaseText(run: RunSummary): string {
  if (run.phase === 'flow_run') {
    return 'the flow run has started in Prefect';
  }
  const text = (run.message ?? run.phase ?? 'working')
    .replace(/\s*\bhttps?:\/\/\S+/g, '')
    .replace(/[\s:]+$/, '');
  return text || 'working';
}

/** "3 of 7 steps done; train_forest running", or null before any step has started. */
export function stepProgress(run: RunStatus): string | null {
  const steps = Object.entries(run.steps);
  const started = steps.filter(([, s]) => s.state !== 'pending');
  if (!started.length) {
    return null;
  }
  const done = steps.filter(([, s]) =>
    ['completed', 'cached', 'failed', 'skipped', 'cancelled'].includes(s.state)
  ).length;
  const running = steps
    .filter(([, s]) => s.state === 'running')
    .map(([n]) => n);
  return (
    `${done} of ${plural(steps.length, 'step')} done` +
    (running.length ? `; ${running.join(', ')} running` : '')
  );
}

/** The status line of a run still going, with the time it has waited so far: since the
 * current phase began before any step started (`since`), since the run started after. */
export function runStatusText(
  run: RunStatus,
  since: number,
  now: number
): string {
  const progress = stepProgress(run);
  const waited = elapsed(now - (progress ? run.started : since));
  const why = !progress && run.phase_detail ? `; ${run.phase_detail}` : '';
  return `Run ${run.state}: ${progress ?? phaseText(run)} (${waited}${why})`;
}

const STATES: Record<StepState | RunState, [string, string]> = {
  pending: ['○', 'waiting'],
  starting: ['…', 'starting'],
  running: ['▶', 'running'],
  cached: ['↺', 'cached'],
  completed: ['✓', 'completed'],
  failed: ['✗', 'failed'],
  skipped: ['–', 'skipped'],
  cancelled: ['⊘', 'cancelled']
};

/** A state's icon: the state is never told by colour alone. */
export function stateIcon(state: StepState | RunState): string {
  return STATES[state]?.[0] ?? '?';
}

export function stateText(state: StepState | RunState): string {
  return STATES[state]?.[1] ?? state;
}

/** "✓ completed (1.2 s)" */
export function stateLabel(
  state: StepState | RunState,
  duration: number | null = null
): string {
  const time = duration !== null ? ` (${seconds(duration)})` : '';
  return `${stateIcon(state)} ${stateText(state)}${time}`;
}

export function isFinished(state: RunState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}

/** "retries 2 · timeout 60 s · no cache": a step's options that differ from the defaults. */
export function optionsText(options: StepOptions): string {
  const known = ['retries', 'timeout', 'cache'];
  const parts: string[] = [];
  if (options.retries) {
    parts.push(`retries ${options.retries}`);
  }
  if (options.timeout !== null && options.timeout !== undefined) {
    parts.push(`timeout ${options.timeout} s`);
  }
  if (options.cache === false) {
    parts.push('no cache');
  }
  for (const [name, value] of Object.entries(options).sort()) {
    if (
      !known.includes(name) &&
      value !== null &&
      value !== false &&
      value !== ''
    ) {
      parts.push(value === true ? name : `${name} ${value}`);
    }
  }
  return parts.join(' · ');
}

/** How a parameter is edited in the Run form. */
export type InputKind = 'checkbox' | 'number' | 'text';

export function inputKind(parameter: CheckParameter): InputKind {
  const type = parameter.type.replace(/\s/g, '');
  if (type === 'bool') {
    return 'checkbox';
  }
  if (type === 'int' || type === 'float') {
    return 'number';
  }
  return 'text';
}

/** A parameter's default as the Run form shows it: as the parameters cell writes it (`1.0`
 * stays `1.0`, not `1`), unless it is text (the form takes text as it is, without quotes) or
 * takes more than one line. */
export function defaultText(parameter: CheckParameter): string {
  const source = parameter.source;
  return typeof parameter.default === 'string' ||
    !source ||
    /[\r\n]/.test(source)
    ? valueText(parameter.default)
    : source;
}

/** A default value written the way the Run form (and `-p`/`-y`) takes it back. */
export function valueText(value: ParameterValue): string {
  if (value === null) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'string') {
    return value;
  }
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

/** The values typed in the Run form that differ from the notebook's defaults. */
export function changedParameters(
  parameters: readonly CheckParameter[],
  typed: Record<string, string>
): Record<string, string> {
  const changed: Record<string, string> = {};
  for (const p of parameters) {
    const text = typed[p.name];
    if (text !== undefined && text !== defaultText(p)) {
      changed[p.name] = text;
    }
  }
  return changed;
}

/** "2 min ago", "3 h ago", or a date, for a run history. */
export function ago(
  epochSeconds: number,
  now: number = Date.now() / 1000
): string {
  const elapsed = Math.max(0, now - epochSeconds);
  if (elapsed < 60) {
    return 'just now';
  }
  if (elapsed < 3600) {
    return `${Math.floor(elapsed / 60)} min ago`;
  }
  if (elapsed < 86400) {
    return `${Math.floor(elapsed / 3600)} h ago`;
  }
  return new Date(epochSeconds * 1000).toISOString().slice(0, 10);
}

/** One line of a run history: "✓ completed (3.2 s), 2 min ago; n_estimators=50". */
export function historyLine(run: RunSummary, now?: number): string {
  const parameters = Object.entries(run.parameters)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
  return (
    `${stateLabel(run.state, run.duration)}, ${ago(run.started, now)}` +
    (parameters ? `; ${parameters}` : '')
  );
}

/**
 * Cells an edit moved into a step without being selected: untagged code cells below the
 * selection that now join the step it starts. `before` and `after` are the analyses around
 * the edit; `selected` holds 1-based cell positions.
 */
export function joinedCells(
  before: Analysis,
  after: Analysis,
  selected: readonly number[]
): { step: string; cells: number[] } | null {
  const was = stepsByCell(before);
  const now = stepsByCell(after);
  if (!selected.length) {
    return null;
  }
  const chosen = new Set(selected);
  const last = Math.max(...selected);
  const target = now.get(last)?.name;
  if (target === undefined) {
    return null;
  }
  const cells: number[] = [];
  for (const [cell, step] of [...now.entries()].sort((a, b) => a[0] - b[0])) {
    if (
      cell > last &&
      !chosen.has(cell) &&
      step.name === target &&
      was.get(cell)?.name !== target
    ) {
      cells.push(cell);
    }
  }
  return cells.length ? { step: target, cells } : null;
}

/** "cells 5–9, 12" */
export function cellRanges(cells: readonly number[]): string {
  const sorted = [...cells].sort((a, b) => a - b);
  const ranges: string[] = [];
  let start = sorted[0];
  let end = start;
  for (const cell of [...sorted.slice(1), Number.NaN]) {
    if (cell === end + 1) {
      end = cell;
      continue;
    }
    ranges.push(start === end ? `${start}` : `${start}–${end}`);
    start = end = cell;
  }
  return `${sorted.length === 1 ? 'cell' : 'cells'} ${ranges.join(', ')}`;
}

/** The first line of a step's error (the rest is its failing source line). */
export function errorHead(error: string | null): string {
  return (error ?? '').split('\n')[0];
}
