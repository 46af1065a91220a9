import * as fs from 'fs';
import * as path from 'path';

import {
  exportBlocked,
  firstCell,
  plural,
  seconds,
  stepColor,
  stepsByCell,
  summary,
  where
} from '../src/present';
import type { Analysis } from '../src/types';

function analysis(name: string): Analysis {
  return JSON.parse(
    fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf-8')
  );
}

describe('what the panel shows', () => {
  const churn = analysis('analysis-churn.json');
  const broken = analysis('analysis-broken.json');

  it('summarises the analysis', () => {
    expect(summary(churn)).toBe(
      '7 steps, 10 edges, 6 parameters; 0 errors, 3 warnings'
    );
    expect(summary(broken)).toBe(
      '3 steps, 2 edges, 0 parameters; 1 error, 0 warnings'
    );
  });

  it('blocks export when the server found errors, and says why', () => {
    expect(exportBlocked(churn)).toBeNull();
    expect(exportBlocked(broken)).toMatch(
      /^Export is blocked: the notebook has 1 error\./
    );
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
    expect(seconds(null)).toBe('');
    expect(stepColor(0)).not.toBe(stepColor(1));
    expect(stepColor(0)).toBe(stepColor(10));
  });
});
