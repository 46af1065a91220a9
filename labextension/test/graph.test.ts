import * as fs from 'fs';
import * as path from 'path';

import { drawGraph, GraphView, highlightStep, showStates } from '../src/graph';
import {
  bestLayout,
  Box,
  curvePath,
  edgeLabel,
  fitScale,
  GraphInput,
  layoutGraph,
  Measure,
  nameLines,
  overlaps,
  READABLE_SCALE
} from '../src/layout';
import type { Analysis } from '../src/types';

function analysis(name: string): Analysis {
  return JSON.parse(
    fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf-8')
  );
}

/** A monospace font: 7 px a character in nodes, 6.5 in labels. */
const measure: Measure = (text, kind) =>
  text.length * (kind === 'node' ? 7 : 6.5);

function input(doc: Analysis): GraphInput {
  return {
    steps: doc.check.steps.map(s => s.name),
    edges: doc.check.edges,
    cycles: doc.cycle_edges
  };
}

/** Twelve steps in a fan-out and fan-in, with long edge labels. */
const wide: GraphInput = {
  steps: [
    'load',
    ...Array.from({ length: 10 }, (_, i) => `feature_${i}`),
    'report'
  ],
  edges: [
    ...Array.from({ length: 10 }, (_, i) => ({
      source: 'load',
      target: `feature_${i}`,
      variables: ['X_train', 'y_train', 'X_test', 'y_test']
    })),
    ...Array.from({ length: 10 }, (_, i) => ({
      source: `feature_${i}`,
      target: 'report',
      variables: [`score_${i}`]
    }))
  ],
  cycles: []
};

describe('the graph layout', () => {
  const churn = analysis('analysis-churn.json');

  it('places every step and routes every edge from its source to its target', () => {
    const layout = layoutGraph(input(churn), measure);
    expect(layout.nodes.map(n => n.name)).toEqual(
      churn.check.steps.map(s => s.name)
    );
    const byName = new Map(layout.nodes.map(n => [n.name, n]));
    for (const edge of layout.edges) {
      const source = byName.get(edge.source) as Box;
      const target = byName.get(edge.target) as Box;
      const [sx, sy] = edge.points[0];
      const [tx, ty] = edge.points[edge.points.length - 1];
      expect(sy).toBeCloseTo(source.y + source.height, 0);
      expect(ty).toBeCloseTo(target.y, 0);
      expect(sx).toBeGreaterThan(source.x);
      expect(sx).toBeLessThan(source.x + source.width);
      expect(tx).toBeGreaterThan(target.x);
      expect(tx).toBeLessThan(target.x + target.width);
    }
  });

  it('sizes nodes and labels by the measured text, and nothing overlaps', () => {
    for (const graph of [input(churn), wide]) {
      const layout = layoutGraph(graph, measure);
      const boxes: Box[] = [
        ...layout.nodes,
        ...layout.edges.flatMap(e => (e.labelBox ? [e.labelBox] : []))
      ];
      boxes.forEach((a, i) => {
        expect(a.x).toBeGreaterThanOrEqual(0);
        expect(a.x + a.width).toBeLessThanOrEqual(layout.width);
        boxes.slice(i + 1).forEach(b => expect(overlaps(a, b)).toBe(false));
      });
      for (const node of layout.nodes) {
        expect(node.width).toBeGreaterThanOrEqual(measure(node.name, 'node'));
      }
    }
  });

  it('gives every edge into a step its own end point (its own arrowhead)', () => {
    const layout = layoutGraph(wide, measure);
    const ends = layout.edges
      .filter(e => e.target === 'report')
      .map(e => e.points[e.points.length - 1][0]);
    expect(new Set(ends).size).toBe(10);
    const starts = layout.edges
      .filter(e => e.source === 'load')
      .map(e => e.points[0][0]);
    expect(new Set(starts).size).toBe(10);
  });

  it('lays a wide fan-out left to right when top to bottom does not fit the room', () => {
    const chain = input(churn);
    expect(
      bestLayout(chain, measure, { width: 2000, height: 2000 }).direction
    ).toBe('TB');
    const down = layoutGraph(wide, measure, 'TB');
    const across = bestLayout(wide, measure, { width: 500, height: 1500 });
    expect(across.direction).toBe('LR');
    expect(across.width).toBeLessThan(down.width);
    const byName = new Map(across.nodes.map(n => [n.name, n]));
    const report = byName.get('report') as Box;
    const ends = across.edges
      .filter(e => e.target === 'report')
      .map(e => e.points[e.points.length - 1]);
    for (const [x] of ends) {
      expect(x).toBeCloseTo(report.x, 0); // entering from the left side
    }
    expect(new Set(ends.map(([, y]) => y)).size).toBe(10);
    const boxes: Box[] = [
      ...across.nodes,
      ...across.edges.flatMap(e => (e.labelBox ? [e.labelBox] : []))
    ];
    boxes.forEach((a, i) =>
      boxes.slice(i + 1).forEach(b => expect(overlaps(a, b)).toBe(false))
    );
    expect(
      curvePath(
        [
          [0, 0],
          [20, 10]
        ],
        'LR'
      )
    ).toBe('M 0 0 C 10 0, 10 10, 20 10');
  });

  it('marks the edges of a cycle', () => {
    const graph: GraphInput = {
      steps: ['one', 'two', 'three'],
      edges: [
        { source: 'one', target: 'two', variables: ['a'] },
        { source: 'two', target: 'one', variables: [] },
        { source: 'two', target: 'three', variables: ['b'] }
      ],
      cycles: [
        ['one', 'two'],
        ['two', 'one']
      ]
    };
    const layout = layoutGraph(graph, measure);
    expect(
      layout.edges.map(e => [e.source, e.target, e.cycle, e.dashed])
    ).toEqual([
      ['one', 'two', true, false],
      ['two', 'one', true, true],
      ['two', 'three', false, false]
    ]);
    const svg = drawGraph(layout);
    expect(
      svg.querySelectorAll('g.nb2pipe-edge.nb2pipe-mod-cycle')
    ).toHaveLength(2);
  });

  it('shows at most three variables on a label', () => {
    expect(edgeLabel(['a'])).toBe('a');
    expect(edgeLabel(['a', 'b', 'c'])).toBe('a, b, c');
    expect(edgeLabel(['a', 'b', 'c', 'd', 'e'])).toBe('a, b, c, +2');
    expect(edgeLabel([])).toBe('');
  });

  it('draws curves through the route', () => {
    expect(
      curvePath([
        [0, 0],
        [10, 20]
      ])
    ).toBe('M 0 0 C 0 10, 10 10, 10 20');
    expect(
      curvePath([
        [0, 0],
        [10, 20],
        [10, 40]
      ])
    ).toBe('M 0 0 C 0 10, 10 10, 10 20 C 10 30, 10 30, 10 40');
    expect(() => curvePath([[0, 0]])).toThrow(/2 points or more, not 1/);
  });
});

describe('the graph picture', () => {
  const churn = analysis('analysis-churn.json');

  it('draws one node per step and one labelled curve per edge, with an accessible name', () => {
    const layout = layoutGraph(input(churn), measure);
    const svg = drawGraph(layout);
    const nodes = Array.from(
      svg.querySelectorAll<SVGGElement>('g.nb2pipe-node')
    );
    expect(nodes.map(n => n.dataset.step)).toEqual(
      churn.check.steps.map(s => s.name)
    );
    expect(svg.getAttribute('aria-label')).toBe(
      'Dependency graph: 7 steps, 10 edges'
    );
    expect(svg.querySelectorAll('g.nb2pipe-edge')).toHaveLength(10);
    const labels = Array.from(
      svg.querySelectorAll('text.nb2pipe-edge-label')
    ).map(t => t.textContent);
    expect(labels).toContain('df');
    expect(labels).toContain('X_train, y_train');
    // each step's colour comes from its name
    expect(nodes[0].style.getPropertyValue('--nb2pipe-step-light')).toMatch(
      /^#[0-9a-f]{6}$/
    );
  });

  it('acts on a click and on Enter', () => {
    const clicked: string[] = [];
    const svg = drawGraph(layoutGraph(input(churn), measure), {
      onStep: name => clicked.push(name)
    });
    const clean = svg.querySelector<SVGGElement>('g[data-step="clean"]');
    clean?.dispatchEvent(new MouseEvent('click'));
    clean?.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    clean?.dispatchEvent(new KeyboardEvent('keydown', { key: 'a' }));
    expect(clicked).toEqual(['clean', 'clean']);
  });

  it('highlights the edges of a step and dims the others', () => {
    const svg = drawGraph(layoutGraph(input(churn), measure));
    highlightStep(svg, 'clean', true);
    const marked = Array.from(
      svg.querySelectorAll<SVGGElement>('g.nb2pipe-edge.nb2pipe-mod-highlight')
    ).map(g => `${g.dataset.source}->${g.dataset.target}`);
    expect(marked.sort()).toEqual(['clean->features', 'load->clean']);
    expect(svg.classList).toContain('nb2pipe-mod-highlighting');
    highlightStep(svg, 'clean', false);
    expect(svg.querySelectorAll('.nb2pipe-mod-highlight')).toHaveLength(0);
  });

  it('shows run states by icon and in words, and clears them', () => {
    const svg = drawGraph(layoutGraph(input(churn), measure));
    showStates(svg, { load: 'completed', clean: 'running' });
    const load = svg.querySelector<SVGGElement>('g[data-step="load"]');
    expect(load?.classList).toContain('nb2pipe-state-completed');
    expect(load?.querySelector('.nb2pipe-node-icon')?.textContent).toBe('✓');
    expect(load?.getAttribute('aria-label')).toBe('step load: completed');
    showStates(svg, { load: 'failed' });
    expect(Array.from(load?.classList ?? [])).toEqual([
      'nb2pipe-node',
      'nb2pipe-state-failed'
    ]);
    const clean = svg.querySelector('g[data-step="clean"]');
    expect(clean?.getAttribute('class')).toBe('nb2pipe-node');
    expect(clean?.querySelector('.nb2pipe-node-icon')?.textContent).toBe('');
  });

  it('zooms in and out and fits again', () => {
    const view = new GraphView(input(churn), { measure });
    const width = (): number => Number(view.svg.getAttribute('width'));
    expect(width()).toBe(view.layout.width); // no frame width known: full size
    view.setZoom(2);
    expect(width()).toBe(Math.round(view.layout.width * 2));
    view.setZoom(100);
    expect(view.scale()).toBe(3);
    view.setZoom('fit');
    expect(view.node.dataset.zoom).toBe('fit');
    view.dispose();
  });
});

/** A fan-out of `count` steps between a source and a sink; one name far too long to draw. */
function fanOut(count: number): GraphInput {
  const middle = Array.from({ length: count - 2 }, (_, i) =>
    i === 3
      ? 'gridsearchcv_evaluating_multiple_scorers_with_repeated_folds'
      : `feature_${i}`
  );
  return {
    steps: ['load', ...middle, 'report'],
    edges: [
      ...middle.map(m => ({ source: 'load', target: m, variables: ['df'] })),
      ...middle.map(m => ({
        source: m,
        target: 'report',
        variables: [`${m}_score`]
      }))
    ],
    cycles: []
  };
}

/** A frame of the given width (jsdom lays nothing out) in a window of the given height. */
function framed(view: GraphView, width: number, height: number): void {
  const frame = view.node.querySelector('.nb2pipe-graph-frame') as HTMLElement;
  Object.defineProperty(frame, 'clientWidth', {
    value: width,
    configurable: true
  });
  Object.defineProperty(window, 'innerHeight', {
    value: height,
    configurable: true
  });
  view.setZoom('fit');
}

describe('fitting the graph', () => {
  const churn = analysis('analysis-churn.json');
  const room = { width: 276, height: 385 }; // the panel at 1024x700

  it('shows the whole graph at any size: 40 steps in a 276 px frame', () => {
    for (const count of [7, 15, 40]) {
      const layout = bestLayout(fanOut(count), measure, room);
      const scale = fitScale(layout, room);
      expect(layout.width * scale).toBeLessThanOrEqual(room.width + 0.5);
      expect(layout.height * scale).toBeLessThanOrEqual(room.height + 0.5);
    }
    const view = new GraphView(fanOut(40), { measure });
    framed(view, 276, 700);
    expect(Number(view.svg.getAttribute('width'))).toBeLessThanOrEqual(276);
    expect(Number(view.svg.getAttribute('height'))).toBeLessThanOrEqual(385);
    view.dispose();
  });

  it('keeps the labels readable where the room allows: churn at 1024 px', () => {
    const layout = bestLayout(input(churn), measure, room);
    expect(fitScale(layout, room)).toBeGreaterThanOrEqual(READABLE_SCALE);
    expect(layout.density).toBe('compact'); // names on two lines, variables on hover
    const wide = bestLayout(input(churn), measure, {
      width: 1000,
      height: 800
    });
    expect(wide.density).toBe('full');
    expect(fitScale(wide, { width: 1000, height: 800 })).toBe(1);
  });

  it('cuts long names and keeps the whole name in the tooltip', () => {
    expect(nameLines('train_boosting')).toEqual(['train_', 'boosting']);
    expect(nameLines('evaluate')).toEqual(['evaluate']);
    expect(nameLines('gridsearchcv_evaluating_multiple')).toEqual([
      'gridsearc',
      'hcv_eval…'
    ]);
    const layout = layoutGraph(fanOut(7), measure);
    const long = layout.nodes.find(n => n.name.startsWith('gridsearchcv'));
    expect(long?.lines).toEqual(['gridsearchcv_evaluati…']);
    const svg = drawGraph(layout);
    const group = svg.querySelector(`g[data-step="${long?.name}"]`);
    expect(group?.querySelector('title')?.textContent).toBe(
      `step ${long?.name}: select its first cell`
    );
    expect(group?.querySelector('.nb2pipe-node-label')?.textContent).toBe(
      'gridsearchcv_evaluati…'
    );
  });

  it('zooms with Ctrl+wheel (a pinch) and leaves the plain wheel to scroll the panel', () => {
    const view = new GraphView(input(churn), { measure });
    framed(view, 276, 700);
    const fit = view.scale();
    const frame = view.node.querySelector(
      '.nb2pipe-graph-frame'
    ) as HTMLElement;
    const plain = new WheelEvent('wheel', { deltaY: -100, cancelable: true });
    frame.dispatchEvent(plain);
    expect(view.scale()).toBe(fit);
    expect(plain.defaultPrevented).toBe(false);
    const pinch = new WheelEvent('wheel', {
      deltaY: -100,
      ctrlKey: true,
      cancelable: true
    });
    frame.dispatchEvent(pinch);
    expect(pinch.defaultPrevented).toBe(true);
    expect(view.scale()).toBeGreaterThan(fit);
    expect(view.zoomLevel).not.toBe('fit');
    view.dispose();
  });
});
