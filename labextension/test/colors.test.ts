import {
  assignSlots,
  colorVariables,
  contrast,
  luminance,
  MIN_CONTRAST,
  PALETTE,
  parseColor,
  preferences,
  slotColors,
  stepPalette
} from '../src/colors';

// --- CIEDE2000 (Sharma, Wu and Dalal's formulation), to measure how far apart colours look ---

function linear(value: number): number {
  const c = value / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

function lab(color: string): Lab {
  const [r, g, b] = parseColor(color).map(linear);
  const x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
  const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  const f = (t: number): number =>
    t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116;
  return [116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

const rad = (d: number): number => (d * Math.PI) / 180;
const deg = (r: number): number => (r * 180) / Math.PI;

type Lab = [number, number, number];

function deltaE2000(one: string, two: string): number {
  return deltaE2000Lab(lab(one), lab(two));
}

function deltaE2000Lab([l1, a1, b1]: Lab, [l2, a2, b2]: Lab): number {
  const cBar = (Math.hypot(a1, b1) + Math.hypot(a2, b2)) / 2;
  const g = 0.5 * (1 - Math.sqrt(cBar ** 7 / (cBar ** 7 + 25 ** 7)));
  const [p1, p2] = [(1 + g) * a1, (1 + g) * a2];
  const [c1, c2] = [Math.hypot(p1, b1), Math.hypot(p2, b2)];
  const h1 = (deg(Math.atan2(b1, p1)) + 360) % 360;
  const h2 = (deg(Math.atan2(b2, p2)) + 360) % 360;
  let dh = c1 * c2 === 0 ? 0 : h2 - h1;
  dh += dh > 180 ? -360 : dh < -180 ? 360 : 0;
  const dL = l2 - l1;
  const dC = c2 - c1;
  const dH = 2 * Math.sqrt(c1 * c2) * Math.sin(rad(dh / 2));
  const lMean = (l1 + l2) / 2;
  const cMean = (c1 + c2) / 2;
  let hMean = h1 + h2;
  if (c1 * c2 !== 0) {
    hMean =
      Math.abs(h1 - h2) <= 180
        ? (h1 + h2) / 2
        : h1 + h2 < 360
          ? (h1 + h2 + 360) / 2
          : (h1 + h2 - 360) / 2;
  }
  const t =
    1 -
    0.17 * Math.cos(rad(hMean - 30)) +
    0.24 * Math.cos(rad(2 * hMean)) +
    0.32 * Math.cos(rad(3 * hMean + 6)) -
    0.2 * Math.cos(rad(4 * hMean - 63));
  const theta = 30 * Math.exp(-(((hMean - 275) / 25) ** 2));
  const rc = 2 * Math.sqrt(cMean ** 7 / (cMean ** 7 + 25 ** 7));
  const sl =
    1 + (0.015 * (lMean - 50) ** 2) / Math.sqrt(20 + (lMean - 50) ** 2);
  const sc = 1 + 0.045 * cMean;
  const sh = 1 + 0.015 * cMean * t;
  const rt = -Math.sin(rad(2 * theta)) * rc;
  return Math.sqrt(
    (dL / sl) ** 2 +
      (dC / sc) ** 2 +
      (dH / sh) ** 2 +
      rt * (dC / sc) * (dH / sh)
  );
}

/** A random step name like a notebook's: words joined by underscores, sometimes numbered. */
function randomNames(count: number, seed: number): string[] {
  const words = [
    'load', 'clean', 'join', 'sales', 'feature', 'monetary', 'catalog',
    'evaluate', 'models', 'train', 'forest', 'boosting', 'logreg', 'split',
    'plot', 'report', 'score', 'tune', 'impute', 'encode', 'scale', 'merge',
    'customers', 'orders', 'data', 'test', 'predict', 'export'
  ]; // prettier-ignore
  let state = seed;
  const next = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  const names = new Set<string>();
  while (names.size < count) {
    const parts = Array.from(
      { length: 1 + next(3) },
      () => words[next(words.length)]
    );
    names.add(
      next(4) === 0 ? `${parts.join('_')}_${next(10)}` : parts.join('_')
    );
  }
  return [...names];
}

/** The smallest CIEDE2000 distance between two steps of the pipeline, in either theme. */
function closestPair(names: readonly string[]): number {
  const palette = stepPalette(names);
  let closest = Infinity;
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const [a, b] = [palette.colors(names[i]), palette.colors(names[j])];
      closest = Math.min(
        closest,
        deltaE2000(a.light.background, b.light.background),
        deltaE2000(a.dark.background, b.dark.background)
      );
    }
  }
  return closest;
}

const CHURN = [
  'load',
  'clean',
  'features',
  'train_logreg',
  'train_forest',
  'train_boosting',
  'evaluate'
];

describe('step colours', () => {
  it('reads and measures colours the WCAG and CIEDE2000 ways', () => {
    expect(parseColor('#fff')).toEqual([255, 255, 255]);
    expect(parseColor('rgb(1, 2, 3)')).toEqual([1, 2, 3]);
    expect(parseColor('rgba(10, 20, 30, 0.5)')).toEqual([10, 20, 30]);
    expect(() => parseColor('blue')).toThrow(/not a colour/);
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 5);
    expect(contrast('#777777', '#ffffff')).toBeCloseTo(4.48, 2);
    expect(luminance('#ffffff')).toBeCloseTo(1, 5);
    // pairs 1, 7, 17 and 25 of Sharma, Wu and Dalal's test data
    expect(
      deltaE2000Lab([50, 2.6772, -79.7751], [50, 0, -82.7485])
    ).toBeCloseTo(2.0425, 4);
    expect(deltaE2000Lab([50, 0, 0], [50, -1, 2])).toBeCloseTo(2.3669, 4);
    expect(deltaE2000Lab([50, 2.5, 0], [73, 25, -18])).toBeCloseTo(27.1492, 4);
    expect(
      deltaE2000Lab([60.2574, -34.0099, 36.2677], [60.4626, -34.1751, 39.4387])
    ).toBeCloseTo(1.2644, 4);
    expect(deltaE2000('#000000', '#000000')).toBe(0);
    expect(deltaE2000('#ffffff', '#000000')).toBeCloseTo(100, 0);
  });

  it('keep any two slots of the palette at least 20 apart (CIEDE2000) in each theme', () => {
    let closest = Infinity;
    for (let i = 0; i < PALETTE.length; i++) {
      for (let j = i + 1; j < PALETTE.length; j++) {
        for (const theme of [0, 1]) {
          closest = Math.min(
            closest,
            deltaE2000(PALETTE[i][theme], PALETTE[j][theme])
          );
        }
      }
    }
    expect(closest).toBeGreaterThanOrEqual(20);
  });

  it('give the steps of a pipeline of up to 12 steps colours 20 apart at least', () => {
    expect(closestPair(CHURN)).toBeGreaterThanOrEqual(20);
    // the pairs that looked alike before
    expect(
      closestPair([
        'join_sales',
        'feature_monetary',
        'clean_catalog',
        'evaluate_models'
      ])
    ).toBeGreaterThanOrEqual(20);
    for (let seed = 1; seed <= 300; seed++) {
      const names = randomNames(2 + (seed % 11), seed);
      const slots = assignSlots(names);
      expect(new Set(slots.values()).size).toBe(names.length);
      expect(closestPair(names)).toBeGreaterThanOrEqual(20);
    }
  });

  it('are stable per name: its favourite slot unless an earlier step has it', () => {
    expect(preferences('load')).toEqual(preferences('load'));
    expect([...preferences('load')].sort((a, b) => a - b)).toEqual(
      PALETTE.map((_, i) => i)
    );
    expect(stepPalette(['load']).colors('load')).toEqual(
      slotColors(preferences('load')[0])
    );
    const churn = assignSlots(CHURN);
    expect(churn.get('load')).toBe(preferences('load')[0]);
    expect(assignSlots(CHURN)).toEqual(churn);
  });

  it('change no colour when a step is added at the end, and few when it is inserted', () => {
    let changed = 0;
    let most = 0;
    const trials = 600;
    for (let seed = 1; seed <= trials; seed++) {
      const names = randomNames(2 + (seed % 11), seed * 7);
      const old = names.slice(0, -1);
      const before = assignSlots(old);
      const appended = assignSlots(names);
      expect(old.filter(n => before.get(n) !== appended.get(n))).toEqual([]);
      const at = seed % names.length;
      const inserted = assignSlots([
        ...old.slice(0, at),
        names[names.length - 1],
        ...old.slice(at)
      ]);
      const moved = old.filter(n => before.get(n) !== inserted.get(n)).length;
      changed += moved;
      most = Math.max(most, moved);
    }
    // measured: 0.37 other steps recoloured per inserted step on average (pipelines of 2 to
    // 12 steps, inserted anywhere), 5 at most; a step appended recolours none
    expect(changed / trials).toBeLessThanOrEqual(0.4);
    expect(most).toBeLessThanOrEqual(5);
  });

  it('keep WCAG AA contrast for the badge text in both themes', () => {
    for (let slot = 0; slot < PALETTE.length; slot++) {
      const { light, dark } = slotColors(slot);
      expect(contrast(light.background, light.text)).toBeGreaterThanOrEqual(
        MIN_CONTRAST
      );
      expect(contrast(dark.background, dark.text)).toBeGreaterThanOrEqual(
        MIN_CONTRAST
      );
    }
  });

  it('are set as CSS variables for the stylesheet to pick per theme', () => {
    const colors = stepPalette(CHURN).colors('load');
    const variables = colorVariables(colors);
    expect(Object.keys(variables).sort()).toEqual([
      '--nb2pipe-step-dark',
      '--nb2pipe-step-dark-text',
      '--nb2pipe-step-light',
      '--nb2pipe-step-light-text'
    ]);
    expect(variables['--nb2pipe-step-light']).toBe(colors.light.background);
  });
});
