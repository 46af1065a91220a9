/**
 * What the pipeline panel asks of JupyterLab (host.ts), done with JupyterLab's services: open
 * and select cells, write tags, save, pick a folder, show the report in a main-area tab.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import type { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { cellTags, setCellTags, StepBadges } from './editor';
import type { PanelHost } from './host';
import type { Analysis, SplitTags } from './types';

export interface LabParts {
  app: JupyterFrontEnd;
  docManager: IDocumentManager;
  notebooks: INotebookTracker;
  badges: WeakMap<NotebookPanel, StepBadges>;
  /** The step editor's options dialog. */
  editOptions(
    panel: NotebookPanel,
    stepBadges: StepBadges,
    step: string
  ): Promise<void>;
}

/** Who listens to each notebook's analyses, by path. */
export type Listeners = Map<string, Set<(analysis: Analysis | null) => void>>;

export function notebookAt(
  notebooks: INotebookTracker,
  path: string
): NotebookPanel | undefined {
  return notebooks.find(panel => panel.context.path === path);
}

/** The notebook open in an editor, opened in the main area if it is not. */
export async function openNotebook(
  parts: LabParts,
  path: string
): Promise<NotebookPanel | undefined> {
  let panel = notebookAt(parts.notebooks, path);
  if (!panel) {
    const opened = parts.docManager.openOrReveal(path);
    panel =
      opened instanceof NotebookPanel
        ? opened
        : notebookAt(parts.notebooks, path);
  }
  if (panel) {
    await panel.context.ready;
    await panel.revealed;
  }
  return panel;
}

/** Selects a line of a code cell, so the failing line stands out. */
function markLine(cell: Cell, line: number): void {
  const editor = cell.editor;
  if (!editor) {
    return;
  }
  const row = Math.min(line, editor.lineCount) - 1;
  const text = editor.getLine(row) ?? '';
  editor.setSelection({
    start: { line: row, column: 0 },
    end: { line: row, column: text.length }
  });
  editor.focus();
  cell.node.dataset.nb2pipeMarkedLine = String(line);
}

export function createHost(parts: LabParts, listeners: Listeners): PanelHost {
  const { app, docManager, notebooks, badges } = parts;
  const badgesAt = (path: string): StepBadges | undefined => {
    const panel = notebookAt(notebooks, path);
    return panel ? badges.get(panel) : undefined;
  };
  return {
    selectCell: (path, cell, line) => selectCell(parts, path, cell, line),
    watch(path, listener) {
      const set = listeners.get(path) ?? new Set();
      set.add(listener);
      listeners.set(path, set);
      return () => set.delete(listener);
    },
    analyzeOpen(path) {
      return badgesAt(path)?.refresh();
    },
    content(path) {
      return badgesAt(path)?.content() ?? null;
    },
    isDirty(path) {
      return badgesAt(path)?.unsaved() ?? false;
    },
    async save(path) {
      await notebookAt(notebooks, path)?.context.save();
    },
    applyTags: (path, cells) => applyTags(parts, path, cells),
    async editStepOptions(path, step) {
      const panel = await openNotebook(parts, path);
      const stepBadges = panel ? badges.get(panel) : undefined;
      if (panel && stepBadges) {
        await parts.editOptions(panel, stepBadges, step);
      }
    },
    async showNotebook(path) {
      const panel = await openNotebook(parts, path);
      if (panel) {
        app.shell.activateById(panel.id);
      }
    },
    async pickFolder() {
      const result = await FileDialog.getExistingDirectory({
        manager: docManager,
        title: 'Output folder for the pipeline project'
      });
      return result.button.accept && result.value?.length
        ? result.value[0].path
        : undefined;
    },
    openFile(path) {
      docManager.openOrReveal(path);
    },
    openReport: reportOpener(parts)
  };
}

/** Selects a 1-based cell of the notebook (opening it), and a line of it when given. */
async function selectCell(
  parts: LabParts,
  path: string,
  cell: number,
  line?: number | null
): Promise<void> {
  const panel = await openNotebook(parts, path);
  if (!panel) {
    return;
  }
  const notebook = panel.content;
  const index = cell - 1;
  if (index < 0 || index >= notebook.widgets.length) {
    return;
  }
  parts.app.shell.activateById(panel.id);
  notebook.mode = 'command';
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  await notebook.scrollToItem(index, 'center');
  const target = notebook.widgets[index];
  if (line && target.model.type === 'code') {
    await target.ready;
    markLine(target, line);
    notebook.mode = 'edit';
  }
}

/** Writes tags into the notebook's cells (by cell id, else by number); returns how many
 * cells changed. */
async function applyTags(
  parts: LabParts,
  path: string,
  cells: SplitTags['cells']
): Promise<number> {
  const panel = await openNotebook(parts, path);
  if (!panel) {
    throw new Error(`cannot open ${path}`);
  }
  let changed = 0;
  for (const change of cells) {
    const cell =
      panel.content.widgets.find(c => c.model.id === change.id) ??
      panel.content.widgets[change.cell - 1];
    if (cell && cellTags(cell).join('\n') !== change.tags.join('\n')) {
      setCellTags(cell, change.tags);
      changed++;
    }
  }
  parts.badges.get(panel)?.schedule(0);
  return changed;
}

/** Shows a run's report in one main-area tab, made the first time and reused after. */
function reportOpener(parts: LabParts): PanelHost['openReport'] {
  const { app, notebooks } = parts;
  let reportTab: MainAreaWidget<IFrame> | null = null;
  return (url, title, path) => {
    if (!reportTab || reportTab.isDisposed) {
      // The report is the notebook's own output: no scripts, no rights of this page.
      const frame = new IFrame({ sandbox: [] });
      reportTab = new MainAreaWidget({ content: frame });
      reportTab.id = 'nb2pipe-report';
      reportTab.addClass('nb2pipe-report-tab');
      // a tab beside the notebook's: the main area keeps its width
      app.shell.add(reportTab, 'main', {
        mode: 'tab-after',
        ref: notebookAt(notebooks, path)?.id ?? null
      });
    }
    reportTab.title.label = title;
    reportTab.title.closable = true;
    reportTab.content.url = url;
    app.shell.activateById(reportTab.id);
  };
}
