import * as fs from 'fs';
import * as path from 'path';

import type { NotebookPanel } from '@jupyterlab/notebook';

import { pipelineSource, StepBadges } from '../src/editor';
import type { Analysis, Grammar } from '../src/types';

jest.mock('../src/api', () => ({
  analyzeContent: jest.fn(),
  errorReply: () => undefined
}));

const fixture = (name: string): unknown =>
  JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf-8'));
const grammar = fixture('grammar.json') as Grammar;
const analysis = fixture('analysis-churn.json') as Analysis;

/** A code cell as the badges see it: a header, tags, and "drawn yet or a placeholder". */
class FakeCell {
  readonly node = document.createElement('div');
  readonly model = { type: 'code', getMetadata: () => [] as string[] };
  placeholder = true;
  headerLookups = 0;
  readonly ready: Promise<void>;
  draw!: () => void;

  constructor() {
    const header = document.createElement('div');
    header.className = 'jp-CellHeader';
    this.node.appendChild(header);
    const find = this.node.querySelector.bind(this.node);
    this.node.querySelector = ((selector: string) => {
      this.headerLookups += 1;
      return find(selector);
    }) as typeof this.node.querySelector;
    this.ready = new Promise(resolve => {
      this.draw = () => {
        this.placeholder = false;
        resolve();
      };
    });
  }

  isPlaceholder(): boolean {
    return this.placeholder;
  }
}

const signal = { connect: () => undefined };

describe('step badges', () => {
  it('draw each cell once it is drawn, however often they were redrawn meanwhile', async () => {
    // A long notebook is drawn lazily: the first cells are there, the last 10 are not yet.
    const cells = Array.from({ length: 28 }, () => new FakeCell());
    const later = cells.slice(18);
    cells.slice(0, 18).forEach(cell => cell.draw());
    const panel = {
      isDisposed: false,
      content: { widgets: cells },
      context: { ready: new Promise(() => undefined), path: 'churn.ipynb' },
      disposed: signal
    };
    const badges = new StepBadges(
      panel as unknown as NotebookPanel,
      Promise.resolve(grammar)
    );
    await Promise.resolve();
    badges.analysis = analysis;
    for (let i = 0; i < 5; i++) {
      badges.render(); // e.g. one per analysis while the notebook is still being drawn
    }
    const before = cells.map(c => c.headerLookups);
    expect(later.map(c => c.headerLookups)).toEqual(later.map(() => 0));
    for (const cell of later) {
      cell.draw();
      await Promise.resolve();
      await Promise.resolve();
    }
    // Each late cell: its badge drawn once when it appeared, not once per render made before
    // (each of which used to redraw the whole notebook, the cost doubling with each cell).
    expect(later.map(c => c.headerLookups)).toEqual(later.map(() => 1));
    expect(cells.slice(0, 18).map(c => c.headerLookups)).toEqual(
      before.slice(0, 18)
    );
    const steps = cells
      .map(c => c.node.dataset.nb2pipeStep)
      .filter(s => s !== undefined);
    expect(steps).toContain('load');
    expect(steps).toContain('evaluate');
    badges.render();
    expect(later.map(c => c.headerLookups)).toEqual(later.map(() => 2));
  });

  it('open the options of the step when a step badge is clicked or Enter is pressed on it', async () => {
    const cells = Array.from({ length: 10 }, () => new FakeCell());
    cells.forEach(cell => cell.draw());
    const panel = {
      isDisposed: false,
      content: { widgets: cells },
      context: { ready: new Promise(() => undefined), path: 'churn.ipynb' },
      disposed: signal
    };
    const opened: string[] = [];
    const badges = new StepBadges(
      panel as unknown as NotebookPanel,
      Promise.resolve(grammar),
      step => opened.push(step)
    );
    await Promise.resolve();
    badges.analysis = analysis;
    badges.render();
    const first = cells[5].node.querySelector<HTMLElement>('.nb2pipe-badge');
    const joined = cells[6].node.querySelector<HTMLElement>('.nb2pipe-badge');
    expect(first?.textContent).toBe('step load');
    expect(first?.getAttribute('role')).toBe('button');
    expect(first?.tabIndex).toBe(0);
    first?.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    joined?.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    joined?.dispatchEvent(new KeyboardEvent('keydown', { key: 'a' }));
    expect(opened).toEqual(['load', 'load']);
  });
});

describe('what the pipeline is made of', () => {
  const cell = (source: string | string[], tags?: string[]): object => ({
    cell_type: 'code',
    source,
    metadata: tags ? { tags, collapsed: false } : {},
    outputs: [{ output_type: 'stream', text: 'x' }],
    execution_count: 3
  });
  const notebook = (
    cells: object[],
    kernel = 'python3'
  ): { [k: string]: unknown } => ({
    cells,
    metadata: {
      kernelspec: { name: kernel },
      language_info: { version: '3.11' }
    },
    nbformat: 4,
    nbformat_minor: 5
  });

  it("is the cells' kind, code and tags: not the kernel JupyterLab records, nor outputs", () => {
    const saved = pipelineSource(
      notebook([cell('a = 1', ['step:a']), cell('b = a')])
    );
    expect(
      pipelineSource(
        notebook(
          [
            cell(['a = ', '1'], ['step:a']),
            { ...(cell('b = a') as object), outputs: [], execution_count: null }
          ],
          'python3.11'
        )
      )
    ).toBe(saved);
    expect(
      pipelineSource(notebook([cell('a = 2', ['step:a']), cell('b = a')]))
    ).not.toBe(saved);
    expect(
      pipelineSource(notebook([cell('a = 1', ['step:b']), cell('b = a')]))
    ).not.toBe(saved);
    expect(pipelineSource(notebook([cell('a = 1', ['step:a'])]))).not.toBe(
      saved
    );
  });
});
