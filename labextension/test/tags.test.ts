import * as fs from 'fs';
import * as path from 'path';

import {
  hasKind,
  kindOf,
  makeTag,
  nameProblem,
  preferredSpec,
  toggled,
  withAfter,
  withStep
} from '../src/tags';
import type { Grammar } from '../src/types';

// the grammar exactly as the server serves it (tests/test_server.py keeps it current)
const grammar: Grammar = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'grammar.json'), 'utf-8')
);

describe('tags written with the served grammar', () => {
  it('writes the preferred spelling, never an alias', () => {
    expect(preferredSpec(grammar, 'step').prefix).toBe('step');
    expect(makeTag(grammar, 'step', 'load')).toBe('step:load');
    expect(makeTag(grammar, 'after', 'load')).toBe('after:load');
    expect(makeTag(grammar, 'parameters')).toBe('parameters');
    expect(makeTag(grammar, 'skip')).toBe('skip');
  });

  it('follows the grammar rather than a built-in spelling', () => {
    const renamed: Grammar = {
      ...grammar,
      tags: grammar.tags.map(t =>
        t.kind === 'step' && !t.alias_of ? { ...t, prefix: 'task' } : t
      )
    };
    expect(makeTag(renamed, 'step', 'load')).toBe('task:load');
  });

  it('reads aliases as their kind', () => {
    expect(kindOf(grammar, 'block:load')).toBe('step');
    expect(kindOf(grammar, 'prev:load')).toBe('after');
    expect(kindOf(grammar, 'pipeline-parameters')).toBe('parameters');
    expect(kindOf(grammar, 'step')).toBeUndefined(); // step needs a value
    expect(kindOf(grammar, 'unrelated')).toBeUndefined();
  });

  it('refuses a step name that is not an identifier', () => {
    expect(nameProblem(grammar, 'load_2')).toBeNull();
    expect(nameProblem(grammar, '2load')).toMatch(/not a Python identifier/);
    expect(nameProblem(grammar, '')).toMatch(/needs a name/);
    expect(() => makeTag(grammar, 'step', 'load data')).toThrow(
      /not a Python identifier/
    );
    expect(() => makeTag(grammar, 'after')).toThrow(
      /needs a value: after:NAME/
    );
  });

  it('replaces every step tag, aliases included, where the first one was', () => {
    expect(
      withStep(grammar, ['metrics', 'block:old', 'step:older'], 'new')
    ).toEqual(['metrics', 'step:new']);
    expect(withStep(grammar, ['metrics'], 'new')).toEqual([
      'step:new',
      'metrics'
    ]);
    expect(withStep(grammar, [], 'new')).toEqual(['step:new']);
  });

  it('toggles a flag in any spelling', () => {
    expect(toggled(grammar, ['step:a'], 'skip')).toEqual(['step:a', 'skip']);
    expect(toggled(grammar, ['step:a', 'skip'], 'skip')).toEqual(['step:a']);
    expect(toggled(grammar, ['pipeline-parameters'], 'parameters')).toEqual([]);
    expect(hasKind(grammar, ['pipeline-parameters'], 'parameters')).toBe(true);
  });

  it('adds an after: tag once', () => {
    expect(withAfter(grammar, ['step:b'], 'a')).toEqual(['step:b', 'after:a']);
    expect(withAfter(grammar, ['step:b', 'after:a'], 'a')).toEqual([
      'step:b',
      'after:a'
    ]);
    expect(withAfter(grammar, ['prev:a'], 'a')).toEqual(['prev:a']);
    expect(withAfter(grammar, ['after:ab'], 'a')).toEqual([
      'after:ab',
      'after:a'
    ]);
  });
});
