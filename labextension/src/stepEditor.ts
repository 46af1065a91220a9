/**
 * The step editor's commands: assign cells to a step (saying when untagged cells below join
 * it too), a step's options in a form, parameters and skip, `after:` edges. They write plain
 * tags through the notebook model, with the grammar the server serves.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import {
  InputDialog,
  Notification,
  showErrorMessage
} from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { checkTags } from './api';
import { cellTags, selectedCells, setCellTags, StepBadges } from './editor';
import { askStepOptions } from './options';
import { cellRanges, joinedCells, stepsByCell } from './present';
import {
  hasKind,
  nameProblem,
  optionSpecs,
  tagValue,
  toggled,
  withAfter,
  withoutOptions,
  withStep
} from './tags';
import type { Grammar } from './types';

export const EDITOR_COMMANDS = {
  assignStep: 'nb2pipe:assign-step',
  stepOptions: 'nb2pipe:step-options',
  toggleParameters: 'nb2pipe:toggle-parameters',
  toggleSkip: 'nb2pipe:toggle-skip',
  addAfter: 'nb2pipe:add-after'
};

const COMMANDS = EDITOR_COMMANDS;

/** What the step editor commands work with. */
interface EditorParts {
  commands: JupyterFrontEnd['commands'];
  notebooks: INotebookTracker;
  badges: WeakMap<NotebookPanel, StepBadges>;
  grammar: () => Promise<Grammar>;
}

type EditOptions = (
  panel: NotebookPanel,
  stepBadges: StepBadges,
  step: string
) => Promise<void>;

export function addStepEditorCommands(
  commands: JupyterFrontEnd['commands'],
  notebooks: INotebookTracker,
  badges: WeakMap<NotebookPanel, StepBadges>,
  grammar: () => Promise<Grammar>
): { editOptions: EditOptions } {
  const parts: EditorParts = { commands, notebooks, badges, grammar };
  const editOptions: EditOptions = (panel, stepBadges, step) =>
    editStepOptions(parts, panel, stepBadges, step);
  addAssignCommand(parts);
  addOptionsCommand(parts, editOptions);
  addToggleCommands(parts);
  addAfterCommand(parts);
  return { editOptions };
}

/** The current notebook and its selected cells, for the step editor commands. */
function selection({ notebooks, badges }: EditorParts): {
  panel: NotebookPanel;
  cells: Cell[];
  badges: StepBadges | undefined;
} | null {
  const panel = notebooks.currentWidget;
  if (!panel) {
    return null;
  }
  return { panel, cells: selectedCells(panel), badges: badges.get(panel) };
}

/** Tags cells as a step; says so when untagged cells below now join it too. */
async function assign(
  { commands, badges, grammar }: EditorParts,
  panel: NotebookPanel,
  cells: Cell[],
  name: string
): Promise<void> {
  const tags = await grammar();
  const stepBadges = badges.get(panel);
  const before = stepBadges?.analysis ?? null;
  const previous = cells.map(cell => [cell, cellTags(cell)] as const);
  const chosen: number[] = [];
  for (const cell of cells) {
    if (cell.model.type === 'code') {
      setCellTags(cell, withStep(tags, cellTags(cell), name));
      chosen.push(panel.content.widgets.indexOf(cell) + 1);
    }
  }
  const after = stepBadges ? await stepBadges.refresh() : null;
  const joined = before && after ? joinedCells(before, after, chosen) : null;
  if (!joined) {
    return;
  }
  const first = joined.cells[0];
  const one = joined.cells.length === 1;
  Notification.warning(
    `${cellRanges(joined.cells)} below ${one ? 'has' : 'have'} no step tag, so ` +
      `${one ? 'it now belongs' : 'they now belong'} to step ${joined.step} too.`,
    {
      autoClose: false,
      actions: [
        {
          label: `New step at cell ${first}…`,
          callback: () => {
            panel.content.activeCellIndex = first - 1;
            panel.content.deselectAll();
            void commands.execute(COMMANDS.assignStep);
          }
        },
        {
          label: 'Undo',
          callback: () => {
            for (const [cell, old] of previous) {
              setCellTags(cell, old);
            }
            stepBadges?.schedule(0);
          }
        }
      ]
    }
  );
}

function addAssignCommand(parts: EditorParts): void {
  parts.commands.addCommand(COMMANDS.assignStep, {
    label: 'Assign Cells to Step…',
    caption: 'Tag the selected cells step:NAME (a new or an existing step)',
    isEnabled: () => parts.notebooks.currentWidget !== null,
    execute: async () => {
      const current = selection(parts);
      if (!current) {
        return;
      }
      const tags = await parts.grammar();
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
      await assign(parts, current.panel, current.cells, name);
    }
  });
}

/** The options dialog of a step; writes the option tags on its first code cell. */
async function editStepOptions(
  { grammar }: EditorParts,
  panel: NotebookPanel,
  stepBadges: StepBadges,
  step: string
): Promise<void> {
  const tags = await grammar();
  const analysis = stepBadges.analysis ?? (await stepBadges.refresh());
  const info = analysis?.steps.find(s => s.name === step);
  const checked = analysis?.check.steps.find(s => s.name === step);
  if (!analysis || !info || !checked || !checked.cells.length) {
    void showErrorMessage(
      'Step options',
      `There is no step ${step} with code cells.`
    );
    return;
  }
  const cells = checked.cells
    .map(number => panel.content.widgets[number - 1])
    .filter((cell): cell is Cell => cell !== undefined);
  const specs = optionSpecs(tags, info.options);
  const current: Record<string, string> = {};
  for (const spec of specs) {
    for (const cell of cells) {
      current[spec.kind] ||= tagValue(tags, cellTags(cell), spec.kind);
    }
  }
  const chosen = await askStepOptions(step, specs, current, async written =>
    written.length ? (await checkTags(written)).problems : {}
  );
  if (chosen === null) {
    return;
  }
  cells.forEach((cell, i) => {
    const kept = withoutOptions(tags, cellTags(cell), specs);
    setCellTags(cell, i === 0 ? [...kept, ...chosen] : kept);
  });
  stepBadges.schedule(0);
}

function addOptionsCommand(parts: EditorParts, editOptions: EditOptions): void {
  parts.commands.addCommand(COMMANDS.stepOptions, {
    label: 'Step Options…',
    caption:
      "Retries, timeout, cache and resources of the selected cell's step",
    isEnabled: () => parts.notebooks.currentWidget !== null,
    execute: async () => {
      const current = selection(parts);
      if (!current?.badges) {
        return;
      }
      const analysis =
        current.badges.analysis ?? (await current.badges.refresh());
      const index = current.panel.content.activeCellIndex + 1;
      const step = analysis
        ? stepsByCell(analysis).get(index)?.name
        : undefined;
      if (!step) {
        void showErrorMessage(
          'Step options',
          'The selected cell is not part of a step: select a code cell of the step.'
        );
        return;
      }
      await editOptions(current.panel, current.badges, step);
    }
  });
}

/** Mark as Parameters and Skip in Pipeline: each toggles one tag on the selected cells. */
function addToggleCommands(parts: EditorParts): void {
  const { commands, notebooks, grammar } = parts;
  // a menu asks isToggled synchronously: the grammar as soon as it has loaded
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
        const current = selection(parts);
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
}

function addAfterCommand(parts: EditorParts): void {
  const { notebooks, grammar } = parts;
  parts.commands.addCommand(COMMANDS.addAfter, {
    label: 'Run Step After…',
    caption:
      'Add an after:NAME tag: this step runs after NAME even without a data dependency',
    isEnabled: () => notebooks.activeCell !== null,
    execute: async () => {
      const current = selection(parts);
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
}
