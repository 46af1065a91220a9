/**
 * nb2pipe for JupyterLab: the pipeline panel in the right sidebar, which follows the active
 * notebook (opened from the file browser, the notebook's toolbar and context menu, the command
 * palette), and the step editor. All analysis happens in Python behind /nb2pipe/.
 */

import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  showErrorMessage,
  ToolbarButton
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Menu } from '@lumino/widgets';

import { fetchGrammar } from './api';
import { StepBadges } from './editor';
import { createHost, LabParts, Listeners, openNotebook } from './labHost';
import { PipelineSidebar } from './sidebar';
import { addStepEditorCommands, EDITOR_COMMANDS } from './stepEditor';
import type { Grammar } from './types';

const COMMANDS = {
  export: 'nb2pipe:export',
  exportSelected: 'nb2pipe:export-selected',
  ...EDITOR_COMMANDS
};
const CATEGORY = 'Pipeline (nb2pipe)';
const NOTEBOOK_FILE = '.jp-DirListing-item[data-file-type="notebook"]';
/** The group of the notebook context menu that is nb2pipe's: after JupyterLab's Undo, Redo
 * and Restart Kernel (ranks 30 to 33), before its consoles (40). */
const MENU_RANK = 35;

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nb2pipe:plugin',
  description:
    'Export a tagged notebook to a Prefect pipeline; edit its steps; run it.',
  autoStart: true,
  requires: [IDocumentManager, IFileBrowserFactory, INotebookTracker],
  optional: [ICommandPalette],
  activate
};

/** The server's tag grammar, asked for once (again after a failure). */
function grammarLoader(): () => Promise<Grammar> {
  let request: Promise<Grammar> | null = null;
  return () => {
    request ??= fetchGrammar().catch(error => {
      request = null;
      throw error;
    });
    return request;
  };
}

function activate(
  app: JupyterFrontEnd,
  docManager: IDocumentManager,
  browsers: IFileBrowserFactory,
  notebooks: INotebookTracker,
  palette: ICommandPalette | null
): void {
  const grammar = grammarLoader();
  const badges = new WeakMap<NotebookPanel, StepBadges>();
  const listeners: Listeners = new Map();
  const { editOptions } = addStepEditorCommands(
    app.commands,
    notebooks,
    badges,
    grammar
  );
  const parts: LabParts = { app, docManager, notebooks, badges, editOptions };
  const sidebar = new PipelineSidebar(createHost(parts, listeners));
  app.shell.add(sidebar, 'right', { rank: 650 });

  /** Opens the notebook (in the main area, when it is not open) and shows its pipeline. */
  const showPipeline = async (path: string): Promise<void> => {
    const panel = await openNotebook(parts, path);
    if (!panel) {
      void showErrorMessage('Export to Pipeline', `Cannot open ${path}.`);
      return;
    }
    app.shell.activateById(sidebar.id);
    sidebar.showPipeline(path);
  };

  addCommands(app, browsers, notebooks, showPipeline);
  addMenus(app, palette);
  followNotebooks(parts, sidebar, listeners, grammar);
}

function addCommands(
  app: JupyterFrontEnd,
  browsers: IFileBrowserFactory,
  notebooks: INotebookTracker,
  showPipeline: (path: string) => Promise<void>
): void {
  app.commands.addCommand(COMMANDS.export, {
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
      return showPipeline(path);
    },
    isEnabled: args =>
      typeof args.path === 'string' || notebooks.currentWidget !== null
  });
  app.commands.addCommand(COMMANDS.exportSelected, {
    label: 'Export to Pipeline',
    caption:
      'Open the notebook beside its pipeline panel: steps, graph, export',
    execute: async () => {
      const item = browsers.tracker.currentWidget?.selectedItems().next();
      if (item && !item.done) {
        await showPipeline(item.value.path);
      }
    }
  });
}

function addMenus(app: JupyterFrontEnd, palette: ICommandPalette | null): void {
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
  const stepMenu = new Menu({ commands: app.commands });
  stepMenu.title.label = 'Pipeline Step';
  for (const id of editorCommands) {
    stepMenu.addItem({ command: id });
  }
  // a group of its own, between separators
  app.contextMenu.addItem({
    type: 'separator',
    selector: '.jp-Notebook',
    rank: MENU_RANK
  });
  app.contextMenu.addItem({
    type: 'submenu',
    submenu: stepMenu,
    selector: '.jp-Notebook .jp-Cell',
    rank: MENU_RANK + 0.1
  });
  app.contextMenu.addItem({
    command: COMMANDS.export,
    selector: '.jp-Notebook',
    rank: MENU_RANK + 0.2
  });
}

/** Each notebook gets its step badges and an Export button; the sidebar follows the active
 * one and forgets those closed or renamed. */
function followNotebooks(
  parts: LabParts,
  sidebar: PipelineSidebar,
  listeners: Listeners,
  grammar: () => Promise<Grammar>
): void {
  const { app, notebooks, badges } = parts;
  notebooks.currentChanged.connect((_, panel) => {
    if (panel) {
      sidebar.follow(panel.context.path);
    }
  });
  notebooks.widgetAdded.connect((_, panel) => {
    // a step's badge opens the step's options
    const stepBadges = new StepBadges(
      panel,
      grammar(),
      step => void parts.editOptions(panel, stepBadges, step)
    );
    badges.set(panel, stepBadges);
    stepBadges.analyzed.connect((sender, analysis) => {
      listeners.get(sender.path)?.forEach(listener => listener(analysis));
    });
    let path = panel.context.path;
    const gone = (): void => {
      const other = notebooks.find(
        p => p !== panel && !p.isDisposed && p.context.path === path
      );
      if (!other) {
        sidebar.forget(path);
      }
    };
    panel.context.pathChanged.connect((_, renamed) => {
      gone();
      path = renamed;
      if (notebooks.currentWidget === panel) {
        sidebar.follow(renamed);
      }
    });
    panel.disposed.connect(gone);
    const button = new ToolbarButton({
      className: 'nb2pipe-toolbar-export',
      label: 'Export to Pipeline',
      tooltip: 'Export to Pipeline: steps, graph, diagnostics, export and run',
      onClick: () =>
        void app.commands.execute(COMMANDS.export, {
          path: panel.context.path
        })
    });
    panel.toolbar.insertAfter('cellType', 'nb2pipe-export', button);
  });
}

export default plugin;
