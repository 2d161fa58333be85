import { loadAddon, type NativeModelHandle } from './native.ts';
import { tensorLayout, type EngineConfig, type TensorInfo } from './types.ts';
import { AhaError } from '../errors.ts';

export type TokenSeq = ArrayLike<number>;

/** Options of one log-prob pass. */
export interface ForwardOptions {
  /** Keep activations so that `backward` can follow (the next forward discards them). */
  train?: boolean;
  /** Also return the entropy of the predicted distribution at each position. */
  entropy?: boolean;
  /** Run the frozen reference copy (see `snapshotReference`) instead of the live weights. */
  reference?: boolean;
}

/** Per-sequence results: logprobs[s][t] = log p(seq[t+1] | seq[..t]), t = 0..len-2. */
export interface ForwardResult {
  logprobs: Float32Array[];
  entropy?: Float32Array[];
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay, applied to matrices (projections, embeddings) only. */
  weightDecay?: number;
  /** Global L2 gradient-norm clip; 0 or undefined disables. */
  maxGradNorm?: number;
}

export interface StepResult {
  /** Gradient norm before clipping. */
  gradNorm: number;
  /** True when the gradient was not finite: nothing was updated. */
  skipped: boolean;
  step: number;
}

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 means greedy. */
  temperature?: number;
  topP?: number;
  topK?: number;
  stopTokenIds?: number[];
  /** One seed per prompt (same seed and prompt: same output); defaults to seed + index. */
  seeds?: number[];
  seed?: number;
}

export interface Sample {
  tokens: number[];
  /** Log-probs of the sampled tokens under the model, before temperature, top-k and top-p. */
  logprobs: number[];
  finishReason: 'stop' | 'length';
}

/**
 * A decoder-only transformer held by the native engine. All heavy calls return promises and run off the main
 * thread, one at a time per model (calls queue in order).
 */
export class Model {
  readonly config: EngineConfig;
  readonly layout: TensorInfo[];
  private readonly native: NativeModelHandle;
  private queue: Promise<unknown> = Promise.resolve();
  // Views are created once: each native call makes a new ArrayBuffer wrapper.
  private paramsView?: Float32Array;
  private gradsView?: Float32Array;

  constructor(config: EngineConfig) {
    this.config = config;
    const Native = loadAddon().NativeModel;
    try {
      this.native = new Native(config);
    } catch (e) {
      throw new AhaError(`cannot build model: ${(e as Error).message}`);
    }
    this.layout = tensorLayout(config);
  }

  /** The live parameters, zero-copy: writes go straight into the engine. */
  get params(): Float32Array {
    return (this.paramsView ??= this.native.params());
  }
  /** Accumulated gradients, same layout as params. */
  get grads(): Float32Array {
    return (this.gradsView ??= this.native.grads());
  }
  /** AdamW moments (for checkpoints that resume exactly). */
  optimizerState(): { m: Float32Array; v: Float32Array; step: number } {
    return { m: this.native.adamM(), v: this.native.adamV(), step: this.native.optimizerSteps() };
  }
  setOptimizerStep(step: number): void {
    this.native.setOptimizerSteps(step);
  }
  /** Number of parameters. */
  get numParams(): number {
    const last = this.layout[this.layout.length - 1];
    return last.offset + last.size;
  }

  /** Tensor view by Hugging Face name. */
  tensor(name: string): Float32Array {
    const t = this.layout.find((x) => x.name === name);
    if (!t) throw new AhaError(`no tensor named ${name}`);
    return this.params.subarray(t.offset, t.offset + t.size);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run.catch((e: unknown) => {
      throw e instanceof AhaError ? e : new AhaError((e as Error).message);
    });
  }

  private toInt32(seqs: TokenSeq[], what: string): Int32Array[] {
    const { vocabSize, maxPositionEmbeddings } = this.config;
    return seqs.map((s, i) => {
      if (s.length === 0) throw new AhaError(`${what} ${i} is empty`);
      if (s.length > maxPositionEmbeddings)
        throw new AhaError(`${what} ${i} has ${s.length} tokens, over max_position_embeddings ${maxPositionEmbeddings}`);
      const a = s instanceof Int32Array ? s : Int32Array.from(s);
      for (let t = 0; t < a.length; t++)
        if (!(a[t] >= 0 && a[t] < vocabSize) || !Number.isInteger(s[t]))
          throw new AhaError(`token id ${s[t]} at ${what} ${i} position ${t} is out of range [0, ${vocabSize})`);
      return a;
    });
  }

  /** Per-token log-probs (and entropies) of a batch of sequences of any lengths. */
  async forward(seqs: TokenSeq[], opts: ForwardOptions = {}): Promise<ForwardResult> {
    const ids = this.toInt32(seqs, 'sequence');
    if (ids.some((s) => s.length < 2)) throw new AhaError('every sequence needs at least 2 tokens to have a log-prob');
    return this.enqueue(async () => {
      const r = await this.native.forward(ids, opts);
      const split = (flat: Float32Array) => {
        const out: Float32Array[] = [];
        let o = 0;
        for (const s of ids) {
          out.push(flat.subarray(o, o + s.length - 1));
          o += s.length - 1;
        }
        return out;
      };
      return { logprobs: split(r.logprobs), entropy: r.entropy ? split(r.entropy) : undefined };
    });
  }

  /**
   * Accumulates into `grads` the gradient of L = sum dLogprobs[s][t] * logprob[s][t] (+ dEntropy * entropy) for the
   * sequences of the last `forward({train: true})`.
   */
  async backward(dLogprobs: ArrayLike<number>[], dEntropy?: ArrayLike<number>[]): Promise<void> {
    const flat = (xs: ArrayLike<number>[]) => {
      const n = xs.reduce((a, x) => a + x.length, 0);
      const out = new Float32Array(n);
      let o = 0;
      for (const x of xs) {
        out.set(x, o);
        o += x.length;
      }
      return out;
    };
    const dl = flat(dLogprobs);
    const de = dEntropy ? flat(dEntropy) : undefined;
    return this.enqueue(() => this.native.backward(dl, de));
  }

  zeroGrad(): void {
    this.native.zeroGrad();
  }

  /** Clips the global gradient norm, then takes one AdamW step (bias-corrected, decoupled decay). */
  async step(opts: AdamWOptions): Promise<StepResult> {
    if (!(opts.lr >= 0)) throw new AhaError(`learning rate must be >= 0 (got ${opts.lr})`);
    return this.enqueue(() => this.native.adamwStep(opts));
  }

  /** Freezes a copy of the current weights as the reference policy. */
  snapshotReference(): void {
    this.native.snapshotReference();
  }
  dropReference(): void {
    this.native.dropReference();
  }
  get hasReference(): boolean {
    return this.native.hasReference();
  }

  /**
   * Batched sampling with a KV cache; each result equals sampling that prompt alone with its seed. Identical prompts
   * (a GRPO group) are prefilled once. With more than 8 prompts the call holds a packed copy of the weights (their
   * size again) for its decode steps.
   */
  async generate(prompts: TokenSeq[], opts: SampleOptions): Promise<Sample[]> {
    const ids = this.toInt32(prompts, 'prompt');
    if (!(Number.isInteger(opts.maxNewTokens) && opts.maxNewTokens >= 1))
      throw new AhaError(`maxNewTokens must be a positive integer (got ${opts.maxNewTokens})`);
    const base = opts.seed ?? 0;
    const seeds = opts.seeds ?? ids.map((_, i) => base + i);
    if (seeds.length !== ids.length) throw new AhaError(`got ${seeds.length} seeds for ${ids.length} prompts`);
    const nativeOpts = {
      temperature: opts.temperature ?? 1,
      topP: opts.topP ?? 1,
      topK: opts.topK ?? 0,
      maxNewTokens: opts.maxNewTokens,
      stopTokenIds: Int32Array.from(opts.stopTokenIds ?? []),
      seeds,
    };
    return this.enqueue(async () => {
      const r = await this.native.generate(ids, nativeOpts);
      return r.map((x) => ({
        tokens: Array.from(x.tokens),
        logprobs: Array.from(x.logprobs),
        finishReason: x.finishReason as 'stop' | 'length',
      }));
    });
  }
}

/** BLAS kernel and thread counts in use (for benchmarks and bug reports). */
export function engineInfo(): { coreName: string; blasThreads: number; ompThreads: number } {
  return loadAddon().blasInfo();
}
