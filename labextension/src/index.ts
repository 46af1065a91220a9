/**
 * nb2pipe for JupyterLab: Export to Pipeline (file browser, notebook menu and toolbar, command
 * palette) and the step editor. All analysis happens in Python behind /nb2pipe/.
 */

import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  showErrorMessage,
  ToolbarButton
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Menu } from '@lumino/widgets';

import { fetchGrammar } from './api';
import { cellTags, selectedCells, setCellTags, StepBadges } from './editor';
import { PipelinePanel } from './panel';
import { hasKind, nameProblem, toggled, withAfter, withStep } from './tags';
import type { Grammar } from './types';

const COMMANDS = {
  export: 'nb2pipe:export',
  exportSelected: 'nb2pipe:export-selected',
  assignStep: 'nb2pipe:assign-step',
  toggleParameters: 'nb2pipe:toggle-parameters',
  toggleSkip: 'nb2pipe:toggle-skip',
  addAfter: 'nb2pipe:add-after'
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

  const notebookAt = (path: string): NotebookPanel | undefined =>
    notebooks.find(panel => panel.context.path === path);

  const host = {
    async selectCell(path: string, cell: number): Promise<void> {
      let panel = notebookAt(path);
      if (!panel) {
        const ref = panels.get(path)?.id;
        const opened = docManager.openOrReveal(path, undefined, undefined, {
          ref,
          mode: 'split-left'
        });
        panel = opened instanceof NotebookPanel ? opened : notebookAt(path);
      }
      if (!panel) {
        return;
      }
      await panel.context.ready;
      await panel.revealed;
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
    },
    async saveIfDirty(path: string): Promise<void> {
      const panel = notebookAt(path);
      if (panel?.context.model.dirty) {
        await panel.context.save();
      }
    },
    async pickFolder(): Promise<string | undefined> {
      const result = await FileDialog.getExistingDirectory({
        manager: docManager,
        title: 'Output folder for the pipeline project'
      });
      return result.button.accept && result.value?.length
        ? result.value[0].path
        : undefined;
    },
    openFile(path: string): void {
      docManager.openOrReveal(path);
    }
  };

  const openPanel = (path: string): PipelinePanel => {
    let panel = panels.get(path);
    if (!panel || panel.isDisposed) {
      panel = new PipelinePanel(path, host);
      panels.set(path, panel);
      const ref = notebookAt(path)?.id;
      app.shell.add(panel, 'main', {
        mode: ref ? 'split-right' : 'tab-after',
        ref
      });
    }
    app.shell.activateById(panel.id);
    void panel.refresh();
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

  /** The current notebook and its selected cells, for the step editor commands. */
  const selection = () => {
    const panel = notebooks.currentWidget;
    if (!panel) {
      return null;
    }
    return { panel, cells: selectedCells(panel), badges: badges.get(panel) };
  };

  commands.addCommand(COMMANDS.assignStep, {
    label: 'Assign Cells to Step…',
    caption: 'Tag the selected cells step:NAME (a new or an existing step)',
    isEnabled: () => notebooks.currentWidget !== null,
    execute: async () => {
      const current = selection();
      if (!current) {
        return;
      }
      const tags = await grammar();
      const names = current.badges?.stepNames ?? [];
      const active = current.panel.content.activeCellIndex;
      const result = await InputDialog.getItem({
        title: 'Assign to step',
        label: 'Pick a step or type the name of a new one',
        items: names,
        current: current.badges?.stepOf(active) ?? '',
        editable: true,
        placeholder: 'step name'
      });
      const name = result.value?.trim();
      if (!result.button.accept || !name) {
        return;
      }
      const problem = nameProblem(tags, name);
      if (problem) {
        void showErrorMessage('Assign to step', problem);
        return;
      }
      for (const cell of current.cells) {
        if (cell.model.type === 'code') {
          setCellTags(cell, withStep(tags, cellTags(cell), name));
        }
      }
      current.badges?.schedule(0);
    }
  });

  let loadedGrammar: Grammar | null = null;
  void grammar()
    .then(loaded => (loadedGrammar = loaded))
    .catch(error =>
      console.warn('nb2pipe: the server extension did not answer:', error)
    );

  const toggleCommand = (
    id: string,
    label: string,
    kind: 'parameters' | 'skip'
  ): void => {
    commands.addCommand(id, {
      label,
      isEnabled: () => notebooks.activeCell !== null,
      isToggled: () => {
        const cell = notebooks.activeCell;
        return (
          loadedGrammar !== null &&
          cell !== null &&
          hasKind(loadedGrammar, cellTags(cell), kind)
        );
      },
      execute: async () => {
        const current = selection();
        if (!current) {
          return;
        }
        const tags = await grammar();
        for (const cell of current.cells) {
          setCellTags(cell, toggled(tags, cellTags(cell), kind));
        }
        current.badges?.schedule(0);
      }
    });
  };
  toggleCommand(COMMANDS.toggleParameters, 'Mark as Parameters', 'parameters');
  toggleCommand(COMMANDS.toggleSkip, 'Skip in Pipeline', 'skip');

  commands.addCommand(COMMANDS.addAfter, {
    label: 'Run Step After…',
    caption:
      'Add an after:NAME tag: this step runs after NAME even without a data dependency',
    isEnabled: () => notebooks.activeCell !== null,
    execute: async () => {
      const current = selection();
      const cell = notebooks.activeCell;
      if (!current || !cell) {
        return;
      }
      const tags = await grammar();
      const own = current.badges?.stepOf(current.panel.content.activeCellIndex);
      const names = (current.badges?.stepNames ?? []).filter(n => n !== own);
      if (!names.length) {
        void showErrorMessage(
          'Run step after',
          'There is no other step to run after yet.'
        );
        return;
      }
      const result = await InputDialog.getItem({
        title: own ? `Run step ${own} after` : 'Run this step after',
        items: names
      });
      if (result.button.accept && result.value) {
        setCellTags(cell, withAfter(tags, cellTags(cell), result.value));
        current.badges?.schedule(0);
      }
    }
  });

  // where the commands appear
  palette?.addItem({ command: COMMANDS.export, category: CATEGORY });
  for (const id of [
    COMMANDS.assignStep,
    COMMANDS.toggleParameters,
    COMMANDS.toggleSkip,
    COMMANDS.addAfter
  ]) {
    palette?.addItem({ command: id, category: CATEGORY });
  }
  app.contextMenu.addItem({
    command: COMMANDS.exportSelected,
    selector: NOTEBOOK_FILE,
    rank: 3
  });
  const stepMenu = new Menu({ commands });
  stepMenu.title.label = 'Pipeline Step';
  for (const id of [
    COMMANDS.assignStep,
    COMMANDS.toggleParameters,
    COMMANDS.toggleSkip,
    COMMANDS.addAfter
  ]) {
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
    badges.set(panel, new StepBadges(panel, grammar()));
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
