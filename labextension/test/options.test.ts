import * as fs from 'fs';
import * as path from 'path';

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
});
