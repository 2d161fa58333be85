/** A scripted Generator for the r1 tests: outputs per problem id, optional failure after some prompts. */
import type { GenerateOptions, Generation, Generator } from '../../src/eval/generators.ts';

export class FakeGenerator implements Generator {
  readonly description: string;
  /** Problem ids of every generate call, in order. */
  readonly calls: string[][] = [];

  constructor(
    private readonly outputs: (id: string, sample: number) => string,
    private readonly o: { failAfter?: number; name?: string } = {},
  ) {
    this.description = o.name ?? 'fake generator';
  }

  async generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]> {
    const ids = opts.ids ?? prompts.map((_, i) => String(i));
    this.calls.push([...ids]);
    const out: Generation[][] = [];
    for (let i = 0; i < prompts.length; i++) {
      if (this.o.failAfter !== undefined && i >= this.o.failAfter) throw new Error(`server down at ${ids[i]}`);
      const gens = Array.from({ length: opts.n }, (_, j) => {
        const text = this.outputs(ids[i], j);
        return { text, tokens: text.length, finishReason: 'stop' };
      });
      out.push(gens);
      await opts.onPrompt?.(i, gens);
    }
    return out;
  }
}
