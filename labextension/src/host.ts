/** What the pipeline panel and its parts need from the application and from each other. */

import type { Analysis, SplitTags } from './types';

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
  /** Whether what the pipeline is made of (the cells' code, kind and tags) differs from the
   * saved file; other changes (JupyterLab records the kernel in the metadata) do not count. */
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
  /** Shows a run's HTML report in a main-area tab of JupyterLab beside the notebook (one
   * tab, reused), at `url`. */
  openReport(url: string, title: string, path: string): void;
}

export type StatusKind = 'info' | 'busy' | 'success' | 'error';

/** What the panel's parts (export, runs) use of the panel. */
export interface PanelParts {
  readonly path: string;
  readonly host: PanelHost;
  /** The latest action's result, replaced by each action. */
  readonly result: HTMLElement;
  /** The one status line. */
  say(text: string, kind: StatusKind): void;
  /** Something is under way (the actions wait), or null when it is done. */
  setBusy(reason: string | null): void;
  /** Offers to save unsaved changes before an action that reads the file. */
  saved(action: string): Promise<boolean>;
}
