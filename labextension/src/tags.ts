/**
 * Cell tags written with the grammar the server serves: which prefix means what, and how a
 * tag is spelt. No tag syntax is hard-coded here; only the kinds (`step`, `after`, ...) are.
 */

import type { Grammar, StepOptions, TagSpec } from './types';

export type TagKind = 'step' | 'after' | 'parameters' | 'skip';

/** The spelling nb2pipe writes for a kind (aliases such as Kale's `block:` are only read). */
export function preferredSpec(grammar: Grammar, kind: TagKind): TagSpec {
  const spec = grammar.tags.find(t => t.kind === kind && t.alias_of === null);
  if (!spec) {
    throw new Error(`the tag grammar has no '${kind}' tag`);
  }
  return spec;
}

/** The grammar entry a tag belongs to, aliases included; undefined for other tags. */
export function specOf(grammar: Grammar, tag: string): TagSpec | undefined {
  const colon = tag.indexOf(':');
  const prefix = colon < 0 ? tag : tag.slice(0, colon);
  const hasValue = colon >= 0;
  return grammar.tags.find(
    t => t.prefix === prefix && (t.value !== null) === hasValue
  );
}

export function kindOf(grammar: Grammar, tag: string): string | undefined {
  return specOf(grammar, tag)?.kind;
}

/** Why `name` cannot be a step name, or null when it can. */
export function nameProblem(grammar: Grammar, name: string): string | null {
  if (!name) {
    return 'a step needs a name';
  }
  if (!new RegExp(grammar.identifier_pattern).test(name)) {
    return `'${name}' is not a Python identifier (letters, digits and _; not starting with a digit)`;
  }
  return null;
}

/** `step:NAME`, `after:NAME`, `parameters`, ... as the grammar spells them. */
export function makeTag(
  grammar: Grammar,
  kind: TagKind,
  value?: string
): string {
  const spec = preferredSpec(grammar, kind);
  if (spec.value === null) {
    return spec.prefix;
  }
  if (value === undefined) {
    throw new Error(`a '${spec.prefix}' tag needs a value: ${spec.example}`);
  }
  if (spec.value === 'name') {
    const problem = nameProblem(grammar, value);
    if (problem) {
      throw new Error(problem);
    }
  }
  return `${spec.prefix}:${value}`;
}

/** The tags with every step tag (aliases too) replaced by one `step:NAME`, where the first was. */
export function withStep(
  grammar: Grammar,
  tags: readonly string[],
  name: string
): string[] {
  const tag = makeTag(grammar, 'step', name);
  const first = tags.findIndex(t => kindOf(grammar, t) === 'step');
  const kept = tags.filter(t => kindOf(grammar, t) !== 'step');
  kept.splice(first < 0 ? 0 : first, 0, tag);
  return kept;
}

/** Adds a flag (`parameters`, `skip`) or, when the cell has it in any spelling, removes it. */
export function toggled(
  grammar: Grammar,
  tags: readonly string[],
  kind: TagKind
): string[] {
  if (tags.some(t => kindOf(grammar, t) === kind)) {
    return tags.filter(t => kindOf(grammar, t) !== kind);
  }
  return [...tags, makeTag(grammar, kind)];
}

export function hasKind(
  grammar: Grammar,
  tags: readonly string[],
  kind: TagKind
): boolean {
  return tags.some(t => kindOf(grammar, t) === kind);
}

/** Adds `after:NAME` unless the cell already orders itself after that step (in any spelling). */
export function withAfter(
  grammar: Grammar,
  tags: readonly string[],
  name: string
): string[] {
  const tag = makeTag(grammar, 'after', name);
  const present = tags.some(t => {
    const spec = specOf(grammar, t);
    return spec?.kind === 'after' && t.slice(spec.prefix.length + 1) === name;
  });
  return present ? [...tags] : [...tags, tag];
}

// --- per-step options (retries, timeout, cache, resources) -----------------------------

/** The option tags the form edits: the grammar's own spelling of each kind that is one of
 * the step's options (aliases are read, never written). */
export function optionSpecs(grammar: Grammar, options: StepOptions): TagSpec[] {
  return grammar.tags.filter(
    t => t.alias_of === null && t.value !== null && t.kind in options
  );
}

/** A flag-like option (`cache:off`): on by default, a tag turns it off. */
export function isSwitch(spec: TagSpec): boolean {
  return spec.value === 'off';
}

/** The tag's value in a list of tags (any spelling of the kind), or ''. */
export function tagValue(
  grammar: Grammar,
  tags: readonly string[],
  kind: string
): string {
  for (const tag of tags) {
    const colon = tag.indexOf(':');
    if (colon < 0) {
      continue;
    }
    const prefix = tag.slice(0, colon);
    if (grammar.tags.some(t => t.kind === kind && t.prefix === prefix)) {
      return tag.slice(colon + 1);
    }
  }
  return '';
}

/** The tags with every option tag of `specs`' kinds removed (any spelling). */
export function withoutOptions(
  grammar: Grammar,
  tags: readonly string[],
  specs: readonly TagSpec[]
): string[] {
  const kinds = new Set(specs.map(s => s.kind));
  return tags.filter(tag => {
    const colon = tag.indexOf(':');
    const prefix = colon < 0 ? tag : tag.slice(0, colon);
    return !grammar.tags.some(
      t =>
        kinds.has(t.kind) &&
        t.prefix === prefix &&
        (t.value !== null) === colon >= 0
    );
  });
}

/** The option tags for the form's values: empty fields write no tag. */
export function optionTags(
  specs: readonly TagSpec[],
  values: Record<string, string>
): string[] {
  const tags: string[] = [];
  for (const spec of specs) {
    const value = (values[spec.kind] ?? '').trim();
    if (isSwitch(spec)) {
      if (value === 'off') {
        tags.push(`${spec.prefix}:off`);
      }
    } else if (value) {
      tags.push(`${spec.prefix}:${value}`);
    }
  }
  return tags;
}
