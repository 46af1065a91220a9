/**
 * The TypeScript types against the JSON the Python side produces (tests/test_server.py writes
 * the fixtures): each fixture, written as an object literal of its type, must compile under
 * strict mode, so a missing, extra or mistyped field on either side fails here.
 */

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import ts from 'typescript';

const FIXTURES = path.join(__dirname, 'fixtures');
const TYPES = path.resolve(__dirname, '..', 'src', 'types');

const FIXTURE_TYPES: Record<string, string> = {
  'grammar.json': 'Grammar',
  'tags.json': 'TagProblems',
  'analysis-churn.json': 'Analysis',
  'analysis-broken.json': 'Analysis',
  'analysis-untagged.json': 'Analysis',
  'split.json': 'SplitTags',
  'export-churn.json': 'ExportResult',
  'export-broken.json': 'ExportResult',
  'export-edited.json': 'ExportResult',
  'diff.json': 'ExportDiff',
  'run.json': 'RunStatus',
  'run-started.json': 'RunStatus',
  'history.json': 'RunHistory'
};

/** The compiler's complaints about `const value: TYPE = JSON`. */
function typeErrors(typeName: string, json: string): string[] {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'nb2pipe-types-'));
  const file = path.join(folder, 'fixture.ts');
  fs.writeFileSync(
    file,
    `import type { ${typeName} } from ${JSON.stringify(TYPES)};\n` +
      `export const value: ${typeName} = ${json};\n`
  );
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      types: []
    });
    return ts
      .getPreEmitDiagnostics(program)
      .map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

function fixture(name: string): string {
  return fs.readFileSync(path.join(FIXTURES, name), 'utf-8');
}

describe('the TypeScript types match the Python documents', () => {
  it('has a fixture for every document type', () => {
    expect(fs.readdirSync(FIXTURES).sort()).toEqual(
      Object.keys(FIXTURE_TYPES).sort()
    );
  });

  it.each(Object.entries(FIXTURE_TYPES))('%s is a %s', (name, typeName) => {
    expect(typeErrors(typeName, fixture(name))).toEqual([]);
  });

  it('notices a field the types do not know, a missing one and a wrong value', () => {
    const run = JSON.parse(fixture('run.json'));
    expect(
      typeErrors('RunStatus', JSON.stringify({ ...run, extra: 1 })).join()
    ).toMatch(/extra\W+ does not exist/);
    const missing = { ...run };
    delete missing.log;
    expect(typeErrors('RunStatus', JSON.stringify(missing)).join()).toMatch(
      /'log' is missing/
    );
    expect(
      typeErrors('RunStatus', JSON.stringify({ ...run, state: 'done' })).join()
    ).toMatch(/"done"/);
  });
});
