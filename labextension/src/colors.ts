/**
 * Step colours: from a stable hash of the step's name (adding a step recolours no other),
 * one variant per theme, each with text that meets WCAG AA contrast (4.5:1) on it.
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

/** FNV-1a, 32 bits, then mixed (murmur3's finaliser) so that names differing in one
 * character (model_1, model_2) land far apart: the same name always gives the same number. */
export function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
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

function hex(value: number): string {
  return Math.round(Math.max(0, Math.min(255, value)))
    .toString(16)
    .padStart(2, '0');
}

/** `#rrggbb` of a hue (degrees), saturation and lightness (0 to 1). */
export function hsl(
  hue: number,
  saturation: number,
  lightness: number
): string {
  const a = saturation * Math.min(lightness, 1 - lightness);
  const part = (n: number): number => {
    const k = (n + hue / 30) % 12;
    return lightness - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
  };
  return `#${hex(part(0) * 255)}${hex(part(8) * 255)}${hex(part(4) * 255)}`;
}

/** The colour of a step by its name: a hue from the hash, lightness set per theme until
 * its label text meets the contrast. */
export function stepColors(name: string): StepColors {
  let found = known.get(name);
  if (!found) {
    found = computeColors(name);
    known.set(name, found);
  }
  return found;
}

/** Colours already worked out, by step name: badges and nodes are redrawn often. */
const known = new Map<string, StepColors>();

function computeColors(name: string): StepColors {
  const hash = hashName(name);
  const hue = hash % 360;
  const saturation = 0.55 + ((hash >>> 9) % 4) * 0.08;
  let light = 0.48;
  while (contrast(hsl(hue, saturation, light), LIGHT_TEXT) < MIN_CONTRAST) {
    light -= 0.01;
  }
  let dark = 0.6;
  while (contrast(hsl(hue, saturation, dark), DARK_TEXT) < MIN_CONTRAST) {
    dark += 0.01;
  }
  return {
    light: { background: hsl(hue, saturation, light), text: LIGHT_TEXT },
    dark: { background: hsl(hue, saturation, dark), text: DARK_TEXT }
  };
}

/** The CSS custom properties that carry a step's colours; the stylesheet picks the pair of
 * the current theme. */
export function colorVariables(name: string): Record<string, string> {
  const colors = stepColors(name);
  return {
    '--nb2pipe-step-light': colors.light.background,
    '--nb2pipe-step-light-text': colors.light.text,
    '--nb2pipe-step-dark': colors.dark.background,
    '--nb2pipe-step-dark-text': colors.dark.text
  };
}

export function applyColors(
  node: HTMLElement | SVGElement,
  name: string
): void {
  for (const [property, value] of Object.entries(colorVariables(name))) {
    node.style.setProperty(property, value);
  }
}
