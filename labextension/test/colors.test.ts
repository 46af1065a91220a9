import {
  colorVariables,
  contrast,
  hashName,
  hsl,
  luminance,
  MIN_CONTRAST,
  parseColor,
  stepColors
} from '../src/colors';

const NAMES = [
  'load',
  'clean',
  'features',
  'train_logreg',
  'train_forest',
  'train_boosting',
  'evaluate',
  ...Array.from({ length: 500 }, (_, i) => `step_${i}`)
];

describe('step colours', () => {
  it('reads and measures colours the WCAG way', () => {
    expect(parseColor('#fff')).toEqual([255, 255, 255]);
    expect(parseColor('rgb(1, 2, 3)')).toEqual([1, 2, 3]);
    expect(parseColor('rgba(10, 20, 30, 0.5)')).toEqual([10, 20, 30]);
    expect(() => parseColor('blue')).toThrow(/not a colour/);
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 5);
    expect(contrast('#777777', '#ffffff')).toBeCloseTo(4.48, 2);
    expect(luminance('#ffffff')).toBeCloseTo(1, 5);
    expect(hsl(0, 1, 0.5)).toBe('#ff0000');
    expect(hsl(120, 1, 0.25)).toBe('#008000');
  });

  it('depend only on the name: a new step recolours no other', () => {
    expect(stepColors('load')).toEqual(stepColors('load'));
    expect(hashName('load')).toBe(hashName('load'));
    expect(stepColors('load')).not.toEqual(stepColors('clean'));
    const hues = new Set(
      NAMES.slice(0, 7).map(n => stepColors(n).light.background)
    );
    expect(hues.size).toBe(7);
  });

  it('differ between names that differ in one character', () => {
    const names = Array.from({ length: 10 }, (_, i) => `model_${i}`);
    const hues = names.map(n => hashName(n) % 360);
    const buckets = new Set(hues.map(h => Math.floor(h / 30)));
    expect(buckets.size).toBeGreaterThanOrEqual(6);
  });

  it('keep WCAG AA contrast for the badge text in both themes', () => {
    for (const name of NAMES) {
      const { light, dark } = stepColors(name);
      expect(contrast(light.background, light.text)).toBeGreaterThanOrEqual(
        MIN_CONTRAST
      );
      expect(contrast(dark.background, dark.text)).toBeGreaterThanOrEqual(
        MIN_CONTRAST
      );
    }
  });

  it('are set as CSS variables for the stylesheet to pick per theme', () => {
    const variables = colorVariables('load');
    expect(Object.keys(variables).sort()).toEqual([
      '--nb2pipe-step-dark',
      '--nb2pipe-step-dark-text',
      '--nb2pipe-step-light',
      '--nb2pipe-step-light-text'
    ]);
    expect(variables['--nb2pipe-step-light']).toBe(
      stepColors('load').light.background
    );
  });
});
