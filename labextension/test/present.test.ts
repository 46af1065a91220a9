import * as fs from 'fs';
import * as path from 'path';

import {
  ago,
  cellRanges,
  changedParameters,
  defaultText,
  elapsed,
  errorHead,
  exportBlocked,
  firstCell,
  historyLine,
  inputKind,
  joinedCells,
  optionsText,
  phaseText,
  plural,
  runBlocked,
  runStatusText,
  seconds,
  stateLabel,
  stepsByCell,
  summary,
  valueText,
  where
} from '../src/present';
import { PhaseClock } from '../src/running';
import type { Analysis, RunHistory, RunStatus } from '../src/types';

function fixture<T>(name: string): T {
  return JSON.parse(
    fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf-8')
  );
}

describe('what the panel shows', () => {
  const churn = fixture<Analysis>('analysis-churn.json');
  const broken = fixture<Analysis>('analysis-broken.json');

  it('summarises the analysis, notes (information) not counted as warnings', () => {
    expect(churn.check.diagnostics.filter(d => d.code === 'NB306').length).toBe(
      4
    );
    expect(summary(churn)).toBe(
      '7 steps, 10 edges, 6 parameters; 0 errors, 0 warnings'
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
    expect(seconds(null)).toBe('');
    expect(cellRanges([3])).toBe('cell 3');
    expect(cellRanges([9, 5, 6, 7, 12])).toBe('cells 5–7, 9, 12');
  });

  it('writes a duration by the rule of the run report (duration_text)', () => {
    // the same values as tests/test_report.py::test_a_duration_is_written_the_same_way_everywhere
    expect(
      [0.0, 0.4234, 1.3, 9.999, 12.34, 89.9, 125.2].map(d => seconds(d))
    ).toEqual([
      '0.00 s',
      '0.42 s',
      '1.30 s',
      '10.00 s',
      '12.3 s',
      '89.9 s',
      '2 min 5 s'
    ]);
  });

  it('tells states by icon and word, never by colour alone', () => {
    expect(stateLabel('completed', 1.25)).toBe('✓ completed (1.25 s)');
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
    expect(
      inputKind({ name: 'v', type: 'bool', default: true, source: 'True' })
    ).toBe('checkbox');
    expect(valueText(true)).toBe('True');
    expect(valueText(null)).toBe('None');
    expect(valueText([1, 'a'])).toBe('[1,"a"]');
    expect(valueText(0.25)).toBe('0.25');
  });

  it("lists the parameters in the cell's order, each default as the cell writes it", () => {
    expect(parameters.map(p => p.name)).toEqual([
      'data_path',
      'test_size',
      'random_state',
      'n_estimators',
      'C',
      'max_depth'
    ]);
    const shown = Object.fromEntries(
      parameters.map(p => [p.name, defaultText(p)])
    );
    expect(shown.C).toBe('1.0');
    expect(shown.data_path).toBe('data/customers.csv'); // text, without its quotes
    expect(
      defaultText({
        name: 'd',
        type: 'dict',
        default: { a: 1 },
        source: "{'a': 1}"
      })
    ).toBe("{'a': 1}");
    expect(
      defaultText({
        name: 'l',
        type: 'list',
        default: [1],
        source: '[\n  1,\n]'
      })
    ).toBe('[1]');
    expect(changedParameters(parameters, { C: '1.0' })).toEqual({});
    expect(changedParameters(parameters, { C: '1' })).toEqual({ C: '1' });
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

describe('the status line of a run going on', () => {
  const run: RunStatus = {
    ...fixture<RunStatus>('run-started.json'),
    phase: 'server',
    message: 'starting the local Prefect server…'
  };

  it('says what the run waits for and counts the seconds of the wait', () => {
    expect(runStatusText(run, 1200, 1226.4)).toBe(
      'Run starting: starting the local Prefect server… (26 s)'
    );
    expect(elapsed(65)).toBe('1 min 5 s');
    expect(
      runStatusText(
        { ...run, phase_detail: 'first start: creating its database' },
        1200,
        1212
      )
    ).toBe(
      'Run starting: starting the local Prefect server… (12 s; first start: creating its database)'
    );
  });

  it('shows no address: the links below open those', () => {
    const flowRun = {
      ...run,
      phase: 'flow_run',
      message: 'flow run: http://127.0.0.1:4200/runs/flow-run/1'
    };
    expect(phaseText(flowRun)).toBe('the flow run has started in Prefect');
    expect(
      phaseText({ ...run, phase: 'x', message: 'see http://h/a for it' })
    ).toBe('see for it');
    expect(runStatusText(flowRun, 1200, 1203)).not.toMatch(/https?:/);
  });

  it('counts the steps once they run, and the time since the run started', () => {
    const running: RunStatus = {
      ...run,
      state: 'running',
      steps: {
        load: {
          state: 'completed',
          duration: 1,
          error: null,
          cell: null,
          line: null
        },
        scale: {
          state: 'running',
          duration: null,
          error: null,
          cell: null,
          line: null
        },
        report: {
          state: 'pending',
          duration: null,
          error: null,
          cell: null,
          line: null
        }
      }
    };
    expect(runStatusText(running, 1290, 1275)).toBe(
      'Run running: 1 of 3 steps done; scale running (1 min 15 s)'
    );
  });

  it('counts from when the phase began: as the server says, else when it was first seen', () => {
    const clock = new PhaseClock();
    expect(clock.since(run, 1210)).toBe(1210);
    expect(clock.since(run, 1215)).toBe(1210); // the same wait goes on
    const next = { ...run, message: 'running…' };
    expect(clock.since(next, 1220)).toBe(1220);
    expect(clock.since({ ...next, phase_since: 1201.5 }, 1222)).toBe(1201.5);
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
