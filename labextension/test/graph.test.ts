import * as fs from 'fs';
import * as path from 'path';

import { curvePath, drawGraph, showStates } from '../src/graph';
import type { Analysis } from '../src/types';

const churn: Analysis = JSON.parse(
  fs.readFileSync(
    path.join(__dirname, 'fixtures', 'analysis-churn.json'),
    'utf-8'
  )
);

describe('the graph picture', () => {
  it('draws one node per step and one labelled curve per edge, where the server placed them', () => {
    const svg = drawGraph(churn.layout);
    const nodes = Array.from(
      svg.querySelectorAll<SVGGElement>('g.nb2pipe-node')
    );
    expect(nodes.map(n => n.dataset.step)).toEqual(
      churn.check.steps.map(s => s.name)
    );
    const load = churn.layout.nodes[0];
    const rect = nodes[0].querySelector('rect');
    expect(rect?.getAttribute('x')).toBe(String(load.x));
    expect(svg.getAttribute('width')).toBe(String(churn.layout.width));
    const edges = svg.querySelectorAll('g.nb2pipe-edge');
    expect(edges).toHaveLength(churn.check.edges.length);
    const labels = Array.from(
      svg.querySelectorAll('text.nb2pipe-edge-label')
    ).map(t => t.textContent);
    expect(labels).toContain('df');
    expect(labels).toContain('X_train, y_train');
  });

  it('reports clicks on a step by name', () => {
    const clicked: string[] = [];
    const svg = drawGraph(churn.layout, { onStep: name => clicked.push(name) });
    svg
      .querySelector<SVGGElement>('g[data-step="clean"]')
      ?.dispatchEvent(new MouseEvent('click'));
    expect(clicked).toEqual(['clean']);
  });

  it('shows run states and clears them', () => {
    const svg = drawGraph(churn.layout);
    showStates(svg, { load: 'completed', clean: 'running' });
    expect(svg.querySelector('g[data-step="load"]')?.classList).toContain(
      'nb2pipe-state-completed'
    );
    showStates(svg, { load: 'failed' });
    const load = svg.querySelector('g[data-step="load"]');
    expect(Array.from(load?.classList ?? [])).toEqual([
      'nb2pipe-node',
      'nb2pipe-state-failed'
    ]);
    expect(
      svg.querySelector('g[data-step="clean"]')?.getAttribute('class')
    ).toBe('nb2pipe-node');
  });

  it('writes joined cubic curves and refuses another shape', () => {
    const points: [number, number][] = [
      [0, 0],
      [0, 5],
      [10, 5],
      [10, 10]
    ];
    expect(curvePath(points)).toBe('M 0 0 C 0 5, 10 5, 10 10');
    const longer: [number, number][] = [
      ...points,
      [10, 12],
      [10, 18],
      [10, 20]
    ];
    expect(curvePath(longer)).toBe(
      'M 0 0 C 0 5, 10 5, 10 10 C 10 12, 10 18, 10 20'
    );
    expect(() => curvePath(points.slice(1))).toThrow(/1 \+ 3k points, not 3/);
  });
});
