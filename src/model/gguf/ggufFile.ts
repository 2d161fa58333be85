/**
 * The GGUF container (version 3), as llama.cpp's ggml reads it: a header, typed key/value metadata, tensor infos,
 * then the tensor data, each tensor starting at a multiple of the alignment. Little-endian throughout.
 *
 *   "GGUF" u32 version=3, u64 tensor_count, u64 kv_count
 *   kv:     string key, u32 value_type, value            (string = u64 byte length + UTF-8 bytes, no NUL)
 *   tensor: string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset (from the start of the data section)
 *   padding to `general.alignment` (32), then the data
 *
 * `ne[0]` is the number of elements along the fastest-varying axis (a row's length), so dims are the row-major
 * shape reversed: a [out, in] matrix is written as ne = [in, out].
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** GGUF metadata value types (gguf_type in ggml). */
export const GGUF_VALUE_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The tensor data types this writer produces, with their ggml_type codes. */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Bytes per element of the plain types; Q8_0 packs 32 elements into 34 bytes (an f16 scale, 32 int8s). */
export function ggmlTypeBytes(type: GgmlTypeName, elements: number): number {
  if (type === 'Q8_0') {
    if (elements % 32 !== 0) throw new Error(`Q8_0 needs a multiple of 32 elements (got ${elements})`);
    return (elements / 32) * 34;
  }
  return elements * (type === 'F32' ? 4 : 2);
}

/** The alignment of tensor data (ggml's GGUF_DEFAULT_ALIGNMENT), also written as `general.alignment`. */
export const GGUF_ALIGNMENT = 32;

/** One metadata value with its GGUF type. Arrays hold scalars or strings of one type. */
export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32' | 'u64'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'i32[]' | 'f32[]'; value: ArrayLike<number> };

/** Constructors for {@link GgufValue}s, so metadata reads as `{ 'llama.block_count': gguf.u32(2) }`. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  u64: (value: number): GgufValue => ({ type: 'u64', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (value: readonly string[]): GgufValue => ({ type: 'string[]', value }),
  i32s: (value: ArrayLike<number>): GgufValue => ({ type: 'i32[]', value }),
  f32s: (value: ArrayLike<number>): GgufValue => ({ type: 'f32[]', value }),
};

/** A tensor to write: its row-major shape (as in safetensors), its type, and its encoded bytes, produced lazily. */
export interface GgufTensor {
  name: string;
  shape: readonly number[];
  type: GgmlTypeName;
  /** The tensor's bytes in order, in any number of pieces; called once, when the data section reaches it. */
  data: () => Iterable<Uint8Array>;
}

/** Appends little-endian values to a growing byte buffer. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  zeros(n: number): void {
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function checkUint(key: string, v: number, bits: 32 | 64): void {
  const max = bits === 32 ? 0xffffffff : Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(v) || v < 0 || v > max) throw new Error(`gguf: ${key} must be a u${bits} (got ${v})`);
}

function writeValue(out: ByteSink, key: string, v: GgufValue): void {
  const T = GGUF_VALUE_TYPE;
  switch (v.type) {
    case 'u32':
      checkUint(key, v.value, 32);
      out.u32(T.UINT32);
      out.u32(v.value);
      return;
    case 'u64':
      checkUint(key, v.value, 64);
      out.u32(T.UINT64);
      out.u64(v.value);
      return;
    case 'i32':
      if (!Number.isInteger(v.value) || v.value < -(2 ** 31) || v.value >= 2 ** 31)
        throw new Error(`gguf: ${key} must be an i32 (got ${v.value})`);
      out.u32(T.INT32);
      out.i32(v.value);
      return;
    case 'f32':
      out.u32(T.FLOAT32);
      out.f32(v.value);
      return;
    case 'bool':
      out.u32(T.BOOL);
      out.u8(v.value ? 1 : 0);
      return;
    case 'string':
      out.u32(T.STRING);
      out.str(v.value);
      return;
    case 'string[]':
      out.u32(T.ARRAY);
      out.u32(T.STRING);
      out.u64(v.value.length);
      for (const s of v.value) out.str(s);
      return;
    case 'i32[]':
      out.u32(T.ARRAY);
      out.u32(T.INT32);
      out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) out.i32(v.value[i]);
      return;
    case 'f32[]':
      out.u32(T.ARRAY);
      out.u32(T.FLOAT32);
      out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) out.f32(v.value[i]);
      return;
  }
}

const pad = (n: number) => (GGUF_ALIGNMENT - (n % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;

/**
 * The header, metadata and tensor infos of a GGUF file, padded to the alignment: the bytes before the data section.
 * `general.alignment` is added when the metadata lacks it (it must then say {@link GGUF_ALIGNMENT}).
 */
export function ggufHeader(metadata: Record<string, GgufValue>, tensors: readonly GgufTensor[]): Uint8Array {
  const kv: [string, GgufValue][] = Object.entries(metadata);
  const align = metadata['general.alignment'];
  if (align === undefined) kv.push(['general.alignment', gguf.u32(GGUF_ALIGNMENT)]);
  else if (align.type !== 'u32' || align.value !== GGUF_ALIGNMENT)
    throw new Error(`gguf: general.alignment must be u32 ${GGUF_ALIGNMENT}`);
  const names = new Set<string>();
  const out = new ByteSink();
  out.u32(0x46554747); // "GGUF" read as a little-endian u32
  out.u32(3);
  out.u64(tensors.length);
  out.u64(kv.length);
  for (const [key, value] of kv) {
    out.str(key);
    writeValue(out, key, value);
  }
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`gguf: tensor ${t.name} is listed twice`);
    names.add(t.name);
    if (t.shape.length === 0 || t.shape.length > 4) throw new Error(`gguf: ${t.name} must have 1 to 4 dims`);
    out.str(t.name);
    out.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) out.u64(t.shape[i]);
    out.u32(GGML_TYPE[t.type]);
    out.u64(offset);
    const bytes = tensorBytes(t);
    offset += bytes + pad(bytes);
  }
  out.zeros(pad(out.length));
  return out.bytes();
}

/** The encoded size of a tensor's data, without padding. */
export function tensorBytes(t: Pick<GgufTensor, 'shape' | 'type' | 'name'>): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.type === 'Q8_0' && t.shape[t.shape.length - 1] % 32 !== 0)
    throw new Error(`gguf: ${t.name} rows of ${t.shape[t.shape.length - 1]} cannot be Q8_0 blocks of 32`);
  return ggmlTypeBytes(t.type, n);
}

/**
 * Write a GGUF file atomically: into a temporary file beside `path`, fsynced, then renamed over it, so a reader
 * never sees half a model and an interrupted export leaves nothing behind. Tensor data is streamed tensor by
 * tensor; `onTensor(i)` is called after tensor i is written. Each tensor's byte count is checked against its type
 * and shape.
 */
export function writeGgufFile(
  path: string,
  metadata: Record<string, GgufValue>,
  tensors: readonly GgufTensor[],
  onTensor?: (index: number) => void,
): void {
  const header = ggufHeader(metadata, tensors);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    const put = (b: Uint8Array) => {
      for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off);
    };
    put(header);
    const zeros = new Uint8Array(GGUF_ALIGNMENT);
    tensors.forEach((t, i) => {
      const want = tensorBytes(t);
      let got = 0;
      for (const piece of t.data()) {
        got += piece.length;
        if (got > want) break;
        put(piece);
      }
      if (got !== want) throw new Error(`gguf: ${t.name} produced ${got} bytes, its ${t.type} data needs ${want}`);
      put(zeros.subarray(0, pad(want)));
      onTensor?.(i);
    });
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
