/**
 * The fixed header of a notebook's pipeline view (panel.ts): its name and summary, Export,
 * Run, Stop and Analyze again, the output folder, and the one status line.
 */

import { PathExt } from '@jupyterlab/coreutils';

import { button, html } from './dom';

export const EXPORT_TITLE = 'Write the Prefect project into the output folder';
export const RUN_TITLE =
  'Run the pipeline (nb2pipe run) with the parameters below';
export const STOP_TITLE = 'Stop the run and everything it started';

/** What the header's controls do. */
export interface HeaderActions {
  export(): void;
  run(): void;
  stop(): void;
  refresh(): void;
  choose(): void;
  /** A disabled button was clicked: its reason is said in the status line. */
  explain(reason: string): void;
  /** The output folder was typed in. */
  outputEdited(): void;
}

/** The parts of the header the panel updates. */
export interface PanelHeader {
  summaryLine: HTMLElement;
  exportButton: HTMLButtonElement;
  runButton: HTMLButtonElement;
  stopButton: HTMLButtonElement;
  output: HTMLInputElement;
  status: HTMLElement;
}

export function panelHeader(
  path: string,
  parent: HTMLElement,
  actions: HeaderActions
): PanelHeader {
  const header = html('header', 'nb2pipe-header', undefined, parent);
  const titleRow = html('div', 'nb2pipe-title-row', undefined, header);
  const name = html('h2', 'nb2pipe-title', PathExt.basename(path), titleRow);
  name.title = path;
  const summaryLine = html('span', 'nb2pipe-summary', 'Analyzing…', titleRow);
  const buttons = actionButtons(header, actions);
  const output = outputFolder(header, actions);
  const status = html('div', 'nb2pipe-status', '', header);
  status.setAttribute('role', 'status');
  status.setAttribute('aria-live', 'polite');
  return { summaryLine, ...buttons, output, status };
}

/** The toolbar: Export, Run, Stop and Analyze again. */
function actionButtons(
  header: HTMLElement,
  actions: HeaderActions
): Pick<PanelHeader, 'exportButton' | 'runButton' | 'stopButton'> {
  const toolbar = html('div', 'nb2pipe-actions', undefined, header);
  toolbar.setAttribute('role', 'toolbar');
  toolbar.setAttribute('aria-label', 'Pipeline actions');
  const exportButton = button(
    'jp-mod-accept nb2pipe-export',
    'Export',
    EXPORT_TITLE,
    () => actions.export(),
    toolbar
  );
  const runButton = button(
    'nb2pipe-run',
    '▶ Run',
    RUN_TITLE,
    () => actions.run(),
    toolbar
  );
  const stopButton = button(
    'nb2pipe-stop',
    '■ Stop',
    STOP_TITLE,
    () => actions.stop(),
    toolbar
  );
  const refresh = button(
    'nb2pipe-refresh',
    '⟳',
    'Analyze the notebook again',
    () => actions.refresh(),
    toolbar
  );
  refresh.setAttribute('aria-label', 'Analyze again');
  for (const b of [exportButton, runButton, stopButton]) {
    b.addEventListener('click', () => {
      if (b.dataset.reason) {
        actions.explain(b.dataset.reason);
      }
    });
  }
  return { exportButton, runButton, stopButton };
}

/** "Export to" with the output folder's field and Choose…. */
function outputFolder(
  header: HTMLElement,
  actions: HeaderActions
): HTMLInputElement {
  const folder = html('label', 'nb2pipe-output-label', undefined, header);
  html('span', '', 'Export to', folder);
  const output = html(
    'input',
    'jp-mod-styled nb2pipe-output',
    undefined,
    folder
  );
  output.spellcheck = false;
  output.addEventListener('input', () => actions.outputEdited());
  button(
    'nb2pipe-choose',
    'Choose…',
    'Pick the output folder',
    () => actions.choose(),
    folder
  );
  return output;
}
