/**
 * Draws the step graph as SVG from the frontend's layout (layout.ts): steps in their colours,
 * edges with their variables, cycle edges marked; zoom (fit to width, in, out), a step's
 * edges highlighted on hover or focus, and run states shown by an icon and in words.
 */

import { applyColors } from './colors';
import {
  bestLayout,
  browserMeasure,
  curvePath,
  GraphInput,
  GraphLayout,
  ICON_SPACE,
  Measure,
  NODE_PADDING
} from './layout';
import { plural, stateIcon, stateText } from './present';
import type { StepState } from './types';

const SVG = 'http://www.w3.org/2000/svg';
const ZOOM_STEP = 1.25;
const ZOOM_MIN = 0.25;
const FIT_MIN = 0.6; // fitting stops here: smaller text is not read, the frame scrolls
const ZOOM_MAX = 3;

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

export interface GraphOptions {
  /** Called with the step name when a step is clicked, or Enter is pressed on it. */
  onStep?: (name: string) => void;
  measure?: Measure;
}

/** The SVG picture of a layout; no layout logic here. */
export function drawGraph(
  layout: GraphLayout,
  options: GraphOptions = {}
): SVGSVGElement {
  const svg = element('svg', {
    class: 'nb2pipe-graph',
    width: layout.width,
    height: layout.height,
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    role: 'group',
    'aria-label':
      `Dependency graph: ${plural(layout.nodes.length, 'step')}, ` +
      `${plural(layout.edges.length, 'edge')}`
  });
  const defs = element('defs', {}, svg);
  for (const [id, kind] of [
    ['nb2pipe-arrow', 'nb2pipe-arrowhead'],
    ['nb2pipe-arrow-cycle', 'nb2pipe-arrowhead nb2pipe-mod-cycle']
  ]) {
    const marker = element(
      'marker',
      {
        id,
        viewBox: '0 0 10 10',
        refX: 9,
        refY: 5,
        markerWidth: 7,
        markerHeight: 7,
        markerUnits: 'userSpaceOnUse',
        orient: 'auto-start-reverse'
      },
      defs
    );
    element('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: kind }, marker);
  }

  const edgeLayer = element('g', { class: 'nb2pipe-edges' }, svg);
  const labelLayer = element('g', { class: 'nb2pipe-edge-labels' }, svg);
  for (const edge of layout.edges) {
    const classes = ['nb2pipe-edge'];
    if (edge.cycle) {
      classes.push('nb2pipe-mod-cycle');
    }
    const group = element(
      'g',
      {
        class: classes.join(' '),
        'data-source': edge.source,
        'data-target': edge.target
      },
      edgeLayer
    );
    const title = element('title', {}, group);
    title.textContent =
      `${edge.source} → ${edge.target}` +
      (edge.variables.length ? `: ${edge.variables.join(', ')}` : ' (after)') +
      (edge.cycle ? ' — part of a dependency cycle' : '');
    element(
      'path',
      {
        d: curvePath(edge.points, layout.direction),
        class: edge.dashed
          ? 'nb2pipe-edge-line nb2pipe-mod-dashed'
          : 'nb2pipe-edge-line',
        'marker-end': `url(#${edge.cycle ? 'nb2pipe-arrow-cycle' : 'nb2pipe-arrow'})`
      },
      group
    );
    if (edge.labelBox) {
      const box = edge.labelBox;
      const label = element(
        'g',
        {
          class: 'nb2pipe-edge-label-group',
          'data-source': edge.source,
          'data-target': edge.target
        },
        labelLayer
      );
      element(
        'rect',
        { ...box, rx: 3, class: 'nb2pipe-edge-label-box' },
        label
      );
      const text = element(
        'text',
        {
          x: box.x + box.width / 2,
          y: box.y + box.height / 2,
          class: 'nb2pipe-edge-label'
        },
        label
      );
      text.textContent = edge.label;
      const tip = element('title', {}, label);
      tip.textContent = title.textContent;
    }
  }

  const nodeLayer = element('g', { class: 'nb2pipe-nodes' }, svg);
  for (const node of layout.nodes) {
    const group = element(
      'g',
      {
        class: 'nb2pipe-node',
        'data-step': node.name,
        tabindex: 0,
        role: 'button',
        'aria-label': `step ${node.name}`
      },
      nodeLayer
    );
    applyColors(group, node.name);
    const title = element('title', {}, group);
    title.textContent = `step ${node.name}: select its first cell`;
    element(
      'rect',
      {
        x: node.x,
        y: node.y,
        width: node.width,
        height: node.height,
        rx: 6,
        class: 'nb2pipe-node-box'
      },
      group
    );
    element(
      'rect',
      {
        x: node.x,
        y: node.y,
        width: 5,
        height: node.height,
        rx: 2,
        class: 'nb2pipe-node-stripe'
      },
      group
    );
    const icon = element(
      'text',
      {
        x: node.x + NODE_PADDING / 2 + ICON_SPACE / 2,
        y: node.y + node.height / 2,
        class: 'nb2pipe-node-icon',
        'aria-hidden': 'true'
      },
      group
    );
    icon.textContent = '';
    const text = element(
      'text',
      {
        x: node.x + (node.width + ICON_SPACE) / 2,
        y: node.y + node.height / 2,
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
          event.preventDefault();
          onStep(node.name);
        }
      });
    }
    const highlight = (on: boolean): void => highlightStep(svg, node.name, on);
    group.addEventListener('mouseenter', () => highlight(true));
    group.addEventListener('mouseleave', () => highlight(false));
    group.addEventListener('focus', () => highlight(true));
    group.addEventListener('blur', () => highlight(false));
  }
  return svg;
}

/** Marks the edges of a step (and dims the rest), or clears the marks. */
export function highlightStep(
  svg: SVGSVGElement,
  name: string,
  on: boolean
): void {
  svg.classList.toggle('nb2pipe-mod-highlighting', on);
  svg
    .querySelectorAll<SVGGElement>('g.nb2pipe-edge, g.nb2pipe-edge-label-group')
    .forEach(edge => {
      const mine = edge.dataset.source === name || edge.dataset.target === name;
      edge.classList.toggle('nb2pipe-mod-highlight', on && mine);
    });
  svg.querySelectorAll<SVGGElement>('g.nb2pipe-node').forEach(node => {
    node.classList.toggle(
      'nb2pipe-mod-highlight',
      on && node.dataset.step === name
    );
  });
}

/** Shows each step's run state (an icon, and in words for assistive technology and the
 * tooltip), or clears it. */
export function showStates(
  svg: SVGSVGElement,
  states: Record<string, StepState | undefined>
): void {
  svg.querySelectorAll<SVGGElement>('g.nb2pipe-node').forEach(group => {
    const name = group.dataset.step ?? '';
    const state = states[name];
    for (const cls of Array.from(group.classList)) {
      if (cls.startsWith('nb2pipe-state-')) {
        group.classList.remove(cls);
      }
    }
    const icon = group.querySelector('.nb2pipe-node-icon');
    if (icon) {
      icon.textContent = state ? stateIcon(state) : '';
    }
    group.setAttribute(
      'aria-label',
      state ? `step ${name}: ${stateText(state)}` : `step ${name}`
    );
    const title = group.querySelector('title');
    if (title) {
      title.textContent = state
        ? `step ${name}: ${stateText(state)}`
        : `step ${name}: select its first cell`;
    }
    if (state) {
      group.classList.add(`nb2pipe-state-${state}`);
    }
  });
}

/**
 * The graph in a frame with zoom controls: it fits the frame's width until the user zooms;
 * "Fit" returns to that.
 */
export class GraphView {
  readonly node: HTMLElement;
  readonly svg: SVGSVGElement;
  readonly layout: GraphLayout;
  private zoom: number | 'fit' = 'fit';
  private readonly frame: HTMLElement;
  private readonly level: HTMLElement;
  private readonly observer: ResizeObserver | null;

  /** `room`: the width the graph has (the panel's), to choose its direction. */
  constructor(input: GraphInput, options: GraphOptions = {}, room = Infinity) {
    this.layout = bestLayout(input, options.measure ?? browserMeasure(), room);
    this.svg = drawGraph(this.layout, options);
    this.node = document.createElement('div');
    this.node.className = 'nb2pipe-graph-view';
    const controls = document.createElement('div');
    controls.className = 'nb2pipe-graph-controls';
    controls.setAttribute('role', 'toolbar');
    controls.setAttribute('aria-label', 'Graph zoom');
    const button = (text: string, label: string, act: () => void): void => {
      const b = document.createElement('button');
      b.className = 'jp-mod-styled nb2pipe-zoom';
      b.textContent = text;
      b.title = label;
      b.setAttribute('aria-label', label);
      b.addEventListener('click', act);
      controls.appendChild(b);
    };
    button('Fit', 'Fit the graph to the panel width', () =>
      this.setZoom('fit')
    );
    button('−', 'Zoom out', () => this.setZoom(this.scale() / ZOOM_STEP));
    button('+', 'Zoom in', () => this.setZoom(this.scale() * ZOOM_STEP));
    this.level = document.createElement('span');
    this.level.className = 'nb2pipe-zoom-level';
    controls.appendChild(this.level);
    this.frame = document.createElement('div');
    this.frame.className = 'nb2pipe-graph-frame';
    this.frame.appendChild(this.svg);
    this.node.append(controls, this.frame);
    this.observer =
      typeof ResizeObserver === 'undefined'
        ? null
        : new ResizeObserver(() => this.apply());
    this.observer?.observe(this.frame);
    this.apply();
  }

  /** The zoom the user chose ('fit' until they zoom). */
  get zoomLevel(): number | 'fit' {
    return this.zoom;
  }

  /** The scale the picture is drawn at now. */
  scale(): number {
    if (this.zoom !== 'fit') {
      return this.zoom;
    }
    const room = this.frame.clientWidth;
    return room > 0 && this.layout.width > room
      ? Math.max(FIT_MIN, room / this.layout.width)
      : 1;
  }

  setZoom(zoom: number | 'fit'): void {
    this.zoom =
      zoom === 'fit' ? 'fit' : Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, zoom));
    this.apply();
  }

  private apply(): void {
    const scale = this.scale();
    this.svg.setAttribute(
      'width',
      String(Math.round(this.layout.width * scale))
    );
    this.svg.setAttribute(
      'height',
      String(Math.round(this.layout.height * scale))
    );
    this.level.textContent = `${Math.round(scale * 100)}%`;
    this.node.dataset.zoom = this.zoom === 'fit' ? 'fit' : String(scale);
    this.node.dataset.direction = this.layout.direction;
  }

  dispose(): void {
    this.observer?.disconnect();
  }
}
