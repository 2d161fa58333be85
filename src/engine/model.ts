import { loadAddon, type EngineBufferName, type NativeModelHandle } from './native.ts';
import { MAX_VIEW_FLOATS, tensorLayout, type EngineConfig, type TensorInfo } from './types.ts';
import { AhaError } from '../errors.ts';
import { loraLayout, loraScale, type LoraConfig } from './lora.ts';

/** How the engine keeps the weights: float32 (trainable), or frozen in a 16-bit type (bf16, f16). */
export type WeightsDtype = 'f32' | 'bf16' | 'f16';

/** How a model holds its weights and what it trains. */
export interface ModelOptions {
  /**
   * 'bf16'/'f16': the weights stay 16-bit and frozen (products widen them on the fly: results equal float32 math
   * on the rounded weights); training then needs `lora`. Default 'f32'.
   */
  weights?: WeightsDtype;
  /** Train LoRA adapters on a frozen base instead of every weight. */
  lora?: LoraConfig;
}

export type { EngineBufferName } from './native.ts';

export { MAX_VIEW_FLOATS } from './types.ts';

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
  /**
   * The KV cache's element type (default f32). bf16 or f16 halve its memory and the attention's reads; keys and
   * values are rounded to nearest even as they are stored (f16 is llama.cpp's default), so log-probs move slightly.
   */
  kvCacheDtype?: 'f32' | 'bf16' | 'f16';
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
  /** Where each weight sits in the 'params' buffer. */
  readonly layout: TensorInfo[];
  readonly weightsDtype: WeightsDtype;
  /** The LoRA configuration, when the model trains adapters. */
  readonly lora?: LoraConfig;
  /** Where each adapter tensor sits in the 'adapters' buffer (PEFT names; empty without LoRA). */
  readonly adapterLayout: TensorInfo[];
  private readonly native: NativeModelHandle;
  private queue: Promise<unknown> = Promise.resolve();
  // Views are created once: each native call makes a new ArrayBuffer wrapper.
  private readonly views = new Map<string, Float32Array>();
  private readonly byName: Map<string, TensorInfo>;
  private checkpointing = false;
  private headChunk = 0;

  constructor(config: EngineConfig, opts: ModelOptions = {}) {
    this.config = config;
    this.layout = tensorLayout(config);
    this.weightsDtype = opts.weights ?? 'f32';
    this.lora = opts.lora;
    this.adapterLayout = opts.lora ? loraLayout(config, opts.lora) : [];
    const Native = loadAddon().NativeModel;
    try {
      this.native = new Native({
        ...config,
        tensors: this.layout,
        weightsDtype: this.weightsDtype,
        lora: opts.lora ? { r: opts.lora.r, scale: loraScale(opts.lora), tensors: this.adapterLayout } : undefined,
      });
    } catch (e) {
      throw new AhaError(`cannot build model: ${(e as Error).message}`);
    }
    this.byName = new Map([...this.layout, ...this.adapterLayout].map((t) => [t.name, t]));
  }

  /** The tensors that train (and that gradients and AdamW moments are laid out by): the adapters, or every weight. */
  get trainableLayout(): TensorInfo[] {
    return this.lora ? this.adapterLayout : this.layout;
  }
  /** The buffer that trains: 'adapters' under LoRA, else 'params'. */
  get trainableBuffer(): EngineBufferName {
    return this.lora ? 'adapters' : 'params';
  }
  /** Whether `step` can train this model (float32 weights, or LoRA adapters). */
  get trainable(): boolean {
    return !!this.lora || this.weightsDtype === 'f32';
  }

  /**
   * A zero-copy view of `buffer`[offset, offset + length): writes go straight into the engine. At most
   * MAX_VIEW_FLOATS long; the gradient and AdamW buffers are allocated on first view.
   */
  view(buffer: EngineBufferName, offset: number, length: number): Float32Array {
    const v = this.rawView(buffer, offset, length);
    if (!(v instanceof Float32Array))
      throw new AhaError(`the weights are ${this.weightsDtype}: view them with halfView() or weightStore()`);
    return v;
  }

  /** A zero-copy view of the 16-bit weights' bits (bf16 or f16, as `weightsDtype` says). */
  halfView(offset: number, length: number): Uint16Array {
    const v = this.rawView('params', offset, length);
    if (!(v instanceof Uint16Array)) throw new AhaError('the weights are float32: view them with view()');
    return v;
  }

  private rawView(buffer: EngineBufferName, offset: number, length: number): Float32Array | Uint16Array {
    try {
      return this.native.view(buffer, offset, length);
    } catch (e) {
      throw new AhaError((e as Error).message);
    }
  }

  // Whole-tensor and whole-buffer views are kept: each native call makes a new ArrayBuffer wrapper.
  private cachedView(buffer: EngineBufferName, offset: number, length: number): Float32Array {
    const key = `${buffer}:${offset}:${length}`;
    let v = this.views.get(key);
    if (!v) this.views.set(key, (v = this.view(buffer, offset, length)));
    return v;
  }

  /** One tensor of a buffer (up to MAX_VIEW_FLOATS), by Hugging Face name or layout entry. */
  tensorView(tensor: string | TensorInfo, buffer: EngineBufferName = 'params'): Float32Array {
    const t = typeof tensor === 'string' ? this.byName.get(tensor) : tensor;
    if (!t) throw new AhaError(`no tensor named ${String(tensor)}`);
    return this.cachedView(buffer, t.offset, t.size);
  }

  /** `buffer` as a TensorStore (per-tensor, chunked views), for code that must work on models of any size. */
  store(buffer: EngineBufferName): (t: TensorInfo, start: number, length: number) => Float32Array {
    return (t, start, length) => this.view(buffer, t.offset + start, length);
  }

  /** The 16-bit weights as a per-tensor store of their bits (for loading and saving them as they are). */
  halfStore(): (t: TensorInfo, start: number, length: number) => Uint16Array {
    return (t, start, length) => this.halfView(t.offset + start, length);
  }

  /** Elements of a buffer. */
  bufferSize(buffer: EngineBufferName): number {
    const last = (l: TensorInfo[]) => (l.length ? l[l.length - 1].offset + l[l.length - 1].size : 0);
    if (buffer === 'params') return last(this.layout);
    if (buffer === 'adapters') return last(this.adapterLayout);
    return last(this.trainableLayout);
  }

  /** Consecutive views covering the whole buffer, each at most `maxFloats` long. */
  *chunks(buffer: EngineBufferName, maxFloats = MAX_VIEW_FLOATS): Generator<{ offset: number; data: Float32Array }> {
    const n = this.bufferSize(buffer);
    for (let offset = 0; offset < n; offset += maxFloats) {
      yield { offset, data: this.view(buffer, offset, Math.min(maxFloats, n - offset)) };
    }
  }

  private whole(buffer: EngineBufferName): Float32Array {
    const n = this.bufferSize(buffer);
    if (n > MAX_VIEW_FLOATS) {
      throw new AhaError(
        `the model's ${n} ${buffer} (${((n * 4) / 1e9).toFixed(2)} GB) are over one JavaScript view; use tensorView(), store() or chunks()`,
      );
    }
    return this.cachedView(buffer, 0, n);
  }

  /** The live parameters as one zero-copy view (models up to 4 GiB of float32; `tensorView` works for any size). */
  get params(): Float32Array {
    return this.whole('params');
  }
  /** Accumulated gradients, laid out as the trainable buffer (`trainableLayout`). */
  get grads(): Float32Array {
    return this.whole('grads');
  }
  /** The LoRA adapters as one view (see `adapterLayout`). */
  get adapters(): Float32Array {
    return this.whole('adapters');
  }
  /** AdamW moments as tensor stores (for checkpoints that resume exactly), and the steps taken. */
  optimizerState(): {
    m: (t: TensorInfo, start: number, length: number) => Float32Array;
    v: (t: TensorInfo, start: number, length: number) => Float32Array;
    step: number;
  } {
    return { m: this.store('adamM'), v: this.store('adamV'), step: this.native.optimizerSteps() };
  }
  setOptimizerStep(step: number): void {
    if (!(Number.isSafeInteger(step) && step >= 0))
      throw new AhaError(`optimizer step must be an integer >= 0 (got ${step})`);
    this.native.setOptimizerSteps(step);
  }
  /** Number of weights (the model's parameters, adapters not counted). */
  get numParams(): number {
    return this.bufferSize('params');
  }
  /** Number of trained parameters (the adapters under LoRA). */
  get numTrainable(): number {
    return this.bufferSize(this.trainableBuffer);
  }

  /** A float32 weight or adapter tensor by name (Hugging Face's, or PEFT's for adapters). */
  tensor(name: string): Float32Array {
    const t = this.byName.get(name);
    if (!t) throw new AhaError(`no tensor named ${name}`);
    return this.tensorView(t, this.adapterLayout.includes(t) ? 'adapters' : 'params');
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
        throw new AhaError(
          `${what} ${i} has ${s.length} tokens, over max_position_embeddings ${maxPositionEmbeddings}`,
        );
      const a = s instanceof Int32Array ? s : Int32Array.from(s);
      for (let t = 0; t < a.length; t++)
        if (!(a[t] >= 0 && a[t] < vocabSize) || !Number.isInteger(s[t]))
          throw new AhaError(`token id ${s[t]} at ${what} ${i} position ${t} is out of range [0, ${vocabSize})`);
      return a;
    });
  }

  /**
   * Gradient checkpointing (transformers' `gradient_checkpointing`): from the next `forward({train: true})` on, keep
   * only each layer's input and recompute the layer's activations in `backward`, one layer at a time. Activation
   * memory drops from every layer's to one layer's plus the layer inputs, for one more forward pass of compute;
   * gradients are bit-identical (the same layer body runs the same ops on the same input).
   */
  setGradientCheckpointing(on: boolean): void {
    this.checkpointing = on;
  }
  get gradientCheckpointing(): boolean {
    return this.checkpointing;
  }

  /**
   * Rows of logits the head holds at once (forward computes log-probs chunk by chunk, backward recomputes each
   * chunk's logits); 0 (the default) takes as many rows as fit 64 MiB, at least one. Log-probs and entropies do not
   * depend on it; the lm_head gradient adds up per chunk, so it does in float rounding.
   */
  setHeadChunkRows(rows: number): void {
    if (!(Number.isSafeInteger(rows) && rows >= 0 && rows <= 2 ** 31 - 1))
      throw new AhaError(`head chunk rows must be an integer >= 0 (got ${rows})`);
    this.headChunk = rows;
  }

  /** Per-token log-probs (and entropies) of a batch of sequences of any lengths. */
  async forward(seqs: TokenSeq[], opts: ForwardOptions = {}): Promise<ForwardResult> {
    const ids = this.toInt32(seqs, 'sequence');
    if (ids.some((s) => s.length < 2)) throw new AhaError('every sequence needs at least 2 tokens to have a log-prob');
    if (ids.length === 0 && !opts.train) return { logprobs: [], entropy: opts.entropy ? [] : undefined };
    // The settings at call time, not when the queued call runs.
    const nativeOpts = {
      train: opts.train,
      entropy: opts.entropy,
      reference: opts.reference,
      gradientCheckpointing: this.checkpointing,
      headChunkRows: this.headChunk,
    };
    return this.enqueue(async () => {
      const r = await this.native.forward(ids, nativeOpts);
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
   * The final-norm hidden state at each sequence's last token, [numSeqs, hiddenSize] row-major, with no head over
   * the vocabulary (a sequence classifier scores it). Sequences are packed without padding, so the last token is
   * each one's last non-pad token.
   */
  async lastHidden(seqs: TokenSeq[]): Promise<Float32Array> {
    const ids = this.toInt32(seqs, 'sequence');
    if (ids.length === 0) return new Float32Array(0);
    return this.enqueue(() => this.native.lastHidden(ids));
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

  /**
   * Freezes a copy of the current weights as the reference policy (under LoRA: nothing to copy, the base is it).
   * `dtype` bf16 or f16 keeps the copy rounded to that type (to nearest even), in half the memory: the reference's
   * log-probs are then float32 math on the rounded weights, exact when the weights are a checkpoint of that type
   * not yet trained.
   */
  snapshotReference(dtype: WeightsDtype = 'f32'): void {
    this.native.snapshotReference(dtype);
  }
  dropReference(): void {
    this.native.dropReference();
  }
  get hasReference(): boolean {
    return this.native.hasReference();
  }
  /** The type of the reference copy (full fine-tuning; meaningless when there is none or under LoRA). */
  get referenceDtype(): WeightsDtype {
    return this.native.referenceDtype();
  }

  /**
   * Batched sampling with a KV cache; each result equals sampling that prompt alone with its seed. Identical prompts
   * (a GRPO group) are prefilled once. With more than 8 prompts the call holds a packed copy of the weights (their
   * size again) for its decode steps.
   */
  async generate(prompts: TokenSeq[], opts: SampleOptions): Promise<Sample[]> {
    const ids = this.toInt32(prompts, 'prompt');
    if (!(Number.isSafeInteger(opts.maxNewTokens) && opts.maxNewTokens >= 1))
      throw new AhaError(`maxNewTokens must be a positive integer (got ${opts.maxNewTokens})`);
    const t = opts.temperature ?? 1;
    if (!(Number.isFinite(t) && t >= 0)) throw new AhaError(`temperature must be a finite number >= 0 (got ${t})`);
    const p = opts.topP ?? 1;
    if (!(p > 0 && p <= 1)) throw new AhaError(`topP must be in (0, 1] (got ${p})`);
    const k = opts.topK ?? 0;
    if (!(Number.isSafeInteger(k) && k >= 0)) throw new AhaError(`topK must be an integer >= 0 (got ${k})`);
    const base = opts.seed ?? 0;
    const seeds = opts.seeds ?? ids.map((_, i) => base + i);
    if (seeds.length !== ids.length) throw new AhaError(`got ${seeds.length} seeds for ${ids.length} prompts`);
    for (const s of seeds)
      if (!(Number.isSafeInteger(s) && s >= 0)) throw new AhaError(`seeds must be integers in [0, 2^53) (got ${s})`);
    const kvCacheDtype = opts.kvCacheDtype ?? 'f32';
    if (!['f32', 'bf16', 'f16'].includes(kvCacheDtype))
      throw new AhaError(`kvCacheDtype must be f32, bf16 or f16 (got ${JSON.stringify(kvCacheDtype)})`);
    if (ids.length === 0) return [];
    const nativeOpts = {
      kvCacheDtype,
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
