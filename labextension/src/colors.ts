/**
 * Step colours: a palette of slots far apart from each other, and one slot per step of a
 * pipeline. A name prefers the slots in an order that comes from its hash (so a step keeps
 * its colour from one edit to the next), and two steps of one pipeline never share a slot
 * while there are slots left. Each slot has a light and a dark variant, each with text that
 * meets WCAG AA contrast (4.5:1) on it.
 */

/** The contrast every badge and node label keeps; a little above WCAG AA's 4.5. */
export const MIN_CONTRAST = 4.6;

export interface ColorPair {
  background: string;
  text: string;
}

export interface StepColors {
  light: ColorPair;
  dark: ColorPair;
}

const LIGHT_TEXT = '#ffffff';
const DARK_TEXT = '#111111';

/**
 * [light theme, dark theme] per slot. Chosen among the sRGB colours that keep MIN_CONTRAST
 * with their text (white on the light variant, near-black on the dark one) by farthest-point
 * sampling in CIELAB, the light and dark variant of a slot sharing hue and chroma: any two
 * slots are at least 20 apart in CIEDE2000 in each theme (colors.test.ts measures it), where
 * 2 is a just noticeable difference.
 */
export const PALETTE: readonly (readonly [string, string])[] = [
  ['#9c6362', '#eeaeac'],
  ['#a00400', '#e95437'],
  ['#653e02', '#ae7d42'],
  ['#807316', '#d1be62'],
  ['#3f4b24', '#7f8b60'],
  ['#078503', '#6fd55a'],
  ['#3b7d6e', '#80c3b2'],
  ['#097aa5', '#6dbfed'],
  ['#716e98', '#beb9e8'],
  ['#203ca3', '#757aed'],
  ['#ba14bb', '#ff67fc'],
  ['#623957', '#a67998']
];

/** FNV-1a, 32 bits, then mixed (murmur3's finaliser) so that names differing in one
 * character (model_1, model_2) land far apart: the same name always gives the same number. */
export function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return mix(hash);
}

function mix(value: number): number {
  let hash = value >>> 0;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The palette's slots in the order a name prefers them: a shuffle seeded by its hash. */
export function preferences(name: string): number[] {
  const order = PALETTE.map((_, i) => i);
  let state = hashName(name);
  for (let i = order.length - 1; i > 0; i--) {
    state = mix(state + 0x9e3779b9);
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * The slot of each step of one pipeline, `names` in notebook order. Each step takes the first
 * slot of its own preferences that is used least so far: its favourite while no earlier step
 * has it, and never a slot another step has while one is unused. A step added after the
 * others (the usual way a notebook grows) recolours none of them; one inserted before others
 * recolours only those later steps whose slot it took, and rarely those (colors.test.ts
 * measures it).
 */
export function assignSlots(names: readonly string[]): Map<string, number> {
  const used = PALETTE.map(() => 0);
  const slots = new Map<string, number>();
  for (const name of names) {
    if (slots.has(name)) {
      continue;
    }
    const least = Math.min(...used);
    const slot = preferences(name).find(s => used[s] === least) ?? 0;
    used[slot]++;
    slots.set(name, slot);
  }
  return slots;
}

export function slotColors(slot: number): StepColors {
  const [light, dark] = PALETTE[slot % PALETTE.length];
  return {
    light: { background: light, text: LIGHT_TEXT },
    dark: { background: dark, text: DARK_TEXT }
  };
}

/** The colours of one pipeline's steps; a name it does not know gets its favourite slot. */
export class StepPalette {
  private readonly slots: Map<string, number>;

  constructor(readonly names: readonly string[]) {
    this.slots = assignSlots(names);
  }

  colors(name: string): StepColors {
    return slotColors(this.slots.get(name) ?? preferences(name)[0]);
  }
}

let latest: StepPalette | null = null;

/** The palette of a pipeline's steps; the one made last is kept, as badges, the step list
 * and the graph ask for the same pipeline's again and again. */
export function stepPalette(names: readonly string[]): StepPalette {
  const same =
    latest !== null &&
    latest.names.length === names.length &&
    latest.names.every((n, i) => n === names[i]);
  if (!same || latest === null) {
    latest = new StepPalette([...names]);
  }
  return latest;
}

function channel(value: number): number {
  const c = value / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

/** WCAG relative luminance of `#rrggbb` or `rgb(r, g, b)`. */
export function luminance(color: string): number {
  const [r, g, b] = parseColor(color);
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

/** WCAG contrast ratio of two colours (1 to 21). */
export function contrast(a: string, b: string): number {
  const [high, low] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (high + 0.05) / (low + 0.05);
}

/** [r, g, b] of `#rgb`, `#rrggbb` or `rgb(a)(r, g, b[, a])`. */
export function parseColor(color: string): [number, number, number] {
  const text = color.trim().toLowerCase();
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/.exec(text);
  if (hex) {
    const digits =
      hex[1].length === 3
        ? hex[1]
            .split('')
            .map(d => d + d)
            .join('')
        : hex[1];
    return [0, 2, 4].map(i => parseInt(digits.slice(i, i + 2), 16)) as [
      number,
      number,
      number
    ];
  }
  const rgb = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/.exec(text);
  if (rgb) {
    return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  }
  throw new Error(`not a colour nb2pipe can read: ${color}`);
}

/** The CSS custom properties that carry a step's colours; the stylesheet picks the pair of
 * the current theme. */
export function colorVariables(colors: StepColors): Record<string, string> {
  return {
    '--nb2pipe-step-light': colors.light.background,
    '--nb2pipe-step-light-text': colors.light.text,
    '--nb2pipe-step-dark': colors.dark.background,
    '--nb2pipe-step-dark-text': colors.dark.text
  };
}

export function applyColors(
  node: HTMLElement | SVGElement,
  colors: StepColors
): void {
  for (const [property, value] of Object.entries(colorVariables(colors))) {
    node.style.setProperty(property, value);
  }
}
