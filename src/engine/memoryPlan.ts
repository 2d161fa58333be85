import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { AhaError } from '../errors.ts';
import { parameterCount, type EngineConfig } from './types.ts';
import { loraLayout, type LoraConfig } from './lora.ts';

/** What a model will be used for; each part adds its buffers to the estimate. */
export interface MemoryUse {
  /** Gradients and AdamW's two moments (three more copies of the weights). */
  training?: boolean;
  /**
   * A frozen reference copy of the weights (GRPO with beta > 0): true (float32) or the copy's type ('auto': the
   * checkpoint's, resolved by loadPretrained).
   */
  reference?: boolean | 'f32' | 'bf16' | 'f16' | 'auto';
  /** Tokens in the largest packed batch of one forward (a training micro-batch, or a scoring pass). */
  batchTokens?: number;
  /** Training keeps only each layer's input and recomputes the layer in backward (Model.setGradientCheckpointing). */
  gradientCheckpointing?: boolean;
  /** Rows of logits held at once (Model.setHeadChunkRows); 0 or undefined: the engine's default, headChunkRows(). */
  headChunkRows?: number;
  /** Sampling: sequences per call and positions per sequence (prompt + new tokens), for the KV cache. */
  sampling?: { sequences: number; positions: number };
  /** How the weights are held (default f32): 16-bit weights take half the bytes. */
  weights?: 'f32' | 'bf16' | 'f16';
  /** LoRA: gradients and AdamW state cover the adapters only; the reference is the base (no copy). */
  lora?: LoraConfig;
}

/** Bytes of each part of a model's footprint in the engine. */
export interface MemoryEstimate {
  weights: number;
  /** LoRA adapters (float32). */
  adapters: number;
  gradients: number;
  optimizer: number;
  reference: number;
  activations: number;
  kvCache: number;
  total: number;
}

/** The engine's bytes for one head chunk of logits when no row count is set (kHeadChunkBytes in model.h). */
export const HEAD_CHUNK_BYTES = 64 * 2 ** 20;

/** Rows of logits the engine's head holds at once by default: as many as fit HEAD_CHUNK_BYTES, at least one. */
export function headChunkRows(vocabSize: number): number {
  return Math.max(1, Math.floor(HEAD_CHUNK_BYTES / (4 * vocabSize)));
}

/**
 * The engine's buffers for `use`, as model.cpp sizes them: parameters; gradients and AdamW moments when training;
 * the activation arena (every layer's activations kept for backward when training, or under gradient checkpointing
 * one layer's plus every layer's input; one layer's otherwise; then the final norm's output and one head chunk of
 * logits) and backward's scratch; the KV cache of a sampling call.
 */
export function estimateMemory(c: EngineConfig, use: MemoryUse = {}): MemoryEstimate {
  const W = parameterCount(c) * (use.weights === 'bf16' || use.weights === 'f16' ? 2 : 4);
  let A = 0;
  if (use.lora) {
    const l = loraLayout(c, use.lora);
    const last = l[l.length - 1];
    A = last ? (last.offset + last.size) * 4 : 0;
  }
  // What trains: the adapters under LoRA, else every (float32) weight.
  const P = use.lora ? A : parameterCount(c) * 4;
  const C = c.hiddenSize,
    qd = c.numHeads * c.headDim,
    kd = c.numKvHeads * c.headDim,
    I = c.intermediateSize;
  const N = use.batchTokens ?? 0;
  const perLayer = C * 4 + 2 + qd * 3 + kd * 4 + c.numHeads * 2 + c.numKvHeads + I * 3;
  const checkpointing = use.training && use.gradientCheckpointing;
  const layers = use.training && !checkpointing ? c.numLayers : 1;
  // Checkpointing keeps the inputs of layers 1..L-1 beside the working slot (layer 0's input is the slot's own).
  const inputs = checkpointing ? (c.numLayers - 1) * C : 0;
  const headRows = Math.min(N, use.headChunkRows || headChunkRows(c.vocabSize));
  const r = use.lora?.r ?? 0;
  const loraPerLayer = r ? 7 * r : 0;
  let act = N * ((perLayer + loraPerLayer) * layers + inputs + 2 * C + 1) + headRows * c.vocabSize;
  if (use.training) act += N * (2 * C + 3 * qd + 3 * kd + 3 * I + r);
  const s = use.sampling;
  const kv = s ? 2 * c.numLayers * s.sequences * s.positions * kd * 4 + s.sequences * c.vocabSize * 8 : 0;
  const e = {
    weights: W,
    adapters: A,
    gradients: use.training ? P : 0,
    optimizer: use.training ? 2 * P : 0,
    reference:
      use.reference && !use.lora
        ? parameterCount(c) * (use.reference === 'bf16' || use.reference === 'f16' ? 2 : 4)
        : 0,
    activations: act * 4,
    kvCache: kv,
    total: 0,
  };
  e.total = e.weights + e.adapters + e.gradients + e.optimizer + e.reference + e.activations + e.kvCache;
  return e;
}

function readNumber(path: string): number | null {
  try {
    const s = readFileSync(path, 'utf8').trim();
    return s === 'max' ? null : Number(s);
  } catch {
    return null;
  }
}

/** Bytes this process can still allocate without swapping: MemAvailable, capped by a cgroup limit. */
export function availableMemory(): number {
  let avail = freemem();
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) avail = Number(m[1]) * 1024;
  } catch {
    // not Linux: os.freemem() stands
  }
  const limit = readNumber('/sys/fs/cgroup/memory.max');
  const used = readNumber('/sys/fs/cgroup/memory.current');
  if (limit !== null && used !== null && Number.isFinite(limit)) avail = Math.min(avail, Math.max(0, limit - used));
  return avail;
}

/** "4.68 GB" */
export function formatBytes(b: number): string {
  return b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`;
}

/**
 * Throws a one-line AhaError, before anything is allocated, when `use` of model `c` needs more memory than
 * `available` bytes: the parts it needs, what there is, and what would make it fit.
 */
export function assertMemoryFits(c: EngineConfig, use: MemoryUse, what: string, available = availableMemory()): void {
  const e = estimateMemory(c, use);
  if (e.total <= available) return;
  const parts = (
    [
      ['weights', e.weights],
      ['adapters', e.adapters],
      ['gradients', e.gradients],
      ['AdamW state', e.optimizer],
      ['reference copy', e.reference],
      ['activations', e.activations],
      ['KV cache', e.kvCache],
    ] as const
  )
    .filter(([, b]) => b > 0)
    .map(([n, b]) => `${n} ${formatBytes(b)}`);
  const fixed = e.total - e.activations - e.kvCache;
  let hint: string;
  if (fixed > available) {
    const inference = e.weights + e.activations + e.kvCache;
    const half = use.weights === 'bf16' || use.weights === 'f16';
    hint =
      e.weights > available
        ? half
          ? 'the weights alone do not fit: use a smaller model or a machine with more memory'
          : 'the float32 weights alone do not fit: keep them 16-bit (weights: bf16) or use a smaller model'
        : inference <= available && use.training && !use.lora
          ? 'inference fits, full training does not: train LoRA adapters instead (lora: {r: 16})'
          : 'drop the reference copy (beta 0) or use a smaller model';
  } else {
    const perToken = (e.activations + e.kvCache) / Math.max(1, use.batchTokens ?? 1);
    const fits = Math.floor((available - fixed) / Math.max(1, perToken));
    hint = use.batchTokens
      ? `a smaller batch would fit (at most about ${fits} tokens per forward)`
      : 'use a smaller batch';
  }
  throw new AhaError(
    `out of memory: ${what} needs ${formatBytes(e.total)} (${parts.join(', ')}), ${formatBytes(available)} available; ${hint}`,
  );
}
