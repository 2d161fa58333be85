import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AhaError } from '../errors.ts';
import { tensorChunks, type TensorInfo, type TensorStore } from '../engine/types.ts';
import { writeFileAtomic } from '../util/fs.ts';

// Typed-array views below reinterpret file bytes directly; safetensors is little-endian.
if (endianness() !== 'LE') throw new Error('safetensors.ts assumes a little-endian host');

/** Bytes per element of every dtype the safetensors format defines (we convert only the float ones). */
const DTYPE_SIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
const READABLE_DTYPES = ['F32', 'BF16', 'F16', 'F64'];
/** The reference implementation refuses headers above 100 MB; so do we, before allocating. */
const MAX_HEADER_BYTES = 100_000_000;
/** Bytes read per step when converting; a multiple of 8 so F64 elements never straddle reads. */
const CHUNK_BYTES = 8 << 20;

/** One tensor entry of a safetensors header; offsets are relative to the start of the data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
}

/** A parsed and validated safetensors header. */
export interface SafetensorsHeader {
  path: string;
  /** Byte offset of the data section (8 + header length). */
  dataStart: number;
  fileSize: number;
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string> | null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}

function readFully(fd: number, buf: Uint8Array, position: number, path: string): void {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) throw new AhaError(`${path}: truncated file (unexpected end at byte ${position + off})`);
    off += n;
  }
}

function parseHeaderFd(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new AhaError(`${path}: truncated file (${fileSize} bytes, no safetensors header)`);
  const lenBuf = Buffer.alloc(8);
  readFully(fd, lenBuf, 0, path);
  const headerLen = lenBuf.readBigUInt64LE(0);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new AhaError(
      `${path}: not a safetensors file (header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes)`,
    );
  }
  const n = Number(headerLen);
  if (8 + n > fileSize) {
    throw new AhaError(`${path}: truncated file (header needs ${n} bytes, file has ${fileSize - 8} after the length)`);
  }
  const hbuf = Buffer.alloc(n);
  readFully(fd, hbuf, 8, path);
  let json: unknown;
  try {
    json = JSON.parse(hbuf.toString('utf8'));
  } catch (e) {
    throw new AhaError(`${path}: bad safetensors header JSON (${oneLine((e as Error).message)})`);
  }
  if (!isObject(json)) throw new AhaError(`${path}: bad safetensors header (not a JSON object)`);
  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> | null = null;
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) {
        throw new AhaError(`${path}: bad safetensors header (__metadata__ must map strings to strings)`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const bad = (what: string) => new AhaError(`${path}: bad safetensors header (tensor ${name}: ${what})`);
    if (!isObject(v)) throw bad('entry is not an object');
    const { dtype, shape, data_offsets: offs } = v;
    if (typeof dtype !== 'string') throw bad('missing dtype');
    if (!Array.isArray(shape) || !shape.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      throw bad(`shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((x) => Number.isSafeInteger(x) && x >= 0) ||
      offs[0] > offs[1]
    ) {
      throw bad(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    const elSize = DTYPE_SIZE[dtype];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (elSize !== undefined && end - begin !== numel * elSize) {
      throw bad(`data_offsets span ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${numel * elSize}`);
    }
    if (end > dataLen) {
      throw new AhaError(
        `${path}: truncated file (tensor ${name} data_offsets end ${end} is past the end of the data section, ${dataLen} bytes)`,
      );
    }
    tensors.set(name, { name, dtype, shape: shape as number[], dataOffsets: [begin, end] });
  }
  return { path, dataStart, fileSize, tensors, metadata };
}

/** Read and validate the header of a .safetensors file without touching its tensor data. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new AhaError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return parseHeaderFd(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** The shard list of a sharded checkpoint, from its `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  /** Absolute shard paths, in order of first appearance in weight_map. */
  shards: string[];
  /** Tensor name to absolute shard path. */
  weightMap: Map<string, string>;
}

/** Parse `model.safetensors.index.json`; shard paths are resolved relative to the index file. */
export function readSafetensorsIndex(indexPath: string): SafetensorsIndex {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new AhaError(`${indexPath}: cannot read index (${oneLine((e as Error).message)})`);
  }
  if (!isObject(json) || !isObject(json.weight_map)) {
    throw new AhaError(`${indexPath}: weight_map must be an object mapping tensor names to shard files`);
  }
  const dir = dirname(resolve(indexPath));
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, file] of Object.entries(json.weight_map)) {
    if (typeof file !== 'string' || file === '' || file.includes('/') || file.includes('\\')) {
      throw new AhaError(`${indexPath}: weight_map.${name} must be a shard file name (got ${JSON.stringify(file)})`);
    }
    const p = join(dir, file);
    if (!shards.includes(p)) shards.push(p);
    weightMap.set(name, p);
  }
  if (shards.length === 0) throw new AhaError(`${indexPath}: weight_map is empty`);
  for (const p of shards) if (!existsSync(p)) throw new AhaError(`${indexPath}: shard ${p} is missing`);
  return { shards, weightMap };
}

/**
 * The weight files of a model directory, preferring `model.safetensors` over a sharded index, as transformers does.
 * When sharded, each shard's header must hold the tensors the index assigns to it.
 */
export function findSafetensorsFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (existsSync(indexPath)) {
    const index = readSafetensorsIndex(indexPath);
    const headers = new Map(index.shards.map((s) => [s, readSafetensorsHeader(s)]));
    for (const [name, shard] of index.weightMap) {
      if (!headers.get(shard)!.tensors.has(name)) {
        throw new AhaError(`${indexPath}: index puts tensor ${name} in ${shard}, which does not contain it`);
      }
    }
    return index.shards;
  }
  const hint = existsSync(join(dir, 'pytorch_model.bin'))
    ? ' (pytorch_model.bin is not supported; convert it to safetensors)'
    : '';
  throw new AhaError(`${dir}: no model.safetensors or model.safetensors.index.json${hint}`);
}

interface PlannedRead {
  info: TensorInfo;
  header: SafetensorsHeader;
  entry: SafetensorsEntry;
}

/** A validated mapping of every layout tensor to its place in the files; no tensor data has been read. */
export interface SafetensorsPlan {
  reads: PlannedRead[];
  /** `lm_head.weight` stored in the files although the layout ties it to the embeddings; checked after loading. */
  tiedLmHead: PlannedRead | null;
}

function shapeStr(s: number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * Check that the files hold exactly the tensors of `layout` with the right shapes and convertible dtypes, reading
 * only headers. Extra tensors are errors (they would mean the layout misreads the checkpoint) except
 * `*.rotary_emb.inv_freq` (recomputed from config.json) and, for tied layouts, `lm_head.weight`.
 */
export function planSafetensorsRead(
  paths: string[],
  layout: TensorInfo[],
  source: string,
  /** Tensors allowed in the files outside the layout, read separately (a classifier's `score.weight`). */
  extra: readonly string[] = [],
): SafetensorsPlan {
  if (paths.length === 0) throw new AhaError(`${source}: no safetensors files given`);
  const where = new Map<string, { header: SafetensorsHeader; entry: SafetensorsEntry }>();
  for (const p of paths) {
    const header = readSafetensorsHeader(p);
    for (const [name, entry] of header.tensors) {
      const prev = where.get(name);
      if (prev) throw new AhaError(`${source}: tensor ${name} appears in both ${prev.header.path} and ${p}`);
      where.set(name, { header, entry });
    }
  }
  const plan = (info: TensorInfo, at: { header: SafetensorsHeader; entry: SafetensorsEntry }): PlannedRead => {
    const { header, entry } = at;
    if (entry.shape.length !== info.shape.length || entry.shape.some((d, i) => d !== info.shape[i])) {
      throw new AhaError(
        `${header.path}: tensor ${info.name} has shape ${shapeStr(entry.shape)}, expected ${shapeStr(info.shape)}`,
      );
    }
    if (!READABLE_DTYPES.includes(entry.dtype)) {
      throw new AhaError(
        `${header.path}: tensor ${info.name} has unsupported dtype ${entry.dtype} (supported: ${READABLE_DTYPES.join(', ')})`,
      );
    }
    return { info, header, entry };
  };
  const reads: PlannedRead[] = [];
  const used = new Set<string>();
  const missing: string[] = [];
  for (const info of layout) {
    const at = where.get(info.name);
    if (!at) {
      missing.push(info.name);
      continue;
    }
    used.add(info.name);
    reads.push(plan(info, at));
  }
  if (missing.length > 0) {
    const more = missing.length > 3 ? ` and ${missing.length - 3} more` : '';
    throw new AhaError(`${source}: missing tensor ${missing.slice(0, 3).join(', ')}${more}`);
  }
  let tiedLmHead: PlannedRead | null = null;
  const embed = layout.find((t) => t.name === 'model.embed_tokens.weight');
  const lm = where.get('lm_head.weight');
  if (lm && !used.has('lm_head.weight') && embed) {
    tiedLmHead = plan({ ...embed, name: 'lm_head.weight' }, lm);
    used.add('lm_head.weight');
  }
  const unexpected = [...where.keys()].filter(
    (n) => !used.has(n) && !extra.includes(n) && !/(^|\.)rotary_emb\.inv_freq$/.test(n),
  );
  if (unexpected.length > 0) {
    const more = unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : '';
    throw new AhaError(
      `${source}: unexpected tensor${unexpected.length > 1 ? 's' : ''} ${unexpected.slice(0, 5).join(', ')}${more} (not in the model layout for this config.json)`,
    );
  }
  reads.sort(
    (a, b) =>
      paths.indexOf(a.header.path) - paths.indexOf(b.header.path) || a.entry.dataOffsets[0] - b.entry.dataOffsets[0],
  );
  return { reads, tiedLmHead };
}

let f16Table: Float32Array | null = null;
/** All 65536 half-precision values as float32 (exact: every f16 is representable), NaN payloads kept. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = h >> 15,
      exp = (h >> 10) & 0x1f,
      mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = (sign << 31) | 0x7f800000 | (mant << 13);
    else if (exp === 0) t[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    else bits[h] = (sign << 31) | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  return (f16Table = t);
}

/** 16-bit weight bits (bf16 or f16) widened to float32, exactly, into `out` (made when not given). */
export function halfBitsToFloat32(
  bits: Uint16Array,
  dtype: 'bf16' | 'f16',
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  if (dtype === 'bf16') {
    const u32 = new Uint32Array(out.buffer, out.byteOffset, bits.length);
    for (let i = 0; i < bits.length; i++) u32[i] = bits[i] << 16;
  } else {
    const table = halfTable();
    for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  }
  return out;
}

/** Stream one tensor's data from `fd`, converted to float32, into `out` (length = the tensor's element count). */
function readTensor(fd: number, r: PlannedRead, out: Float32Array, scratch: Uint8Array): void {
  const { header, entry } = r;
  const start = header.dataStart + entry.dataOffsets[0];
  const elSize = DTYPE_SIZE[entry.dtype];
  const numel = out.length;
  if (entry.dtype === 'F32') {
    // Straight into the target's bytes: no copy, and the chunking only bounds single read() calls.
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    for (let off = 0; off < bytes.length; off += 1 << 30) {
      readFully(fd, bytes.subarray(off, Math.min(bytes.length, off + (1 << 30))), start + off, header.path);
    }
    return;
  }
  const perChunk = scratch.length / elSize;
  for (let done = 0; done < numel; done += perChunk) {
    const n = Math.min(perChunk, numel - done);
    readFully(fd, scratch.subarray(0, n * elSize), start + done * elSize, header.path);
    if (entry.dtype === 'BF16' || entry.dtype === 'F16') {
      const src = new Uint16Array(scratch.buffer, scratch.byteOffset, n);
      halfBitsToFloat32(src, entry.dtype === 'BF16' ? 'bf16' : 'f16', out.subarray(done, done + n));
    } else {
      out.set(new Float64Array(scratch.buffer, scratch.byteOffset, n), done);
    }
  }
}

/** The elements [start, start + n) of a planned tensor read. */
function subRead(r: PlannedRead, start: number, n: number): PlannedRead {
  if (start === 0 && n === r.info.size) return r;
  const el = DTYPE_SIZE[r.entry.dtype];
  const a = r.entry.dataOffsets[0] + start * el;
  return { ...r, entry: { ...r.entry, dataOffsets: [a, a + n * el] } };
}

/**
 * Fill `target` (the engine's parameter buffer, laid out by `layout`) from safetensors files (one, or the shards
 * of a sharded checkpoint), converting F32/BF16/F16/F64 to float32 tensor by tensor through a bounded buffer.
 * Everything is validated from the headers before any data is read. `source` names the model in errors.
 */
export function readSafetensorsInto(
  paths: string[],
  layout: TensorInfo[],
  target: TensorStore,
  source: string,
  extra: readonly string[] = [],
): void {
  if (typeof target !== 'function') {
    for (const t of layout) {
      if (t.offset + t.size > target.length) {
        throw new Error(
          `readSafetensorsInto: ${t.name} ends at ${t.offset + t.size}, past the target (${target.length})`,
        );
      }
    }
  }
  const plan = planSafetensorsRead(paths, layout, source, extra);
  const scratch = new Uint8Array(CHUNK_BYTES);
  const fds = new Map<string, number>();
  const fdOf = (p: string) => {
    let fd = fds.get(p);
    if (fd === undefined) fds.set(p, (fd = openSync(p, 'r')));
    return fd;
  };
  try {
    for (const r of plan.reads) {
      let done = 0;
      for (const chunk of tensorChunks(target, r.info)) {
        readTensor(fdOf(r.header.path), subRead(r, done, chunk.length), chunk, scratch);
        done += chunk.length;
      }
    }
    const lm = plan.tiedLmHead;
    if (lm) {
      // Compare chunk by chunk against the loaded embeddings, bitwise so that NaN and -0 count as they are stored.
      const embedInfo = { ...lm.info, name: 'model.embed_tokens.weight' };
      const chunkEls = 1 << 20;
      // Views of the loaded embeddings in the same chunks as the reads below.
      const embedChunks = tensorChunks(target, embedInfo, chunkEls);
      const tmp = new Float32Array(Math.min(chunkEls, lm.info.size));
      const tmpBits = new Uint32Array(tmp.buffer);
      const fd = fdOf(lm.header.path);
      const elSize = DTYPE_SIZE[lm.entry.dtype];
      for (let done = 0; done < lm.info.size; done += chunkEls) {
        const n = Math.min(chunkEls, lm.info.size - done);
        const part: PlannedRead = {
          ...lm,
          entry: {
            ...lm.entry,
            dataOffsets: [lm.entry.dataOffsets[0] + done * elSize, lm.entry.dataOffsets[0] + (done + n) * elSize],
          },
        };
        readTensor(fd, part, tmp.subarray(0, n), scratch);
        const e = embedChunks[done / chunkEls];
        const embedBits = new Uint32Array(e.buffer, e.byteOffset, e.length);
        for (let i = 0; i < n; i++) {
          if (tmpBits[i] !== embedBits[i]) {
            throw new AhaError(
              `${lm.header.path}: lm_head.weight differs from model.embed_tokens.weight but config.json ties them (tie_word_embeddings)`,
            );
          }
        }
      }
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

/**
 * One named tensor of the files as float32 (any readable dtype), with its shape; null when no file holds it. For
 * tensors outside the engine's layout (a sequence classifier's `score.weight`).
 */
export function readSafetensorsTensor(paths: string[], name: string): { shape: number[]; data: Float32Array } | null {
  for (const p of paths) {
    const header = readSafetensorsHeader(p);
    const entry = header.tensors.get(name);
    if (!entry) continue;
    if (!READABLE_DTYPES.includes(entry.dtype)) {
      throw new AhaError(
        `${p}: tensor ${name} has unsupported dtype ${entry.dtype} (supported: ${READABLE_DTYPES.join(', ')})`,
      );
    }
    const size = entry.shape.reduce((a, b) => a * b, 1);
    const info: TensorInfo = { name, shape: entry.shape, offset: 0, size };
    const data = new Float32Array(size);
    const fd = openSync(p, 'r');
    try {
      readTensor(fd, { info, header, entry }, data, new Uint8Array(CHUNK_BYTES));
    } finally {
      closeSync(fd);
    }
    return { shape: entry.shape, data };
  }
  return null;
}

/** A per-tensor store of 16-bit weight bits (the engine's 16-bit weights): a view of `length` elements from `start`. */
export type HalfStore = (t: TensorInfo, start: number, length: number) => Uint16Array;

/**
 * Fill 16-bit weights (`dtype` bits, laid out by `layout`) from safetensors files. Tensors stored in that dtype are
 * copied bit for bit; others are read as float32 and rounded to nearest even, chunk by chunk through bounded buffers.
 */
export function readSafetensorsInto16(
  paths: string[],
  layout: TensorInfo[],
  target: HalfStore,
  dtype: 'bf16' | 'f16',
  source: string,
  extra: readonly string[] = [],
): void {
  const plan = planSafetensorsRead(paths, layout, source, extra);
  const want = dtype === 'bf16' ? 'BF16' : 'F16';
  const scratch = new Uint8Array(CHUNK_BYTES);
  const chunkEls = 1 << 20;
  const tmp = new Float32Array(chunkEls);
  const fds = new Map<string, number>();
  const fdOf = (p: string) => {
    let fd = fds.get(p);
    if (fd === undefined) fds.set(p, (fd = openSync(p, 'r')));
    return fd;
  };
  // Elements [done, done + n) of a planned read, as 16-bit bits into out.
  const readPart = (r: PlannedRead, done: number, out: Uint16Array) => {
    const part = subRead(r, done, out.length);
    if (r.entry.dtype === want) {
      const start = part.header.dataStart + part.entry.dataOffsets[0];
      readFully(fdOf(r.header.path), new Uint8Array(out.buffer, out.byteOffset, out.byteLength), start, r.header.path);
      return;
    }
    const f = tmp.subarray(0, out.length);
    readTensor(fdOf(r.header.path), part, f, scratch);
    if (dtype === 'bf16') float32ToBfloat16Bits(f, out);
    else float32ToFloat16Bits(f, out);
  };
  try {
    for (const r of plan.reads)
      for (let done = 0; done < r.info.size; done += chunkEls) {
        const n = Math.min(chunkEls, r.info.size - done);
        readPart(r, done, target(r.info, done, n));
      }
    const lm = plan.tiedLmHead;
    if (lm) {
      const embedInfo = layout.find((t) => t.name === 'model.embed_tokens.weight')!;
      const got = new Uint16Array(chunkEls);
      for (let done = 0; done < lm.info.size; done += chunkEls) {
        const n = Math.min(chunkEls, lm.info.size - done);
        readPart(lm, done, got.subarray(0, n));
        const e = target(embedInfo, done, n);
        for (let i = 0; i < n; i++)
          if (got[i] !== e[i])
            throw new AhaError(
              `${lm.header.path}: lm_head.weight differs from model.embed_tokens.weight but config.json ties them (tie_word_embeddings)`,
            );
      }
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

/** The dtype most of a checkpoint's weights are stored in (by element count), for loading them as they are. */
export function storedDtype(paths: string[]): 'F32' | 'BF16' | 'F16' | 'F64' {
  const count = new Map<string, number>();
  for (const p of paths)
    for (const e of readSafetensorsHeader(p).tensors.values()) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      count.set(e.dtype, (count.get(e.dtype) ?? 0) + n);
    }
  let best = 'F32',
    most = -1;
  for (const [d, n] of count) if (n > most) [best, most] = [d, n];
  return best as 'F32' | 'BF16' | 'F16' | 'F64';
}

/** Round float32 values to IEEE half bit patterns, to nearest even (overflow to infinity, NaN to 0x7E00). */
export function float32ToFloat16Bits(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const u = x & 0x7fffffff;
    if (u > 0x7f800000) dst[i] = sign | 0x7e00;
    else if (u >= 0x477ff000) dst[i] = sign | 0x7c00;
    else if (u < 0x38800000) {
      if (u < 0x33000000) dst[i] = sign;
      else {
        const e = u >>> 23,
          m = (u & 0x7fffff) | 0x800000,
          shift = 126 - e;
        const q = m >>> shift,
          rem = m & ((1 << shift) - 1),
          half = 1 << (shift - 1);
        dst[i] = sign | (rem > half || (rem === half && q & 1) ? q + 1 : q);
      }
    } else {
      let r = u - 0x38000000;
      r += 0xfff + ((r >>> 13) & 1);
      dst[i] = sign | (r >>> 13);
    }
  }
  return dst;
}

/** Round float32 values to bfloat16 bit patterns, to nearest even; every NaN becomes 0x7FC0, as in torch. */
export function float32ToBfloat16Bits(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    if ((u & 0x7fffffff) > 0x7f800000) dst[i] = 0x7fc0;
    else dst[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return dst;
}

/** A tensor to write: `data` is usually a view of an engine buffer, or consecutive views of one large tensor. */
export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array | Float32Array[];
}

/** The dtypes `writeSafetensors` stores: float32 as given, or one of the 16-bit types rounded to nearest even. */
export type WritableDtype = 'F32' | 'BF16' | 'F16';

/** Options of `writeSafetensors`; `metadata` is merged into `__metadata__` after `{"format":"pt"}`. */
export interface WriteSafetensorsOptions {
  dtype?: WritableDtype;
  metadata?: Record<string, string>;
}

function chunksOf(t: TensorToWrite): Float32Array[] {
  return Array.isArray(t.data) ? t.data : [t.data];
}

/**
 * Write a .safetensors file atomically. Tensors are stored sorted by name (data in the same order), the header is
 * compact JSON padded with spaces to a multiple of 8 bytes, as the reference implementation writes it.
 * F32 data is written straight from the given arrays; BF16 and F16 are rounded to nearest even.
 */
export function writeSafetensors(path: string, tensors: TensorToWrite[], opts: WriteSafetensorsOptions = {}): void {
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'BF16' && dtype !== 'F16')
    throw new Error(`writeSafetensors: unsupported dtype ${dtype}`);
  const elSize = DTYPE_SIZE[dtype];
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    if (t.name === '__metadata__' || t.name === '')
      throw new Error(`writeSafetensors: invalid tensor name ${JSON.stringify(t.name)}`);
    if (i > 0 && sorted[i - 1].name === t.name) throw new Error(`writeSafetensors: duplicate tensor ${t.name}`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const length = chunksOf(t).reduce((a, c) => a + c.length, 0);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel !== length) {
      throw new Error(`writeSafetensors: ${t.name} has ${length} values for shape ${shapeStr(t.shape)}`);
    }
  }
  const metadata: Record<string, string> = { format: 'pt', ...(opts.metadata ?? {}) };
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata ${k} must be a string`);
  }
  // Built by hand: JSON.stringify of an object would move integer-like tensor names to the front.
  const entries = [`"__metadata__":${JSON.stringify(metadata)}`];
  let offset = 0;
  const parts: Uint8Array[] = [];
  const maxPart = 1 << 28;
  for (const t of sorted) {
    const chunks = chunksOf(t);
    const bytes = chunks.reduce((a, c) => a + c.length, 0) * elSize;
    entries.push(
      `${JSON.stringify(t.name)}:{"dtype":"${dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + bytes}]}`,
    );
    offset += bytes;
    for (const c of chunks) {
      const raw =
        dtype === 'F32'
          ? new Uint8Array(c.buffer, c.byteOffset, c.byteLength)
          : new Uint8Array((dtype === 'BF16' ? float32ToBfloat16Bits(c) : float32ToFloat16Bits(c)).buffer);
      for (let o = 0; o < raw.length; o += maxPart) parts.push(raw.subarray(o, Math.min(raw.length, o + maxPart)));
    }
  }
  let header = Buffer.from(`{${entries.join(',')}}`, 'utf8');
  const pad = (8 - (header.length % 8)) % 8;
  if (pad > 0) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeFileAtomic(path, [len, header, ...parts]);
}
