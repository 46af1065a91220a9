/**
 * The parts of the pipeline panel's body, each drawn from a server document: the on-ramp for
 * notebooks without step tags, the Run parameters, the steps, the diagnostics, a run's
 * result and the notebook's run history.
 */

import { applyColors, stepPalette, StepPalette } from './colors';
import { actionable, button, html } from './dom';
import {
  cellRanges,
  defaultText,
  errorHead,
  historyLine,
  inputKind,
  isFinished,
  optionsText,
  plural,
  phaseText,
  stateLabel,
  where
} from './present';
import type {
  Analysis,
  CheckParameter,
  CheckStep,
  Diagnostic,
  Onramp,
  RunStatus,
  RunSummary,
  StepInfo,
  StepStatus
} from './types';

export function section(title: string, className: string): HTMLElement {
  const node = html('section', `nb2pipe-section ${className}`);
  html('h3', 'nb2pipe-section-title', title, node);
  return node;
}

/** A "cell 5, line 2" link that selects the cell and marks the line. */
export function cellLink(
  place: { cell: number | null; line: number | null },
  select: (cell: number, line: number | null) => void
): HTMLElement {
  const text = where(place);
  if (place.cell === null) {
    return html('span', 'nb2pipe-where', text);
  }
  const cell = place.cell;
  const link = html('a', 'nb2pipe-cell-link', text);
  link.href = '#';
  link.title = `Select cell ${cell}${place.line !== null ? ` and mark line ${place.line}` : ''}`;
  link.addEventListener('click', event => {
    event.preventDefault();
    event.stopPropagation();
    select(cell, place.line);
  });
  return link;
}

// --- on-ramp --------------------------------------------------------------------------

export interface OnrampActions {
  split(mode: 'headings' | 'cells'): void;
  byHand(): void;
}

export function onrampSection(onramp: Onramp, act: OnrampActions): HTMLElement {
  const node = section('No steps yet', 'nb2pipe-onramp');
  html(
    'p',
    'nb2pipe-onramp-text',
    'No cell of this notebook has a step tag, so the whole notebook is one step. ' +
      'Split it into steps (this writes step: tags into the notebook; save it to keep them):',
    node
  );
  const choices = html('div', 'nb2pipe-onramp-choices', undefined, node);
  const headings = onramp.headings.length;
  const byHeadings = button(
    'nb2pipe-split-headings',
    `By headings → ${plural(headings, 'step')}`,
    `One step per markdown H1/H2 section: ${onramp.headings.join(', ')}`,
    () => act.split('headings'),
    choices
  );
  if (headings < 2) {
    byHeadings.disabled = true;
    byHeadings.title = 'No markdown H1/H2 heading divides the code cells';
  }
  button(
    'nb2pipe-split-cells',
    `By cells → ${plural(onramp.cells.length, 'step')}`,
    'One step per code cell',
    () => act.split('cells'),
    choices
  );
  button(
    'nb2pipe-split-hand',
    'Tag by hand',
    'Select cells in the notebook, then right-click → Pipeline Step → Assign Cells to Step…',
    () => act.byHand(),
    choices
  );
  if (headings >= 2) {
    html(
      'p',
      'nb2pipe-onramp-preview',
      `By headings: ${onramp.headings.join(' → ')}`,
      node
    );
  }
  return node;
}

// --- parameters ---------------------------------------------------------------------

export interface ParameterForm {
  /** The text typed for each parameter the user changed (the others keep their default). */
  typed: Record<string, string>;
  /** A message under a parameter the server refused. */
  errors: Record<string, string>;
}

export function parametersSection(
  parameters: readonly CheckParameter[],
  form: ParameterForm,
  open: boolean,
  onToggle: (open: boolean) => void
): HTMLElement {
  const node = html('details', 'nb2pipe-section nb2pipe-parameters');
  node.open = open || Object.values(form.errors).some(Boolean);
  node.addEventListener('toggle', () => onToggle(node.open));
  html(
    'summary',
    'nb2pipe-section-title',
    `Run parameters (${parameters.length})`,
    node
  );
  const list = html('div', 'nb2pipe-parameter-list', undefined, node);
  for (const parameter of parameters) {
    parameterRow(parameter, form, list);
  }
  if (!parameters.length) {
    html(
      'p',
      'nb2pipe-none',
      'The notebook has no parameters cell (a cell tagged parameters).',
      list
    );
  }
  return node;
}

/** A parameter's label and field (a checkbox for a bool), holding what was typed, and the
 * server's message when it refused the value. */
function parameterRow(
  parameter: CheckParameter,
  form: ParameterForm,
  list: HTMLElement
): void {
  const row = html('div', 'nb2pipe-parameter', undefined, list);
  row.dataset.parameter = parameter.name;
  const id = `nb2pipe-parameter-${parameter.name}-${Math.random().toString(36).slice(2, 8)}`;
  const label = html('label', 'nb2pipe-parameter-name', undefined, row);
  label.htmlFor = id;
  html('span', 'nb2pipe-parameter-label', parameter.name, label);
  html('span', 'nb2pipe-parameter-type', parameter.type, label);
  const input = html(
    'input',
    'jp-mod-styled nb2pipe-parameter-input',
    undefined,
    row
  );
  input.id = id;
  const text = form.typed[parameter.name] ?? defaultText(parameter);
  const kind = inputKind(parameter);
  if (kind === 'checkbox') {
    input.type = 'checkbox';
    input.checked = text === 'True';
    input.addEventListener('change', () => {
      form.typed[parameter.name] = input.checked ? 'True' : 'False';
    });
  } else {
    input.type = 'text';
    input.value = text;
    input.spellcheck = false;
    if (kind === 'number') {
      input.inputMode = 'decimal';
    }
    input.addEventListener('input', () => {
      form.typed[parameter.name] = input.value;
      form.errors[parameter.name] = '';
      row.classList.remove('nb2pipe-mod-invalid');
      input.removeAttribute('aria-invalid');
    });
  }
  input.title = `default: ${defaultText(parameter)}`;
  const problem = form.errors[parameter.name];
  if (problem) {
    row.classList.add('nb2pipe-mod-invalid');
    input.setAttribute('aria-invalid', 'true');
    const message = html('div', 'nb2pipe-parameter-error', problem, row);
    message.id = `${id}-error`;
    input.setAttribute('aria-describedby', message.id);
  }
}

// --- steps ---------------------------------------------------------------------------

export interface StepActions {
  select(cell: number, line: number | null): void;
  options(step: string): void;
  /** Opens the run's report at the step's section; absent when the run has no report. */
  report?: (step: string) => void;
}

export function stepsSection(
  analysis: Analysis,
  statuses: Record<string, StepStatus> | null,
  act: StepActions
): HTMLElement {
  const node = section(
    `Steps (${analysis.check.steps.length})`,
    'nb2pipe-steps-section'
  );
  const list = html('ol', 'nb2pipe-steps', undefined, node);
  const palette = stepPalette(analysis.check.steps.map(s => s.name));
  for (const step of analysis.check.steps) {
    const info = analysis.steps.find(s => s.name === step.name);
    stepItem(step, info, statuses?.[step.name], palette, act, list);
  }
  return node;
}

/** A step's row: its colour, name, cells and options, its run state and its options button;
 * the row selects the step's first cell. */
function stepItem(
  step: CheckStep,
  info: StepInfo | undefined,
  status: StepStatus | undefined,
  palette: StepPalette,
  act: StepActions,
  list: HTMLElement
): void {
  const first = info?.first_cell ?? step.cells[0];
  const item = html('li', 'nb2pipe-step', undefined, list);
  item.dataset.step = step.name;
  actionable(item, `Select cell ${first}, where step ${step.name} starts`, () =>
    act.select(first, null)
  );
  const swatch = html('span', 'nb2pipe-swatch', undefined, item);
  applyColors(swatch, palette.colors(step.name));
  html('span', 'nb2pipe-step-name', step.name, item);
  html(
    'span',
    'nb2pipe-step-cells',
    step.cells.length ? cellRanges(step.cells) : 'no cells',
    item
  );
  const options = info ? optionsText(info.options) : '';
  html('span', 'nb2pipe-step-options', options, item);
  stepState(step.name, status, act.report, item);
  const settings = button(
    'nb2pipe-step-settings',
    '⚙',
    `Options of step ${step.name}: retries, timeout, cache, resources`,
    () => act.options(step.name),
    item
  );
  settings.setAttribute('aria-label', `Options of step ${step.name}`);
  item.dataset.state = status?.state ?? '';
}

/** A step's state in the latest run: a link to its section of the run's report when there is
 * one; a failed step's error as its tooltip. */
function stepState(
  name: string,
  status: StepStatus | undefined,
  report: StepActions['report'],
  item: HTMLElement
): void {
  const state = html(
    'span',
    'nb2pipe-step-state',
    status ? stateLabel(status.state, status.duration) : '',
    item
  );
  if (status && report) {
    state.classList.add('nb2pipe-step-report-link');
    state.tabIndex = 0;
    state.setAttribute('role', 'link');
    state.title = `Open step ${name} in the run's report`;
    const open = (event: Event): void => {
      event.preventDefault();
      event.stopPropagation(); // the row itself selects the step's cell
      report(name);
    };
    state.addEventListener('click', open);
    state.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        open(event);
      }
    });
  }
  if (status?.state === 'failed' && status.error) {
    state.title = status.error;
  }
}

// --- diagnostics ---------------------------------------------------------------------

export function diagnosticsSection(
  diagnostics: readonly Diagnostic[],
  select: (cell: number, line: number | null) => void
): HTMLElement {
  const problems = diagnostics.filter(d => d.severity !== 'info');
  const notes = diagnostics.filter(d => d.severity === 'info');
  const node = section(
    `Diagnostics (${problems.length})`,
    'nb2pipe-diagnostics-section'
  );
  if (!problems.length) {
    html('p', 'nb2pipe-none', 'No problems found.', node);
  } else {
    node.appendChild(diagnosticList(problems, select));
  }
  if (notes.length) {
    // information, nothing to fix: out of the count, behind a toggle
    const toggle = html('details', 'nb2pipe-notes', undefined, node);
    html('summary', '', `${plural(notes.length, 'note')}`, toggle);
    toggle.appendChild(diagnosticList(notes, select));
  }
  return node;
}

const SEVERITY_ICONS: Record<Diagnostic['severity'], string> = {
  error: '✗',
  warning: '⚠',
  info: 'ℹ'
};

function diagnosticList(
  diagnostics: readonly Diagnostic[],
  select: (cell: number, line: number | null) => void
): HTMLElement {
  const list = html('ul', 'nb2pipe-diagnostics');
  for (const d of diagnostics) {
    const item = html(
      'li',
      `nb2pipe-diagnostic nb2pipe-mod-${d.severity}`,
      undefined,
      list
    );
    item.dataset.code = d.code;
    const head = html('div', 'nb2pipe-diagnostic-head', undefined, item);
    html(
      'span',
      'nb2pipe-code',
      `${SEVERITY_ICONS[d.severity]} ${d.code} ${d.severity}`,
      head
    );
    html('span', 'nb2pipe-where', where(d), head);
    html('div', 'nb2pipe-message', d.message, item);
    if (d.hint) {
      html('div', 'nb2pipe-hint', `hint: ${d.hint}`, item);
    }
    if (d.cell !== null) {
      const cell = d.cell;
      item.dataset.cell = String(cell);
      actionable(item, `Select cell ${cell}`, () => select(cell, d.line));
    }
  }
  return list;
}

// --- a run's result --------------------------------------------------------------------

/** A run's outcome: state, failed steps with links to their cells, report, full log. The
 * log's toggle keeps its state while the run is polled. */
export class RunView {
  readonly node: HTMLElement;
  private readonly head: HTMLElement;
  private readonly failures: HTMLElement;
  private readonly links: HTMLElement;
  private readonly logToggle: HTMLDetailsElement;
  private readonly log: HTMLElement;

  constructor(
    readonly id: string,
    private readonly select: (cell: number, line: number | null) => void,
    private readonly reportUrl: (id: string) => string,
    private readonly openReport: (id: string) => void
  ) {
    this.node = html('div', 'nb2pipe-run-result');
    this.node.dataset.run = id;
    this.head = html('div', 'nb2pipe-run-head', '', this.node);
    this.failures = html('ul', 'nb2pipe-run-failures', undefined, this.node);
    this.links = html('ul', 'nb2pipe-run-links', undefined, this.node);
    this.logToggle = html(
      'details',
      'nb2pipe-run-log-toggle',
      undefined,
      this.node
    );
    html('summary', '', 'Full log', this.logToggle);
    this.log = html('pre', 'nb2pipe-run-log', '', this.logToggle);
  }

  show(run: RunStatus): void {
    this.node.dataset.state = run.state;
    const started = new Date(run.started * 1000).toLocaleTimeString();
    this.head.textContent =
      `Run of ${started}: ${stateLabel(run.state, run.duration)}` +
      (!isFinished(run.state) ? ` — ${phaseText(run)}` : '');
    this.failures.replaceChildren();
    const failed = Object.entries(run.steps).filter(
      ([, s]) => s.state === 'failed' && s.error
    );
    for (const [name, status] of failed) {
      const item = html('li', 'nb2pipe-run-failure', undefined, this.failures);
      item.dataset.step = name;
      html('span', 'nb2pipe-run-failure-step', `${name}: `, item);
      if (status.cell !== null) {
        item.appendChild(cellLink(status, this.select));
        item.append(' ');
      }
      html(
        'span',
        'nb2pipe-run-failure-error',
        trimLocation(errorHead(status.error)),
        item
      );
      const source = (status.error ?? '')
        .split('\n')
        .slice(1)
        .join('\n')
        .trim();
      if (source) {
        html('pre', 'nb2pipe-run-failure-source', source, item);
      }
    }
    if (!failed.length && run.state === 'failed' && run.error) {
      html('li', 'nb2pipe-run-failure', errorHead(run.error), this.failures);
    }
    // one link a line: they never run together
    this.links.replaceChildren();
    if (run.report) {
      const item = html('li', '', undefined, this.links);
      item.appendChild(
        reportLink(
          run.id,
          'Open the run report',
          this.reportUrl,
          this.openReport
        )
      );
    }
    if (run.flow_run && isWebAddress(run.flow_run)) {
      const item = html('li', '', undefined, this.links);
      const link = html(
        'a',
        'nb2pipe-flow-run-link',
        'Open the flow run in Prefect',
        item
      );
      link.href = run.flow_run;
      link.target = '_blank';
      link.rel = 'noopener';
      link.title = `${run.flow_run} (Prefect's UI, in a browser tab)`;
    }
    this.log.textContent = run.log.join('\n');
    this.logToggle.hidden = !run.log.length;
  }
}

/** Whether a link may lead to `address`: http(s) only, never `javascript:` or `data:`. (The
 * server checks that a flow run's address is the Prefect UI's; this keeps any other scheme
 * out of an href whatever the server sends.) */
export function isWebAddress(address: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(address).protocol);
  } catch {
    return false;
  }
}

/** A link to a run's report that opens it in a JupyterLab tab (its address is the
 * fallback of a middle click or "open in a new tab"). */
function reportLink(
  id: string,
  text: string,
  reportUrl: (id: string) => string,
  openReport: (id: string) => void
): HTMLAnchorElement {
  const link = html('a', 'nb2pipe-report-link', text);
  link.href = reportUrl(id);
  link.title = 'The run report, in a JupyterLab tab';
  link.addEventListener('click', event => {
    event.preventDefault(); // a tab inside JupyterLab, not a browser tab
    event.stopPropagation(); // a history item would show the run instead
    openReport(id);
  });
  return link;
}

/** The step error without its "notebook: cell N, line M (step 'x'): " prefix, which the link
 * already shows. */
export function trimLocation(error: string): string {
  return error.replace(/^.*?: cell \d+, line \d+ \(step '[^']*'\): /, '');
}

// --- run history -------------------------------------------------------------------

export function historySection(
  runs: readonly RunSummary[],
  shown: string | null,
  pick: (id: string) => void,
  reportUrl: (id: string) => string,
  openReport: (id: string) => void
): HTMLElement {
  const node = section(`Run history (${runs.length})`, 'nb2pipe-history');
  if (!runs.length) {
    html('p', 'nb2pipe-none', 'No runs yet.', node);
    return node;
  }
  const list = html('ol', 'nb2pipe-history-list', undefined, node);
  for (const run of runs) {
    const item = html('li', 'nb2pipe-history-item', undefined, list);
    item.dataset.run = run.id;
    item.dataset.state = run.state;
    item.classList.toggle('nb2pipe-mod-shown', run.id === shown);
    actionable(item, 'Show this run', () => pick(run.id));
    html('span', 'nb2pipe-history-line', historyLine(run), item);
    if (run.report) {
      item.appendChild(reportLink(run.id, 'report', reportUrl, openReport));
    }
  }
  return node;
}
