import * as fs from 'fs';
import * as path from 'path';

import { optionRow } from '../src/optionFields';
import {
  isSwitch,
  optionSpecs,
  optionTags,
  tagValue,
  withoutOptions
} from '../src/tags';
import type { Analysis, Grammar } from '../src/types';

function fixture<T>(name: string): T {
  return JSON.parse(
    fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf-8')
  );
}

describe('the step options form', () => {
  const grammar = fixture<Grammar>('grammar.json');
  const options = fixture<Analysis>('analysis-churn.json').steps[0].options;
  const specs = optionSpecs(grammar, options);

  it('edits the option tags the grammar defines for the step options the server sends', () => {
    expect(specs.map(s => s.prefix).sort()).toEqual(
      Object.keys(options).sort()
    );
    expect(specs.filter(isSwitch).map(s => s.prefix)).toEqual(['cache']);
  });

  it('reads the current values in any spelling and writes the preferred one', () => {
    expect(tagValue(grammar, ['step:a', 'retries:3'], 'retries')).toBe('3');
    expect(tagValue(grammar, ['step:a'], 'timeout')).toBe('');
    expect(
      withoutOptions(
        grammar,
        ['step:a', 'retries:3', 'cache:off', 'metrics'],
        specs
      )
    ).toEqual(['step:a', 'metrics']);
    expect(
      optionTags(specs, { retries: '2', timeout: ' 60 ', cache: 'off' }).sort()
    ).toEqual(['cache:off', 'retries:2', 'timeout:60']);
    expect(optionTags(specs, { retries: '', timeout: '', cache: '' })).toEqual(
      []
    );
  });

  it('labels the cache switch by what checked means, and says what each field wants', () => {
    const byKind = Object.fromEntries(specs.map(s => [s.kind, s]));
    const cache = optionRow(byKind.cache, '');
    expect(cache.input.type).toBe('checkbox');
    expect(cache.input.checked).toBe(true);
    expect(cache.row.textContent).toMatch(/^cache results/);
    expect(
      cache.row.querySelector('.nb2pipe-option-help')?.textContent
    ).toMatch(
      /^Checked \(the default\): a run takes the step from the cache.*Unchecked: the step runs every time \(tag cache:off\)\.$/
    );
    expect(optionRow(byKind.cache, 'off').input.checked).toBe(false);
    const placeholders = Object.fromEntries(
      specs
        .filter(s => !isSwitch(s))
        .map(s => [s.kind, optionRow(s, '').input.placeholder])
    );
    expect(placeholders).toEqual({
      retries: 'a whole number, e.g. 2',
      timeout: 'seconds, e.g. 600',
      cpu: 'a number, e.g. 2',
      gpu: 'a number, e.g. 2',
      memory: 'a size, e.g. 4GB'
    });
    for (const text of Object.values(placeholders)) {
      expect(text).not.toMatch(/:/); // never a whole tag like retries:N
    }
    const retries = optionRow(byKind.retries, 'x', 'not a whole number');
    expect(retries.input.getAttribute('aria-invalid')).toBe('true');
    const help = retries.input.getAttribute('aria-describedby') ?? '';
    expect(retries.row.querySelector(`#${help}`)?.textContent).toBe(
      byKind.retries.description
    );
  });
});
