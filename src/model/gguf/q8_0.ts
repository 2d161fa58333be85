import { float32ToFloat16Bits, halfBitsToFloat32 } from '../safetensors.ts';

/** Elements per Q8_0 block, and its bytes: a float16 scale d, then 32 int8 quants q (x ≈ d·q). */
export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 34;

/**
 * Quantise `x` (a multiple of 32 values) to ggml's Q8_0 blocks. Per block of 32: d = max|x| / 127 rounded to the
 * nearest float16 (the next one up where that would leave max|x| more than d/2 away, for tiny blocks), and
 * q_i = round(x_i / d) with d the float16 actually stored (ties away from zero, clamped to ±127), so every
 * dequantised value d·q_i is within d/2 of x_i. ggml's reference quantiser divides by the float32 d before
 * rounding it to float16, which can add up to 127·|d − d16| on top; the format and its decoding are the same.
 * An all-zero block gets d = 0 and q = 0.
 */
export function quantizeQ8_0(x: Float32Array, out: Uint8Array = new Uint8Array((x.length / 32) * 34)): Uint8Array {
  if (x.length % Q8_0_BLOCK !== 0) throw new Error(`quantizeQ8_0: ${x.length} values is not a multiple of 32`);
  const blocks = x.length / Q8_0_BLOCK;
  if (out.length !== blocks * Q8_0_BLOCK_BYTES)
    throw new Error(`quantizeQ8_0: output has ${out.length} bytes, ${blocks * Q8_0_BLOCK_BYTES} needed`);
  const scale = new Float32Array(1);
  const bits = new Uint16Array(1);
  const back = new Float32Array(1);
  const q8 = new Int8Array(out.buffer, out.byteOffset, out.length);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      const a = Math.abs(x[base + i]);
      if (a > amax) amax = a;
    }
    scale[0] = amax / 127;
    float32ToFloat16Bits(scale, bits);
    // Rounded to nearest, d can be a little under amax/127 (|q| clamps at 127, off by at most 127·d·2^-11), or, below
    // float16's normal range, far under it or zero: then the next float16 up keeps every error within d/2.
    if (amax > 0 && amax / halfBitsToFloat32(bits, 'f16', back)[0] > 127.5) bits[0]++;
    const d = halfBitsToFloat32(bits, 'f16', back)[0];
    const o = b * Q8_0_BLOCK_BYTES;
    out[o] = bits[0] & 0xff;
    out[o + 1] = bits[0] >> 8;
    if (!(d > 0)) q8.fill(0, o + 2, o + Q8_0_BLOCK_BYTES);
    else
      for (let i = 0; i < Q8_0_BLOCK; i++) {
        const r = x[base + i] / d;
        const a = Math.min(127, Math.round(r < 0 ? -r : r));
        q8[o + 2 + i] = r < 0 ? -a : a;
      }
  }
  return out;
}
