/**
 * The step graph's picture: dagre places the steps and routes the edges, with boxes sized by
 * the text as the browser measures it, so labels never overlap steps or each other. Each edge
 * leaves and enters its steps at a point of its own, so every edge keeps its arrowhead.
 */

import { graphlib, layout as dagreLayout } from '@dagrejs/dagre';
import type { EdgeLabel, GraphLabel, NodeLabel } from '@dagrejs/dagre';

export const NODE_HEIGHT = 32;
export const NODE_PADDING = 12; // each side of the name
export const ICON_SPACE = 18; // room for the run state's icon, left of the name
export const NODE_MIN_WIDTH = 72;
export const LABEL_HEIGHT = 18;
export const LABEL_PADDING = 6; // each side of the label text
export const LABEL_MAX_NAMES = 3;
export const MARGIN = 12;
/** Longer step names are cut (with "…") in the picture; the whole name shows on hover. */
export const NODE_LABEL_CHARS = 22;
/** Compact pictures (a narrow room): names on up to two lines of this many characters. */
export const LINE_CHARS = 9;
export const LINE_HEIGHT = 14;
const COMPACT_PADDING = 7;
/** The smallest scale at which the picture still reads: a 12 px label drawn 10 px high. */
export const READABLE_SCALE = 0.85;
/** Likewise a variable's name on an edge. */
export const VARIABLE_CHARS = 14;

/** The width in pixels of a text as drawn in a node or an edge label. */
export type Measure = (text: string, kind: 'node' | 'label') => number;

export interface GraphInput {
  steps: readonly string[];
  edges: readonly {
    source: string;
    target: string;
    variables: readonly string[];
  }[];
  /** Edges on a dependency cycle, as [source, target]. */
  cycles: readonly (readonly [string, string])[];
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedNode extends Box {
  name: string;
  /** The name as drawn: on one line cut to NODE_LABEL_CHARS, or on two (compact). */
  lines: string[];
}

/** The room the graph is drawn in, in pixels. */
export interface Room {
  width: number;
  height: number;
}

export interface PlacedEdge {
  source: string;
  target: string;
  variables: string[];
  label: string;
  /** An ordering edge (`after:`), with no data on it. */
  dashed: boolean;
  cycle: boolean;
  /** The route, source to target, through the label's place when there is a label. */
  points: [number, number][];
  labelBox: Box | null;
}

/** Top to bottom, or left to right (for wide fan-outs in a narrow panel). */
export type Direction = 'TB' | 'LR';

/** Full: the variables on the edges; compact (a narrow room): names on two lines, the
 * variables only in each edge's tooltip. */
export type Density = 'full' | 'compact';

export interface GraphLayout {
  direction: Direction;
  density: Density;
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

/** `text` cut to `limit` characters, the last one an ellipsis. */
export function shortened(text: string, limit: number): string {
  const chars = Array.from(text);
  return chars.length <= limit
    ? text
    : `${chars.slice(0, limit - 1).join('')}…`;
}

/** "a, b, c, +2": the variables an edge carries, at most three by name. */
export function edgeLabel(variables: readonly string[]): string {
  const shown = variables
    .slice(0, LABEL_MAX_NAMES)
    .map(v => shortened(v, VARIABLE_CHARS))
    .join(', ');
  const more = variables.length - LABEL_MAX_NAMES;
  return more > 0 ? `${shown}, +${more}` : shown;
}

/** A name on at most two lines of LINE_CHARS, broken after an underscore where it can be:
 * train_boosting -> train_ / boosting. */
export function nameLines(name: string): string[] {
  const chars = Array.from(name);
  if (chars.length <= LINE_CHARS) {
    return [name];
  }
  const head = chars.slice(0, LINE_CHARS);
  const cut = head.lastIndexOf('_');
  const first = cut > 0 ? cut + 1 : LINE_CHARS;
  return [
    chars.slice(0, first).join(''),
    shortened(chars.slice(first).join(''), LINE_CHARS)
  ];
}

export function nodeLines(name: string, density: Density): string[] {
  return density === 'compact'
    ? nameLines(name)
    : [shortened(name, NODE_LABEL_CHARS)];
}

export function nodeWidth(
  name: string,
  measure: Measure,
  density: Density = 'full'
): number {
  const text = Math.max(
    ...nodeLines(name, density).map(line => measure(line, 'node'))
  );
  const padding = density === 'compact' ? COMPACT_PADDING : NODE_PADDING;
  return Math.max(
    density === 'compact' ? 0 : NODE_MIN_WIDTH,
    Math.ceil(text + 2 * padding + ICON_SPACE)
  );
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** The scale at which a picture of `size` fits the room whole (never above 1). */
export function fitScale(
  size: { width: number; height: number },
  room: Room
): number {
  if (room.width <= 0 || room.height <= 0 || !size.width || !size.height) {
    return 1;
  }
  return Math.min(1, room.width / size.width, room.height / size.height);
}

/**
 * The layout that reads best in the room: the first of top to bottom, left to right (a wide
 * fan-out), then both compact, that fits whole at a readable scale; when none does, the one
 * that fits at the largest scale. Top to bottom comes first: it reads like the notebook.
 */
export function bestLayout(
  input: GraphInput,
  measure: Measure,
  room: Room
): GraphLayout {
  const tries: [Direction, Density][] = [
    ['TB', 'full'],
    ['LR', 'full'],
    ['TB', 'compact'],
    ['LR', 'compact']
  ];
  let best: GraphLayout | null = null;
  for (const [direction, density] of tries) {
    const layout = layoutGraph(input, measure, direction, density);
    const scale = fitScale(layout, room);
    if (scale >= READABLE_SCALE) {
      return layout;
    }
    if (!best || scale > fitScale(best, room) + 1e-9) {
      best = layout;
    }
  }
  return best as GraphLayout;
}

export function layoutGraph(
  input: GraphInput,
  measure: Measure,
  direction: Direction = 'TB',
  density: Density = 'full'
): GraphLayout {
  const { graph, labels } = dagreGraph(input, measure, direction, density);
  dagreLayout(graph);
  const nodes = placedNodes(graph, input, density);
  const edges = placedEdges(graph, input, labels);
  spreadEnds(nodes, edges, direction);
  for (const edge of edges) {
    edge.points = edge.points.map(([x, y]) => [round(x), round(y)]);
  }
  const size = graph.graph();
  return {
    direction,
    density,
    width: Math.ceil(size.width ?? 0),
    height: Math.ceil(size.height ?? 0),
    nodes,
    edges
  };
}

type DagreGraph = graphlib.Graph<GraphLabel, NodeLabel, EdgeLabel>;

/** The graph for dagre to lay out, with each step's size and each edge label's; and the
 * label of each edge, by `source\ntarget`. */
function dagreGraph(
  input: GraphInput,
  measure: Measure,
  direction: Direction,
  density: Density
): { graph: DagreGraph; labels: Map<string, string> } {
  const compact = density === 'compact';
  const graph: DagreGraph = new graphlib.Graph({ multigraph: false });
  graph.setGraph({
    rankdir: direction,
    nodesep: compact ? 14 : 28,
    edgesep: compact ? 8 : 14,
    ranksep: compact ? 26 : 36,
    marginx: MARGIN,
    marginy: MARGIN
  });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const name of input.steps) {
    graph.setNode(name, {
      width: nodeWidth(name, measure, density),
      height: NODE_HEIGHT + (nodeLines(name, density).length - 1) * LINE_HEIGHT
    });
  }
  const labels = new Map<string, string>();
  for (const edge of input.edges) {
    const label = compact ? '' : edgeLabel(edge.variables);
    labels.set(`${edge.source}\n${edge.target}`, label);
    graph.setEdge(edge.source, edge.target, {
      width: label ? Math.ceil(measure(label, 'label') + 2 * LABEL_PADDING) : 0,
      height: label ? LABEL_HEIGHT : 0,
      labelpos: 'c',
      minlen: 1
    });
  }
  return { graph, labels };
}

/** Where dagre put each step, as boxes from their top left corner. */
function placedNodes(
  graph: DagreGraph,
  input: GraphInput,
  density: Density
): PlacedNode[] {
  return input.steps.map(name => {
    const node = graph.node(name);
    return {
      name,
      lines: nodeLines(name, density),
      x: round((node.x ?? 0) - node.width / 2),
      y: round((node.y ?? 0) - node.height / 2),
      width: node.width,
      height: node.height
    };
  });
}

/** The routes dagre found for the edges, with their labels' boxes. */
function placedEdges(
  graph: DagreGraph,
  input: GraphInput,
  labels: Map<string, string>
): PlacedEdge[] {
  const cycles = new Set(input.cycles.map(([s, t]) => `${s}\n${t}`));
  return input.edges.map(edge => {
    const placed = graph.edge(edge.source, edge.target);
    const label = labels.get(`${edge.source}\n${edge.target}`) ?? '';
    const points = (placed.points ?? []).map(
      p => [p.x, p.y] as [number, number]
    );
    const width = placed.width ?? 0;
    const height = placed.height ?? 0;
    return {
      source: edge.source,
      target: edge.target,
      variables: [...edge.variables],
      label,
      dashed: edge.variables.length === 0,
      cycle: cycles.has(`${edge.source}\n${edge.target}`),
      points,
      labelBox:
        label && placed.x !== undefined && placed.y !== undefined
          ? {
              x: round(placed.x - width / 2),
              y: round(placed.y - height / 2),
              width,
              height
            }
          : null
    };
  });
}

/**
 * Edges meeting a step on the same side leave or enter it at points spread along that side,
 * in the order they come from, so no two share an arrowhead.
 */
export function spreadEnds(
  nodes: PlacedNode[],
  edges: PlacedEdge[],
  direction: Direction = 'TB'
): void {
  const byName = new Map(nodes.map(n => [n.name, n]));
  const across = direction === 'LR';
  // along: the axis of the side the ends spread on; deep: the axis edges travel
  const along = across ? 1 : 0;
  const deep = across ? 0 : 1;
  interface End {
    edge: PlacedEdge;
    index: number; // the point to move: 0 (start) or the last
    toward: number; // where the neighbouring point lies along the side, for the order
  }
  const sides = new Map<string, End[]>();
  for (const edge of edges) {
    const count = edge.points.length;
    if (count < 2 || edge.source === edge.target) {
      continue;
    }
    for (const [name, index, neighbour] of [
      [edge.source, 0, 1],
      [edge.target, count - 1, count - 2]
    ] as const) {
      const node = byName.get(name);
      if (!node) {
        continue;
      }
      const middle = across
        ? node.x + node.width / 2
        : node.y + node.height / 2;
      const side = edge.points[neighbour][deep] < middle ? 'before' : 'after';
      const key = `${name}\n${side}`;
      const list = sides.get(key) ?? [];
      list.push({ edge, index, toward: edge.points[neighbour][along] });
      sides.set(key, list);
    }
  }
  for (const [key, ends] of sides) {
    const [name, side] = key.split('\n');
    const node = byName.get(name);
    if (!node) {
      continue;
    }
    ends.sort((a, b) => a.toward - b.toward);
    const length = across ? node.height : node.width;
    const usable = length * (across ? 0.8 : 0.7);
    const start = (across ? node.y : node.x) + (length - usable) / 2;
    const edgeAt = across
      ? side === 'before'
        ? node.x
        : node.x + node.width
      : side === 'before'
        ? node.y
        : node.y + node.height;
    ends.forEach((end, i) => {
      const spread = start + (usable * (i + 1)) / (ends.length + 1);
      end.edge.points[end.index] = across ? [edgeAt, spread] : [spread, edgeAt];
    });
  }
}

/**
 * The SVG path through the points: from each point to the next, a curve that leaves and
 * arrives along the direction edges travel (down, or right), so it passes through the
 * label's place and ends square on its step.
 */
export function curvePath(
  points: readonly (readonly [number, number])[],
  direction: Direction = 'TB'
): string {
  if (points.length < 2) {
    throw new Error(
      `an edge route needs 2 points or more, not ${points.length}`
    );
  }
  const [first, ...rest] = points;
  const parts = [`M ${first[0]} ${first[1]}`];
  let [x0, y0] = first;
  for (const [x1, y1] of rest) {
    if (direction === 'LR') {
      const middle = round((x0 + x1) / 2);
      parts.push(`C ${middle} ${y0}, ${middle} ${y1}, ${x1} ${y1}`);
    } else {
      const middle = round((y0 + y1) / 2);
      parts.push(`C ${x0} ${middle}, ${x1} ${middle}, ${x1} ${y1}`);
    }
    [x0, y0] = [x1, y1];
  }
  return parts.join(' ');
}

/** Whether two boxes overlap (touching edges do not count). */
export function overlaps(a: Box, b: Box): boolean {
  return (
    a.x < b.x + b.width &&
    b.x < a.x + a.width &&
    a.y < b.y + b.height &&
    b.y < a.y + a.height
  );
}

/** Text widths as the browser draws them in the graph (cached); a fixed width per character
 * where nothing is drawn (tests without a layout engine). */
export function browserMeasure(): Measure {
  const cache = new Map<string, number>();
  let probe: SVGSVGElement | null = null;
  return (text, kind) => {
    const key = `${kind}\n${text}`;
    const known = cache.get(key);
    if (known !== undefined) {
      return known;
    }
    const SVG = 'http://www.w3.org/2000/svg';
    if (!probe) {
      probe = document.createElementNS(SVG, 'svg');
      probe.setAttribute('class', 'nb2pipe-graph nb2pipe-measure');
      probe.setAttribute('aria-hidden', 'true');
      probe.style.position = 'absolute';
      probe.style.visibility = 'hidden';
      probe.style.left = '-10000px';
      document.body.appendChild(probe);
    }
    const node = document.createElementNS(SVG, 'text');
    node.setAttribute(
      'class',
      kind === 'node' ? 'nb2pipe-node-label' : 'nb2pipe-edge-label'
    );
    node.textContent = text;
    probe.appendChild(node);
    let width = 0;
    if (typeof node.getComputedTextLength === 'function') {
      width = node.getComputedTextLength();
    }
    node.remove();
    if (!width) {
      width = text.length * (kind === 'node' ? 7.8 : 7.2);
    }
    cache.set(key, width);
    return width;
  };
}
