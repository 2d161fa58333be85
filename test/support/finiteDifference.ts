/**
 * Finite-difference gradients in float64, for checking the engine's backward pass against the float64 reference
 * without trusting any analytic derivative.
 */
import type { TensorInfo } from '../../src/engine/types.ts';
import { mulberry32 } from './tinyConfigs.ts';

/**
 * Central differences (f(p + h e_i) - f(p - h e_i)) / (2h) at each of the given indices, on a float64 copy of
 * params (the caller's array is never touched). The divisor is the step actually taken after rounding, so the
 * estimate stays O(h^2) accurate even where p_i + h is not exact.
 */
export function centralDifferenceGrad(
  f: (p: Float64Array) => number,
  params: Float64Array | Float32Array,
  indices: number[],
  h = 1e-5,
): Float64Array {
  const p = Float64Array.from(params);
  const grad = new Float64Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= p.length)
      throw new Error(`centralDifferenceGrad: index ${i} outside [0, ${p.length})`);
    const x = p[i];
    const xp = x + h,
      xm = x - h;
    p[i] = xp;
    const fp = f(p);
    p[i] = xm;
    const fm = f(p);
    p[i] = x;
    grad[k] = (fp - fm) / (xp - xm);
  }
  return grad;
}

/**
 * A deterministic sample of flat parameter indices touching every tensor of a layout: perTensor distinct elements
 * from each (all of them when the tensor is smaller), always including its first and last element so offset
 * errors at tensor boundaries show up. Sorted ascending; the same seed gives the same indices.
 */
export function sampleTensorIndices(layout: TensorInfo[], perTensor: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const out: number[] = [];
  for (const t of layout) {
    const want = Math.min(perTensor, t.size);
    const picked = new Set<number>();
    if (want >= 1) picked.add(0);
    if (want >= 2) picked.add(t.size - 1);
    while (picked.size < want) picked.add(Math.floor(rand() * t.size));
    for (const j of [...picked].sort((a, b) => a - b)) out.push(t.offset + j);
  }
  return out;
}

/** The name of the tensor holding flat index i, with the element's position inside it, for failure messages. */
export function describeIndex(layout: TensorInfo[], i: number): string {
  for (const t of layout) {
    if (i >= t.offset && i < t.offset + t.size) {
      let r = i - t.offset;
      const coords: number[] = [];
      for (let d = t.shape.length - 1; d >= 0; d--) {
        coords.unshift(r % t.shape[d]);
        r = Math.floor(r / t.shape[d]);
      }
      return `${t.name}[${coords.join(',')}]`;
    }
  }
  return `index ${i} (outside layout)`;
}
