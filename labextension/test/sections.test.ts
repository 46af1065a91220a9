import * as fs from 'fs';
import * as path from 'path';

import { withoutOutputs } from '../src/editor';
import {
  diagnosticsSection,
  onrampSection,
  parametersSection,
  RunView,
  stepsSection,
  trimLocation
} from '../src/sections';
import type { Analysis, RunStatus } from '../src/types';

function fixture<T>(name: string): T {
  return JSON.parse(
    fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf-8')
  );
}

describe('the panel sections', () => {
  const run = fixture<RunStatus>('run.json');

  it('links a failed step to its cell and line, the full log behind a toggle', () => {
    const selected: [number, number | null][] = [];
    const opened: string[] = [];
    const view = new RunView(
      run.id,
      (cell, line) => selected.push([cell, line]),
      id => `/nb2pipe/runs/${id}/report`,
      id => opened.push(id)
    );
    view.show(run);
    const failure = view.node.querySelector('.nb2pipe-run-failure');
    const link =
      failure?.querySelector<HTMLAnchorElement>('.nb2pipe-cell-link');
    expect(link?.textContent).toBe('cell 5, line 1');
    link?.click();
    expect(selected).toEqual([[5, 1]]);
    expect(
      failure?.querySelector('.nb2pipe-run-failure-error')?.textContent
    ).toBe('ZeroDivisionError: division by zero');
    expect(failure?.querySelector('pre')?.textContent).toBe(
      'total = sum(scaled) / 0'
    );
    const toggle = view.node.querySelector('details');
    expect(toggle?.open).toBe(false);
    expect(toggle?.textContent).toContain('30');
    const report = view.node.querySelector<HTMLAnchorElement>(
      '.nb2pipe-report-link'
    );
    expect(report?.getAttribute('href')).toBe(`/nb2pipe/runs/${run.id}/report`);
    report?.click();
    expect(opened).toEqual([run.id]); // in a JupyterLab tab, not a browser tab
  });

  it("links each step's status to its section of the run's report", () => {
    const churn = fixture<Analysis>('analysis-churn.json');
    const statuses: RunStatus['steps'] = {
      clean: { ...run.steps.load, state: 'completed' }
    };
    const selected: number[] = [];
    const reported: string[] = [];
    const steps = stepsSection(churn, statuses, {
      select: cell => selected.push(cell),
      options: () => undefined,
      report: step => reported.push(step)
    });
    const state = steps.querySelector<HTMLElement>(
      '[data-step="clean"] .nb2pipe-step-state'
    );
    state?.click();
    state?.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    expect(reported).toEqual(['clean', 'clean']);
    expect(selected).toEqual([]); // the row's own action (select the cell) is not taken
    const without = stepsSection(churn, statuses, {
      select: cell => selected.push(cell),
      options: () => undefined
    });
    expect(without.querySelector('.nb2pipe-step-report-link')).toBeNull();
  });

  it('links a flow run only to an http(s) address', () => {
    const shown = (flowRun: string) => {
      const view = new RunView(
        run.id,
        () => undefined,
        id => `/nb2pipe/runs/${id}/report`,
        () => undefined
      );
      view.show({ ...run, flow_run: flowRun });
      return view.node
        .querySelector<HTMLAnchorElement>('.nb2pipe-flow-run-link')
        ?.getAttribute('href');
    };
    const page = 'http://127.0.0.1:4200/runs/flow-run/8d0607ae';
    expect(shown(page)).toBe(page);
    for (const hostile of [
      'javascript:alert(document.cookie)',
      ' JavaScript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'not a url'
    ]) {
      expect(shown(hostile)).toBeUndefined();
    }
  });

  it('keeps only what follows the location in a step error', () => {
    expect(
      trimLocation("nb.ipynb: cell 5, line 1 (step 'x'): KeyError: 'a'")
    ).toBe("KeyError: 'a'");
    expect(trimLocation('no place')).toBe('no place');
  });

  it('acts on steps and diagnostics with Enter', () => {
    const churn = fixture<Analysis>('analysis-churn.json');
    const broken = fixture<Analysis>('analysis-broken.json');
    const selected: number[] = [];
    const steps = stepsSection(churn, run.steps, {
      select: cell => selected.push(cell),
      options: () => undefined
    });
    const clean = steps.querySelector<HTMLElement>('[data-step="clean"]');
    clean?.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    const diagnostics = diagnosticsSection(broken.check.diagnostics, cell =>
      selected.push(cell)
    );
    diagnostics
      .querySelector<HTMLElement>('.nb2pipe-diagnostic')
      ?.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    expect(selected).toEqual([11, 4]);
    expect(clean?.getAttribute('role')).toBe('button');
    expect(clean?.tabIndex).toBe(0);
  });

  it('offers the splits of an untagged notebook', () => {
    const untagged = fixture<Analysis>('analysis-untagged.json');
    const chosen: string[] = [];
    const node = onrampSection(untagged.onramp ?? { headings: [], cells: [] }, {
      split: mode => chosen.push(mode),
      byHand: () => chosen.push('hand')
    });
    const buttons = Array.from(node.querySelectorAll('button')).map(
      b => b.textContent
    );
    expect(buttons).toEqual([
      'By headings → 3 steps',
      'By cells → 4 steps',
      'Tag by hand'
    ]);
    node.querySelector<HTMLButtonElement>('.nb2pipe-split-headings')?.click();
    expect(chosen).toEqual(['headings']);
  });

  it('shows a refused parameter next to its field', () => {
    const churn = fixture<Analysis>('analysis-churn.json');
    const form = { typed: {}, errors: { n_estimators: 'parameter is int' } };
    const node = parametersSection(
      churn.check.parameters,
      form,
      false,
      () => undefined
    );
    expect((node as HTMLDetailsElement).open).toBe(true);
    const row = node.querySelector('[data-parameter="n_estimators"]');
    expect(row?.querySelector('.nb2pipe-parameter-error')?.textContent).toBe(
      'parameter is int'
    );
    const input = row?.querySelector('input');
    expect(input?.getAttribute('aria-invalid')).toBe('true');
    expect(input?.value).toBe('100');
  });

  it('sends the editor notebook without outputs', () => {
    const content = {
      metadata: {},
      cells: [
        { cell_type: 'code', source: 'a', outputs: [1], execution_count: 3 },
        { cell_type: 'markdown', source: 'b', attachments: { x: 1 } }
      ]
    };
    expect(withoutOutputs(content)).toEqual({
      metadata: {},
      cells: [
        { cell_type: 'code', source: 'a', outputs: [], execution_count: null },
        { cell_type: 'markdown', source: 'b' }
      ]
    });
  });
});
