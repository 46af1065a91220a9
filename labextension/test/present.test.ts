import * as fs from 'fs';
import * as path from 'path';

import {
  ago,
  cellRanges,
  changedParameters,
  errorHead,
  exportBlocked,
  firstCell,
  historyLine,
  inputKind,
  joinedCells,
  optionsText,
  plural,
  runActivity,
  runBlocked,
  seconds,
  stateLabel,
  stepsByCell,
  summary,
  valueText,
  where
} from '../src/present';
import type { Analysis, RunHistory } from '../src/types';

function fixture<T>(name: string): T {
  return JSON.parse(
    fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf-8')
  );
}

describe('what the panel shows', () => {
  const churn = fixture<Analysis>('analysis-churn.json');
  const broken = fixture<Analysis>('analysis-broken.json');

  it('summarises the analysis', () => {
    expect(summary(churn)).toBe(
      '7 steps, 10 edges, 6 parameters; 0 errors, 4 warnings'
    );
    expect(summary(broken)).toBe(
      '3 steps, 2 edges, 0 parameters; 1 error, 0 warnings'
    );
  });

  it('says why Export and Run are unavailable', () => {
    expect(exportBlocked(churn)).toBeNull();
    expect(exportBlocked(churn, 'Exporting…')).toBe('Exporting…');
    expect(exportBlocked(broken)).toMatch(
      /^Export is blocked: the notebook has 1 error\./
    );
    expect(exportBlocked(null)).toMatch(/not been analyzed/);
    expect(runBlocked(churn, false)).toBeNull();
    expect(runBlocked(churn, true)).toMatch(/in progress: Stop it first/);
    expect(runBlocked(broken, false)).toMatch(/^Run is blocked: .* 1 error/);
  });

  it('places every code cell of a step, the first one marked', () => {
    const cells = stepsByCell(churn);
    expect(cells.get(6)).toEqual({ name: 'load', index: 0, first: true });
    expect(cells.get(9)).toEqual({ name: 'load', index: 0, first: false });
    expect(cells.get(8)).toBeUndefined(); // tagged skip
    expect(firstCell(churn, 'clean')).toBe(11);
    expect(firstCell(churn, 'nope')).toBeUndefined();
  });

  it('locates diagnostics and formats numbers', () => {
    expect(where(broken.check.diagnostics[0])).toBe('cell 4, line 1');
    expect(where({ ...broken.check.diagnostics[0], line: null })).toBe(
      'cell 4'
    );
    expect(plural(1, 'edge')).toBe('1 edge');
    expect(plural(2, 'edge')).toBe('2 edges');
    expect(seconds(1.25)).toBe('1.3 s');
    expect(seconds(125)).toBe('2 min 5 s');
    expect(seconds(null)).toBe('');
    expect(cellRanges([3])).toBe('cell 3');
    expect(cellRanges([9, 5, 6, 7, 12])).toBe('cells 5–7, 9, 12');
  });

  it('tells states by icon and word, never by colour alone', () => {
    expect(stateLabel('completed', 1.25)).toBe('✓ completed (1.3 s)');
    expect(stateLabel('failed')).toBe('✗ failed');
    expect(stateLabel('cancelled')).toBe('⊘ cancelled');
    expect(stateLabel('pending')).toBe('○ waiting');
    expect(errorHead('a: b\n    line')).toBe('a: b');
  });

  it('lists a run in the history with its parameters', () => {
    const history = fixture<RunHistory>('history.json');
    const [active, failed] = history.runs;
    expect(historyLine(failed, 1000 + 120)).toBe(
      '✗ failed (12.5 s), 2 min ago; factor=4'
    );
    expect(historyLine(active, 1100 + 10)).toBe('… starting, just now');
    expect(ago(0, 2 * 86400)).toBe('1970-01-01');
    expect(ago(0, 7200)).toBe('2 h ago');
  });

  it('counts the seconds of a wait and says what is waited for', () => {
    const [active, failed] = fixture<RunHistory>('history.json').runs;
    expect(runActivity(active, 1100.5 + 12.7)).toBe(
      'starting local Prefect server… 12 s (first start: creating its database)'
    );
    expect(runActivity(active, 1000)).toBe(
      'starting local Prefect server… 0 s (first start: creating its database)'
    );
    expect(runActivity({ ...active, phase_detail: null }, 1100.5 + 3)).toBe(
      'starting local Prefect server… 3 s'
    );
    expect(runActivity({ ...failed, message: 'running…' })).toBe('running…');
  });

  it('shows step options that differ from the defaults', () => {
    expect(optionsText(churn.steps[0].options)).toBe('');
    expect(
      optionsText({ retries: 2, timeout: 60, cache: false, gpu: 1, cpu: null })
    ).toBe('retries 2 · timeout 60 s · no cache · gpu 1');
  });
});

describe('the Run parameters form', () => {
  const churn = fixture<Analysis>('analysis-churn.json');
  const parameters = churn.check.parameters;

  it('edits each parameter as its type suggests and writes defaults as -p takes them', () => {
    const kinds = Object.fromEntries(
      parameters.map(p => [p.name, inputKind(p)])
    );
    expect(kinds).toEqual({
      C: 'number',
      data_path: 'text',
      max_depth: 'number',
      n_estimators: 'number',
      random_state: 'number',
      test_size: 'number'
    });
    expect(inputKind({ name: 'v', type: 'bool', default: true })).toBe(
      'checkbox'
    );
    expect(valueText(true)).toBe('True');
    expect(valueText(null)).toBe('None');
    expect(valueText([1, 'a'])).toBe('[1,"a"]');
    expect(valueText(0.25)).toBe('0.25');
  });

  it('sends only the values changed from the defaults', () => {
    expect(
      changedParameters(parameters, {
        n_estimators: '50',
        test_size: '0.25',
        data_path: 'data/customers.csv',
        unknown: 'x'
      })
    ).toEqual({ n_estimators: '50' });
  });
});

describe('assigning cells to a step', () => {
  const base = fixture<Analysis>('analysis-churn.json');

  /** The analysis with the code cells `cells` in step `name`, after a step `before`. */
  function withSteps(steps: [string, number[]][]): Analysis {
    return {
      ...base,
      check: {
        ...base.check,
        steps: steps.map(([name, cells]) => ({
          name,
          cells,
          uses: [],
          defines: [],
          after: []
        }))
      }
    };
  }

  it('notices untagged cells below the selection that joined the new step', () => {
    const before = withSteps([['eda', [1, 2, 3, 4, 5, 6, 7]]]);
    const after = withSteps([
      ['eda', [1, 2]],
      ['clean', [3, 4, 5, 6, 7]]
    ]);
    expect(joinedCells(before, after, [3, 4])).toEqual({
      step: 'clean',
      cells: [5, 6, 7]
    });
  });

  it('says nothing when no other cell moved', () => {
    const before = withSteps([
      ['eda', [1, 2]],
      ['model', [5, 6]]
    ]);
    const after = withSteps([
      ['eda', [1, 2]],
      ['clean', [3, 4]],
      ['model', [5, 6]]
    ]);
    expect(joinedCells(before, after, [3, 4])).toBeNull();
    expect(joinedCells(before, after, [])).toBeNull();
  });
});
