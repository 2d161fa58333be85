import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { configureBlasKernel } from './blasKernel.ts';
import { configureOmpWaitPolicy } from './ompWaitPolicy.ts';
import { configureRankThreads } from './rankThreads.ts';
import { AhaError } from '../errors.ts';

/**
 * The engine's buffers: the weights ('params', laid out by `tensorLayout`, float32 or 16-bit), the LoRA adapters
 * (`loraLayout`), and the gradients and AdamW moments of whichever of the two trains.
 */
export type EngineBufferName = 'params' | 'adapters' | 'grads' | 'adamM' | 'adamV';

/** Raw addon surface; use the typed `Model` in model.ts instead. */
export interface NativeModelHandle {
  layout(): { name: string; shape: number[]; offset: number; size: number }[];
  /** Zero-copy view of [offset, offset + length) of one buffer; at most 2^32 bytes. 16-bit weights come as their bits. */
  view(buffer: EngineBufferName, offset: number, length: number): Float32Array | Uint16Array;
  optimizerSteps(): number;
  setOptimizerSteps(n: number): void;
  zeroGrad(): void;
  snapshotReference(dtype?: 'f32' | 'bf16' | 'f16'): void;
  referenceDtype(): 'f32' | 'bf16' | 'f16';
  dropReference(): void;
  hasReference(): boolean;
  forward(
    seqs: Int32Array[],
    opts: {
      train?: boolean;
      entropy?: boolean;
      reference?: boolean;
      gradientCheckpointing?: boolean;
      headChunkRows?: number;
    },
  ): Promise<{
    logprobs: Float32Array;
    entropy?: Float32Array;
  }>;
  backward(dlogp: Float32Array, dentropy?: Float32Array): Promise<void>;
  adamwStep(opts: object): Promise<{ gradNorm: number; skipped: boolean; step: number }>;
  /** Final-norm hidden state at each sequence's last token, [numSeqs, hidden] row-major. */
  lastHidden(seqs: Int32Array[]): Promise<Float32Array>;
  generate(
    prompts: Int32Array[],
    opts: object,
  ): Promise<{ tokens: Int32Array; logprobs: Float32Array; finishReason: string }[]>;
}

/** C[M,N] = X[M,K] W[N,K]^T (+ bias), a kernel exposed for its test against float64. */
type GemmKernel = (
  X: Float32Array,
  W: Float32Array,
  bias: Float32Array | null,
  M: number,
  K: number,
  N: number,
) => Float32Array;

interface Addon {
  /**
   * `config`: an EngineConfig plus `tensors: tensorLayout(config)`, the parameter layout the engine takes (checked
   * against the config). Typed loosely so that tests can hand it malformed configs.
   */
  NativeModel: new (config: object) => NativeModelHandle;
  blasInfo(): { coreName: string; blasThreads: number; ompThreads: number };
  setThreads(n: number): void;
  /** 'sgemm': GFLOP/s of C = A B^T at [M,K] x [N,K] (best of reps); 'fma': the cores' float32 FMA peak. */
  probe(kind: 'sgemm' | 'fma', M?: number, N?: number, K?: number, reps?: number): Promise<number>;
  /** Inner kernels, exposed for their tests against float64 references. */
  kernels: {
    smallGemmNT: GemmKernel;
    expShiftSum(x: Float32Array, shift: number): { y: Float32Array; sum: number; max: number };
    /** Packs W, then C = X W^T (+ bias) through the decode kernel for packed weights. */
    packedGemmNT: GemmKernel;
    /** C = X W^T (+ bias) with W rounded to bf16 or f16, through the 16-bit weights' product. */
    linear16(
      X: Float32Array,
      W: Float32Array,
      bias: Float32Array | null,
      M: number,
      K: number,
      N: number,
      dtype: 'bf16' | 'f16',
    ): Float32Array;
    packedAvailable: boolean;
  };
}

let addon: Addon | undefined;

/**
 * Loads the native engine once, after choosing the BLAS kernel and the OpenMP waiting policy (both read when the
 * libraries load).
 */
export function loadAddon(): Addon {
  if (addon) return addon;
  configureBlasKernel();
  configureOmpWaitPolicy();
  configureRankThreads();
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  // AHA_ENGINE: another build of the addon (the sanitizer job's, see scripts/test-sanitize.sh).
  const path = process.env.AHA_ENGINE || join(root, 'build', 'Release', 'aha_engine.node');
  if (!existsSync(path))
    throw new AhaError(`native engine not built (${path} missing): run \`npm ci\` or \`npm run build:native\``);
  addon = createRequire(import.meta.url)(path) as Addon;
  return addon;
}
