/**
 * Draws the step graph as SVG from the frontend's layout (layout.ts): steps in their colours,
 * edges with their variables, cycle edges marked; zoom (fit to width, in, out), a step's
 * edges highlighted on hover or focus, and run states shown by an icon and in words.
 */

import { applyColors, stepPalette, StepPalette } from './colors';
import {
  bestLayout,
  Box,
  browserMeasure,
  curvePath,
  Direction,
  fitScale,
  GraphInput,
  GraphLayout,
  ICON_SPACE,
  LINE_HEIGHT,
  Measure,
  NODE_PADDING,
  PlacedEdge,
  PlacedNode,
  Room
} from './layout';
import { plural, stateIcon, stateText } from './present';
import type { StepState } from './types';

const SVG = 'http://www.w3.org/2000/svg';
const ZOOM_STEP = 1.25;
const ZOOM_MIN = 0.1;
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
  drawArrowheads(element('defs', {}, svg));
  const edgeLayer = element('g', { class: 'nb2pipe-edges' }, svg);
  const labelLayer = element('g', { class: 'nb2pipe-edge-labels' }, svg);
  for (const edge of layout.edges) {
    const title = drawEdge(edge, layout.direction, edgeLayer);
    if (edge.labelBox) {
      drawEdgeLabel(edge, edge.labelBox, title, labelLayer);
    }
  }
  const nodeLayer = element('g', { class: 'nb2pipe-nodes' }, svg);
  const palette = stepPalette(layout.nodes.map(n => n.name));
  for (const node of layout.nodes) {
    const group = drawNode(node, palette, nodeLayer);
    listenToNode(svg, group, node.name, options);
  }
  return svg;
}

/** The two arrowheads the edges end with: a plain one and a cycle edge's. */
function drawArrowheads(defs: SVGDefsElement): void {
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
}

/** An edge's line with its title (which the label repeats); returns the title. */
function drawEdge(
  edge: PlacedEdge,
  direction: Direction,
  layer: SVGGElement
): SVGTitleElement {
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
    layer
  );
  const title = element('title', {}, group);
  title.textContent =
    `${edge.source} → ${edge.target}` +
    (edge.variables.length ? `: ${edge.variables.join(', ')}` : ' (after)') +
    (edge.cycle ? ' — part of a dependency cycle' : '');
  element(
    'path',
    {
      d: curvePath(edge.points, direction),
      class: edge.dashed
        ? 'nb2pipe-edge-line nb2pipe-mod-dashed'
        : 'nb2pipe-edge-line',
      'marker-end': `url(#${edge.cycle ? 'nb2pipe-arrow-cycle' : 'nb2pipe-arrow'})`
    },
    group
  );
  return title;
}

/** The boxed variable names of an edge, on their own layer above all edges. */
function drawEdgeLabel(
  edge: PlacedEdge,
  box: Box,
  title: SVGTitleElement,
  layer: SVGGElement
): void {
  const label = element(
    'g',
    {
      class: 'nb2pipe-edge-label-group',
      'data-source': edge.source,
      'data-target': edge.target
    },
    layer
  );
  element('rect', { ...box, rx: 3, class: 'nb2pipe-edge-label-box' }, label);
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

/** A step's box in its colours: stripe, run state icon and name; returns its group. */
function drawNode(
  node: PlacedNode,
  palette: StepPalette,
  layer: SVGGElement
): SVGGElement {
  const group = element(
    'g',
    {
      class: 'nb2pipe-node',
      'data-step': node.name,
      tabindex: 0,
      role: 'button',
      'aria-label': `step ${node.name}`
    },
    layer
  );
  applyColors(group, palette.colors(node.name));
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
  drawNodeName(node, group);
  return group;
}

/** A step's name beside its icon: one line, or two in a compact graph. */
function drawNodeName(node: PlacedNode, group: SVGGElement): void {
  const text = element(
    'text',
    {
      x: node.x + (node.width + ICON_SPACE) / 2,
      y: node.y + node.height / 2,
      class: 'nb2pipe-node-label'
    },
    group
  );
  // a long name is cut, or on two lines: the title holds the whole name
  node.lines.forEach((line, i) => {
    const offset = (i - (node.lines.length - 1) / 2) * LINE_HEIGHT;
    const span = element(
      'tspan',
      {
        x: node.x + (node.width + ICON_SPACE) / 2,
        dy: i ? LINE_HEIGHT : offset
      },
      text
    );
    span.textContent = line;
  });
}

/** A step opens on click or Enter, and its edges light up on hover or focus. */
function listenToNode(
  svg: SVGSVGElement,
  group: SVGGElement,
  name: string,
  options: GraphOptions
): void {
  if (options.onStep) {
    const onStep = options.onStep;
    group.addEventListener('click', () => onStep(name));
    group.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        onStep(name);
      }
    });
  }
  const highlight = (on: boolean): void => highlightStep(svg, name, on);
  group.addEventListener('mouseenter', () => highlight(true));
  group.addEventListener('mouseleave', () => highlight(false));
  group.addEventListener('focus', () => highlight(true));
  group.addEventListener('blur', () => highlight(false));
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

/** How much of the window's height the graph's frame may take. */
const FRAME_SHARE = 0.55;
const FRAME_MIN = 200;
const DRAG_PIXELS = 4; // a press that moves less is a click
const WHEEL_ZOOM = 0.0015; // per pixel of wheel (or pinch) travel

/**
 * The graph in a frame with zoom controls. "Fit" (until the user zooms) shows the whole graph:
 * it is scaled to the frame's width and to at most FRAME_SHARE of the window's height, and the
 * layout's direction is the one that fits largest. Zoomed in, dragging pans the graph;
 * Ctrl+wheel and a pinch zoom about the pointer.
 */
export class GraphView {
  readonly node: HTMLElement;
  private drawn: SVGSVGElement;
  private laidOut: GraphLayout;
  private zoom: number | 'fit' = 'fit';
  private states: Record<string, StepState | undefined> = {};
  private roomWidth: number;
  private readonly measure: Measure;
  private readonly frame: HTMLElement;
  private readonly level: HTMLElement;
  private readonly observer: ResizeObserver | null;
  private drag: { x: number; y: number; left: number; top: number } | null =
    null;
  private dragged = false;

  constructor(
    private readonly input: GraphInput,
    private readonly options: GraphOptions = {}
  ) {
    this.measure = options.measure ?? browserMeasure();
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
    button('Fit', 'Show the whole graph', () => this.setZoom('fit'));
    button('−', 'Zoom out (Ctrl+wheel)', () =>
      this.setZoom(this.scale() / ZOOM_STEP)
    );
    button('+', 'Zoom in (Ctrl+wheel)', () =>
      this.setZoom(this.scale() * ZOOM_STEP)
    );
    this.level = document.createElement('span');
    this.level.className = 'nb2pipe-zoom-level';
    controls.appendChild(this.level);
    this.frame = document.createElement('div');
    this.frame.className = 'nb2pipe-graph-frame';
    this.node.append(controls, this.frame);
    this.roomWidth = this.frame.clientWidth;
    this.laidOut = bestLayout(input, this.measure, this.room());
    this.drawn = this.draw();
    this.listen();
    this.observer =
      typeof ResizeObserver === 'undefined'
        ? null
        : new ResizeObserver(() => this.resized());
    this.observer?.observe(this.node);
    this.apply();
  }

  get layout(): GraphLayout {
    return this.laidOut;
  }

  get svg(): SVGSVGElement {
    return this.drawn;
  }

  /** The zoom the user chose ('fit' until they zoom). */
  get zoomLevel(): number | 'fit' {
    return this.zoom;
  }

  /** The room the whole graph has: the frame's width, a share of the window's height. */
  room(): Room {
    const height =
      typeof window === 'undefined' || !window.innerHeight
        ? 0
        : Math.max(FRAME_MIN, Math.round(window.innerHeight * FRAME_SHARE));
    return { width: this.frame.clientWidth, height };
  }

  /** The scale the picture is drawn at now. */
  scale(): number {
    return this.zoom === 'fit'
      ? fitScale(this.laidOut, this.room())
      : this.zoom;
  }

  setZoom(zoom: number | 'fit'): void {
    this.zoom =
      zoom === 'fit' ? 'fit' : Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, zoom));
    this.apply();
  }

  /** Shows each step's run state (kept across redraws). */
  showStates(states: Record<string, StepState | undefined>): void {
    this.states = states;
    showStates(this.drawn, states);
  }

  dispose(): void {
    this.observer?.disconnect();
  }

  private draw(): SVGSVGElement {
    const svg = drawGraph(this.laidOut, this.options);
    showStates(svg, this.states);
    this.frame.replaceChildren(svg);
    return svg;
  }

  /** A new width may call for the other direction; either way the picture is scaled anew. */
  private resized(): void {
    const width = this.frame.clientWidth;
    if (!width) {
      return; // hidden (another notebook's view, a closed sidebar): nothing to fit
    }
    if (width !== this.roomWidth && this.zoom === 'fit') {
      this.roomWidth = width;
      const best = bestLayout(this.input, this.measure, this.room());
      if (
        best.direction !== this.laidOut.direction ||
        best.density !== this.laidOut.density
      ) {
        this.laidOut = best;
        this.drawn = this.draw();
      }
    }
    this.apply();
  }

  private apply(): void {
    const scale = this.scale();
    const width = Math.round(this.laidOut.width * scale);
    const height = Math.round(this.laidOut.height * scale);
    this.drawn.setAttribute('width', String(width));
    this.drawn.setAttribute('height', String(height));
    const limit = this.room().height;
    this.frame.style.height = limit
      ? `${Math.min(height, limit) + (width > this.frame.clientWidth ? 12 : 0)}px`
      : '';
    this.level.textContent = `${Math.round(scale * 100)}%`;
    this.node.dataset.zoom = this.zoom === 'fit' ? 'fit' : String(scale);
    this.node.dataset.direction = this.laidOut.direction;
    this.node.dataset.density = this.laidOut.density;
  }

  /** Drag pans, Ctrl+wheel (a pinch, on a touchpad) zooms about the pointer. */
  private listen(): void {
    const frame = this.frame;
    frame.addEventListener('pointerdown', event => {
      if (event.button === 0) {
        this.drag = {
          x: event.clientX,
          y: event.clientY,
          left: frame.scrollLeft,
          top: frame.scrollTop
        };
        this.dragged = false;
      }
    });
    frame.addEventListener('pointermove', event => {
      const drag = this.drag;
      if (!drag) {
        return;
      }
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (!this.dragged && Math.hypot(dx, dy) < DRAG_PIXELS) {
        return;
      }
      if (!this.dragged) {
        this.dragged = true;
        frame.classList.add('nb2pipe-mod-panning');
        frame.setPointerCapture?.(event.pointerId);
      }
      frame.scrollLeft = drag.left - dx;
      frame.scrollTop = drag.top - dy;
    });
    const release = (): void => {
      this.drag = null;
      frame.classList.remove('nb2pipe-mod-panning');
    };
    frame.addEventListener('pointerup', release);
    frame.addEventListener('pointercancel', release);
    // a drag that ends on a step does not select it
    frame.addEventListener(
      'click',
      event => {
        if (this.dragged) {
          event.stopPropagation();
          event.preventDefault();
          this.dragged = false;
        }
      },
      true
    );
    frame.addEventListener(
      'wheel',
      event => {
        if (!event.ctrlKey && !event.metaKey) {
          return; // the wheel alone scrolls the panel
        }
        event.preventDefault();
        const before = this.scale();
        const box = this.drawn.getBoundingClientRect();
        const gx = (event.clientX - box.left) / before;
        const gy = (event.clientY - box.top) / before;
        this.setZoom(before * Math.exp(-event.deltaY * WHEEL_ZOOM));
        const after = this.scale();
        const moved = this.drawn.getBoundingClientRect();
        frame.scrollLeft += moved.left + gx * after - event.clientX;
        frame.scrollTop += moved.top + gy * after - event.clientY;
      },
      { passive: false }
    );
  }
}
