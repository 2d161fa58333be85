/**
 * llama.cpp for the GGUF tests, through npm's node-llama-cpp (its prebuilt CPU binaries). It is not a dependency
 * (its install is about 720 MB, every platform's binaries): `npm install --no-save node-llama-cpp` adds it, and
 * without it the tests that need it are skipped with the reason {@link loadLlamaCpp} gives.
 */

/** The part of node-llama-cpp's model API the tests use (its types may be absent). */
export interface LlamaCppModel {
  trainContextSize: number;
  tokenize(text: string, specialTokens?: boolean): number[];
  detokenize(tokens: readonly number[], specialTokens?: boolean): string;
  createContext(o: { contextSize: number; threads?: number }): Promise<{
    getSequence(): { evaluate(tokens: number[], o: { temperature: number }): AsyncIterable<number> };
    dispose(): Promise<void>;
  }>;
  dispose(): Promise<void>;
}
export interface LlamaCpp {
  loadModel(o: { modelPath: string }): Promise<LlamaCppModel>;
  dispose(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(o: Record<string, unknown>): Promise<LlamaCpp>;
  LlamaLogLevel: Record<string, unknown>;
}

/** llama.cpp on the CPU from prebuilt binaries only (never a build from source or a download), or why not. */
export async function loadLlamaCpp(): Promise<{ llama?: LlamaCpp; skip: string | false }> {
  try {
    const moduleName = 'node-llama-cpp';
    const nlc = (await import(moduleName)) as NodeLlamaCpp;
    const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
    return { llama, skip: false };
  } catch (e) {
    return { skip: `node-llama-cpp is not installed or cannot load here (${(e as Error).message.split('\n')[0]})` };
  }
}

/** llama.cpp's greedy continuation of `prompt`, n tokens, in a context of its own on one thread. */
export async function llamaCppGreedy(
  model: LlamaCppModel,
  prompt: number[],
  n: number,
  contextSize: number,
): Promise<number[]> {
  const ctx = await model.createContext({ contextSize, threads: 1 });
  const got: number[] = [];
  try {
    for await (const id of ctx.getSequence().evaluate(prompt, { temperature: 0 })) {
      got.push(id);
      if (got.length === n) break;
    }
  } finally {
    await ctx.dispose();
  }
  return got;
}
