/**
 * nb2pipe for JupyterLab: the pipeline panel (file browser, notebook menu and toolbar,
 * command palette) and the step editor. All analysis happens in Python behind /nb2pipe/.
 */

import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  IFrame,
  MainAreaWidget,
  showErrorMessage,
  ToolbarButton
} from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Menu } from '@lumino/widgets';

import { fetchGrammar } from './api';
import { cellTags, setCellTags, StepBadges } from './editor';
import { PipelinePanel, PanelHost } from './panel';
import { addStepEditorCommands, EDITOR_COMMANDS } from './stepEditor';
import type { Analysis, Grammar } from './types';

const COMMANDS = {
  export: 'nb2pipe:export',
  exportSelected: 'nb2pipe:export-selected',
  ...EDITOR_COMMANDS
};
const CATEGORY = 'Pipeline (nb2pipe)';
const NOTEBOOK_FILE = '.jp-DirListing-item[data-file-type="notebook"]';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nb2pipe:plugin',
  description:
    'Export a tagged notebook to a Prefect pipeline; edit its steps; run it.',
  autoStart: true,
  requires: [IDocumentManager, IFileBrowserFactory, INotebookTracker],
  optional: [ICommandPalette, ILabShell],
  activate
};

function activate(
  app: JupyterFrontEnd,
  docManager: IDocumentManager,
  browsers: IFileBrowserFactory,
  notebooks: INotebookTracker,
  palette: ICommandPalette | null
): void {
  const { commands } = app;
  let grammarRequest: Promise<Grammar> | null = null;
  const grammar = (): Promise<Grammar> => {
    grammarRequest ??= fetchGrammar().catch(error => {
      grammarRequest = null;
      throw error;
    });
    return grammarRequest;
  };
  const panels = new Map<string, PipelinePanel>();
  const badges = new WeakMap<NotebookPanel, StepBadges>();
  const listeners = new Map<string, Set<(analysis: Analysis | null) => void>>();

  const notebookAt = (path: string): NotebookPanel | undefined =>
    notebooks.find(panel => panel.context.path === path);
  const badgesAt = (path: string): StepBadges | undefined => {
    const panel = notebookAt(path);
    return panel ? badges.get(panel) : undefined;
  };

  /** The notebook open in an editor, opened beside the pipeline panel if it is not. */
  const openNotebook = async (
    path: string
  ): Promise<NotebookPanel | undefined> => {
    let panel = notebookAt(path);
    if (!panel) {
      const ref = panels.get(path)?.id;
      const opened = docManager.openOrReveal(path, undefined, undefined, {
        ref,
        mode: 'split-left'
      });
      panel = opened instanceof NotebookPanel ? opened : notebookAt(path);
    }
    if (panel) {
      await panel.context.ready;
      await panel.revealed;
    }
    return panel;
  };

  let reportTab: MainAreaWidget<IFrame> | null = null;
  const host: PanelHost = {
    async selectCell(path, cell, line) {
      const panel = await openNotebook(path);
      if (!panel) {
        return;
      }
      const notebook = panel.content;
      const index = cell - 1;
      if (index < 0 || index >= notebook.widgets.length) {
        return;
      }
      app.shell.activateById(panel.id);
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
    },
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
      return notebookAt(path)?.context.model.dirty ?? false;
    },
    async save(path) {
      await notebookAt(path)?.context.save();
    },
    async applyTags(path, cells) {
      const panel = await openNotebook(path);
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
      badges.get(panel)?.schedule(0);
      return changed;
    },
    async editStepOptions(path, step) {
      const panel = await openNotebook(path);
      const stepBadges = panel ? badges.get(panel) : undefined;
      if (!panel || !stepBadges) {
        return;
      }
      await editOptions(panel, stepBadges, step);
    },
    async showNotebook(path) {
      const panel = await openNotebook(path);
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
    openReport(url, title) {
      if (!reportTab || reportTab.isDisposed) {
        // The report is the notebook's own output: no scripts, no rights of this page.
        const frame = new IFrame({ sandbox: [] });
        reportTab = new MainAreaWidget({ content: frame });
        reportTab.id = 'nb2pipe-report';
        reportTab.addClass('nb2pipe-report-tab');
        app.shell.add(reportTab, 'main', { mode: 'split-right' });
      }
      reportTab.title.label = title;
      reportTab.title.closable = true;
      reportTab.content.url = url;
      app.shell.activateById(reportTab.id);
    }
  };

  /** Selects a line of a code cell, so the failing line stands out. */
  const markLine = (cell: Cell, line: number): void => {
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
  };

  const openPanel = (path: string): PipelinePanel => {
    let panel = panels.get(path);
    if (!panel || panel.isDisposed || !panel.isAttached) {
      panel?.dispose();
      panel = new PipelinePanel(path, host);
      panels.set(path, panel);
      const ref = notebookAt(path)?.id;
      app.shell.add(panel, 'main', {
        mode: ref ? 'split-right' : 'tab-after',
        ref
      });
    }
    app.shell.activateById(panel.id);
    return panel;
  };

  commands.addCommand(COMMANDS.export, {
    label: 'Export to Pipeline',
    caption:
      'Show the steps, graph and diagnostics of this notebook; export it as a Prefect project',
    execute: args => {
      const path =
        typeof args.path === 'string'
          ? args.path
          : notebooks.currentWidget?.context.path;
      if (!path) {
        void showErrorMessage(
          'Export to Pipeline',
          'Open or select a notebook first.'
        );
        return;
      }
      openPanel(path);
    },
    isEnabled: args =>
      typeof args.path === 'string' || notebooks.currentWidget !== null
  });

  commands.addCommand(COMMANDS.exportSelected, {
    label: 'Export to Pipeline',
    caption: 'Export the selected notebook as a Prefect pipeline project',
    execute: () => {
      const item = browsers.tracker.currentWidget?.selectedItems().next();
      if (item && !item.done) {
        openPanel(item.value.path);
      }
    }
  });

  const { editOptions } = addStepEditorCommands(
    commands,
    notebooks,
    badges,
    grammar
  );

  // where the commands appear
  const editorCommands = [
    COMMANDS.assignStep,
    COMMANDS.stepOptions,
    COMMANDS.toggleParameters,
    COMMANDS.toggleSkip,
    COMMANDS.addAfter
  ];
  palette?.addItem({ command: COMMANDS.export, category: CATEGORY });
  for (const id of editorCommands) {
    palette?.addItem({ command: id, category: CATEGORY });
  }
  app.contextMenu.addItem({
    command: COMMANDS.exportSelected,
    selector: NOTEBOOK_FILE,
    rank: 3
  });
  const stepMenu = new Menu({ commands });
  stepMenu.title.label = 'Pipeline Step';
  for (const id of editorCommands) {
    stepMenu.addItem({ command: id });
  }
  app.contextMenu.addItem({
    type: 'separator',
    selector: '.jp-Notebook .jp-Cell',
    rank: 30
  });
  app.contextMenu.addItem({
    type: 'submenu',
    submenu: stepMenu,
    selector: '.jp-Notebook .jp-Cell',
    rank: 31
  });
  app.contextMenu.addItem({
    command: COMMANDS.export,
    selector: '.jp-Notebook',
    rank: 32
  });

  notebooks.widgetAdded.connect((_, panel) => {
    const stepBadges = new StepBadges(panel, grammar());
    badges.set(panel, stepBadges);
    stepBadges.analyzed.connect((sender, analysis) => {
      listeners.get(sender.path)?.forEach(listener => listener(analysis));
    });
    const button = new ToolbarButton({
      className: 'nb2pipe-toolbar-export',
      label: 'Export to Pipeline',
      tooltip: 'Export to Pipeline: steps, graph, diagnostics, export and run',
      onClick: () =>
        void commands.execute(COMMANDS.export, { path: panel.context.path })
    });
    panel.toolbar.insertAfter('cellType', 'nb2pipe-export', button);
  });
}

export default plugin;
