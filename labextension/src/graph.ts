/** Draws the step graph as SVG from the layout the server computed; no layout logic here. */

import type { Layout, StepState } from './types';
import { stepColor } from './present';

const SVG = 'http://www.w3.org/2000/svg';

function element<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  parent?: Element
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value));
  }
  parent?.appendChild(node);
  return node;
}

/** The SVG path of joined cubic curves: a start point, then (control, control, end) triples. */
export function curvePath(
  points: readonly (readonly [number, number])[]
): string {
  if (points.length < 4 || (points.length - 1) % 3 !== 0) {
    throw new Error(`an edge curve has 1 + 3k points, not ${points.length}`);
  }
  const [start, ...rest] = points;
  const segments: string[] = [];
  for (let i = 0; i < rest.length; i += 3) {
    const [c1, c2, end] = rest.slice(i, i + 3);
    segments.push(
      `C ${c1[0]} ${c1[1]}, ${c2[0]} ${c2[1]}, ${end[0]} ${end[1]}`
    );
  }
  return `M ${start[0]} ${start[1]} ${segments.join(' ')}`;
}

export interface GraphOptions {
  /** Called with the step name when a node is clicked. */
  onStep?: (name: string) => void;
}

export function drawGraph(
  layout: Layout,
  options: GraphOptions = {}
): SVGSVGElement {
  const svg = element('svg', {
    class: 'nb2pipe-graph',
    width: layout.width,
    height: layout.height,
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    role: 'img'
  });
  const defs = element('defs', {}, svg);
  const marker = element(
    'marker',
    {
      id: 'nb2pipe-arrow',
      viewBox: '0 0 10 10',
      refX: 10,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: 'auto-start-reverse'
    },
    defs
  );
  element(
    'path',
    { d: 'M 0 0 L 10 5 L 0 10 z', class: 'nb2pipe-arrowhead' },
    marker
  );

  for (const edge of layout.edges) {
    const group = element(
      'g',
      {
        class: 'nb2pipe-edge',
        'data-source': edge.source,
        'data-target': edge.target
      },
      svg
    );
    const title = element('title', {}, group);
    title.textContent =
      `${edge.source} → ${edge.target}` +
      (edge.variables.length ? `: ${edge.variables.join(', ')}` : ' (after)');
    element(
      'path',
      {
        d: curvePath(edge.points),
        class: edge.dashed
          ? 'nb2pipe-edge-line nb2pipe-mod-dashed'
          : 'nb2pipe-edge-line',
        'marker-end': 'url(#nb2pipe-arrow)'
      },
      group
    );
    if (edge.label_box) {
      const box = edge.label_box;
      element(
        'rect',
        { ...box, rx: 3, class: 'nb2pipe-edge-label-box' },
        group
      );
      const text = element(
        'text',
        {
          x: box.x + box.width / 2,
          y: box.y + box.height / 2,
          'font-size': layout.label_font,
          class: 'nb2pipe-edge-label'
        },
        group
      );
      text.textContent = edge.label;
    }
  }

  layout.nodes.forEach((node, index) => {
    const group = element(
      'g',
      {
        class: 'nb2pipe-node',
        'data-step': node.name,
        tabindex: 0,
        role: 'button'
      },
      svg
    );
    const title = element('title', {}, group);
    title.textContent = `step ${node.name}: click to select cell ${node.first_cell}`;
    element(
      'rect',
      {
        x: node.x,
        y: node.y,
        width: node.width,
        height: node.height,
        rx: 6,
        style: `--nb2pipe-step-color: ${stepColor(index)}`,
        class: 'nb2pipe-node-box'
      },
      group
    );
    const text = element(
      'text',
      {
        x: node.x + node.width / 2,
        y: node.y + node.height / 2,
        'font-size': layout.node_font,
        class: 'nb2pipe-node-label'
      },
      group
    );
    text.textContent = node.name;
    if (options.onStep) {
      const onStep = options.onStep;
      group.addEventListener('click', () => onStep(node.name));
      group.addEventListener('keydown', event => {
        if (event.key === 'Enter' || event.key === ' ') {
          onStep(node.name);
        }
      });
    }
  });
  return svg;
}

/** Marks each node with its run state (a CSS class), or clears it. */
export function showStates(
  svg: SVGSVGElement,
  states: Record<string, StepState | undefined>
): void {
  svg.querySelectorAll<SVGGElement>('g.nb2pipe-node').forEach(group => {
    const state = states[group.dataset.step ?? ''];
    for (const name of Array.from(group.classList)) {
      if (name.startsWith('nb2pipe-state-')) {
        group.classList.remove(name);
      }
    }
    if (state) {
      group.classList.add(`nb2pipe-state-${state}`);
    }
  });
}
