// jsdom hides Node's structuredClone, which the layout library uses; give it back.
import { deserialize, serialize } from 'v8';

if (typeof globalThis.structuredClone !== 'function') {
  Object.defineProperty(globalThis, 'structuredClone', {
    value: (value: unknown) => deserialize(serialize(value)),
    configurable: true,
    writable: true
  });
}
