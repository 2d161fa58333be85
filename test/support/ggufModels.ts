/**
 * The GGUF tests' helpers: small checkpoints with random weights of a chosen shape and tokenizer, and a decoder of
 * GGUF tensor data written for the tests from the format's definition (not the exporter's code), on top of
 * @huggingface/gguf's parse of the header, metadata and tensor infos.
 */
import { closeSync, mkdirSync, openSync, readSync } from 'node:fs';
import { gguf } from '@huggingface/gguf';
import { mulberry32 } from '../../src/data/rng.ts';
import { parameterCount, tensorLayout, type EngineConfig } from '../../src/engine/types.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { writeCharTokenizer } from '../../src/model/charTokenizer.ts';
import { parseHfConfig, type HfModelConfig } from '../../src/model/hfConfig.ts';

/** A checkpoint written by {@link randomCheckpoint}, with the float32 values it holds. */
export interface RandomCheckpoint {
  dir: string;
  engine: EngineConfig;
  hf: HfModelConfig;
  /** The weights as stored (for BF16, the rounded values), laid out by tensorLayout(engine). */
  params: Float32Array;
  tensor(name: string): Float32Array;
}

/**
 * Writes a model directory `dir` of `config` (config.json fields) with weights uniform in ±std·√3 (norms 1 ± 0.2,
 * so that their values show), seeded, and a tokenizer: aha's character tokenizer (`'chars'`, over `alphabet`) or the
 * files of a directory. A large std makes the next-token distribution peaked, so that greedy decoding in two
 * engines does not hinge on float rounding.
 */
export function randomCheckpoint(
  dir: string,
  config: Record<string, unknown>,
  o: { tokenizer: 'chars' | string; alphabet?: string; seed?: number; std?: number; dtype?: 'F32' | 'BF16' },
): RandomCheckpoint {
  mkdirSync(dir, { recursive: true });
  const { engine, hf } = parseHfConfig(config, 'test config');
  const params = new Float32Array(parameterCount(engine));
  const rand = mulberry32(o.seed ?? 1);
  const a = (o.std ?? 0.02) * Math.sqrt(3);
  for (const t of tensorLayout(engine)) {
    const v = params.subarray(t.offset, t.offset + t.size);
    const norm = t.name.endsWith('norm.weight');
    for (let i = 0; i < v.length; i++) v[i] = norm ? 1 + 0.2 * (2 * rand() - 1) : (2 * rand() - 1) * a;
  }
  if (o.dtype === 'BF16') {
    // What the BF16 file holds: round to nearest even, as the writer does.
    const bits = new Uint32Array(params.buffer);
    for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16) << 16;
  }
  saveModelDir(dir, {
    config: engine,
    hf,
    params,
    dtype: o.dtype,
    tokenizerFrom: o.tokenizer === 'chars' ? undefined : o.tokenizer,
  });
  if (o.tokenizer === 'chars') writeCharTokenizer(dir, o.alphabet === undefined ? {} : { alphabet: o.alphabet });
  const layout = new Map(tensorLayout(engine).map((t) => [t.name, t]));
  return {
    dir,
    engine,
    hf,
    params,
    tensor: (name) => {
      const t = layout.get(name);
      if (!t) throw new Error(`no tensor ${name}`);
      return params.subarray(t.offset, t.offset + t.size);
    },
  };
}

/** IEEE half → number, from the bit layout (1 sign, 5 exponent, 10 mantissa bits). */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** One tensor of a parsed GGUF file: llama.cpp's name, dims as written (ne[0] first), type code, decoded values. */
export interface DecodedTensor {
  name: string;
  ne: number[];
  type: number;
  values: Float64Array;
  /** Q8_0 only: each block's scale d. */
  scales?: Float64Array;
}

/** A GGUF file as the tests see it: @huggingface/gguf's metadata and tensor infos, and data decoded here. */
export interface ParsedGguf {
  version: number;
  metadata: Record<string, { value: unknown; type: number; subType?: number }>;
  tensors: Map<string, DecodedTensor>;
  tensorDataOffset: number;
  /** Each tensor's offset from the data section, in file order. */
  offsets: number[];
}

/** Parse `path` with @huggingface/gguf and decode every tensor's data (F32, F16, BF16, Q8_0). */
export async function parseGguf(path: string): Promise<ParsedGguf> {
  const r = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  const dataStart = Number(r.tensorDataOffset);
  const fd = openSync(path, 'r');
  const tensors = new Map<string, DecodedTensor>();
  try {
    for (const info of r.tensorInfos) {
      const ne = info.shape.map(Number);
      const n = ne.reduce((x, y) => x * y, 1);
      const type = info.dtype as number;
      const bytes = type === 0 ? n * 4 : type === 8 ? (n / 32) * 34 : n * 2;
      const buf = Buffer.alloc(bytes);
      readSync(fd, buf, 0, bytes, dataStart + Number(info.offset));
      const values = new Float64Array(n);
      let scales: Float64Array | undefined;
      if (type === 0) for (let i = 0; i < n; i++) values[i] = buf.readFloatLE(4 * i);
      else if (type === 1) for (let i = 0; i < n; i++) values[i] = f16ToNumber(buf.readUInt16LE(2 * i));
      else if (type === 30) {
        const f = Buffer.alloc(4);
        for (let i = 0; i < n; i++) {
          f.writeUInt32LE((buf.readUInt16LE(2 * i) << 16) >>> 0);
          values[i] = f.readFloatLE(0);
        }
      } else if (type === 8) {
        scales = new Float64Array(n / 32);
        for (let b = 0; b < n / 32; b++) {
          const d = f16ToNumber(buf.readUInt16LE(34 * b));
          scales[b] = d;
          for (let i = 0; i < 32; i++) values[32 * b + i] = d * buf.readInt8(34 * b + 2 + i);
        }
      } else throw new Error(`${info.name}: type ${type} not decoded by the test`);
      tensors.set(info.name, { name: info.name, ne, type, values, scales });
    }
  } finally {
    closeSync(fd);
  }
  return {
    version: Number(r.metadata.version),
    metadata: r.typedMetadata as unknown as ParsedGguf['metadata'],
    tensors,
    tensorDataOffset: dataStart,
    offsets: r.tensorInfos.map((t) => Number(t.offset)),
  };
}
