import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BenchmarkExample } from '../../src/eval/benchmarks.ts';
import { evaluate, formatOk, scoreSample, type SampleRecord } from '../../src/eval/evaluate.ts';
import { runEval } from '../../src/eval/evalRun.ts';
import {
  LocalEngineGenerator,
  sampleSeed,
  type GenerateOptions,
  type Generation,
  type Generator,
} from '../../src/eval/generators.ts';
import {
  makePromptFormat,
  MATH_INSTRUCTION,
  promptOpensThink,
  type PromptFormat,
} from '../../src/eval/promptTemplates.ts';
import { r1ZeroPrompt } from '../../src/data/r1ZeroTemplate.ts';
import { initModel } from '../../src/model/initModel.ts';
import { loadPretrained, type Pretrained } from '../../src/model/pretrained.ts';
import { writeCharTokenizer } from '../../src/model/charTokenizer.ts';
import { AhaError } from '../../src/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-eval-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A Generator that answers from a script keyed by problem id (the id is recovered from the prompt "Q:<id>"). */
class ScriptedGenerator implements Generator {
  readonly description = 'scripted';
  calls: { prompts: string[]; opts: GenerateOptions }[] = [];
  constructor(
    private readonly script: Record<string, Generation[]>,
    private readonly report = true,
  ) {}
  async generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]> {
    this.calls.push({ prompts: [...prompts], opts });
    const out: Generation[][] = [];
    for (let i = 0; i < prompts.length; i++) {
      const id = /Q:(\w+)/.exec(prompts[i])![1];
      out.push(this.script[id].slice(0, opts.n));
      if (this.report) await opts.onPrompt?.(i, out[i]);
    }
    return out;
  }
}

const g = (text: string, tokens: number | null = 10, finishReason = 'stop'): Generation => ({
  text,
  tokens,
  finishReason,
});
const problem = (id: string, answer: string, level: string, subject: string): BenchmarkExample => ({
  id,
  question: `Q:${id}`,
  answer,
  meta: { level, subject },
  source: `test:${id}`,
});

const problems = [
  problem('a', '5', '1', 'Algebra'),
  problem('b', '\\frac{1}{2}', '2', 'Algebra'),
  problem('c', '7', '2', 'Geometry'),
  problem('d', '10', '1', 'Geometry'),
  problem('e', '1', '3', 'Geometry'),
];
// Per problem (k = 4): c correct; the vote; which samples are well-formatted.
const script: Record<string, Generation[]> = {
  // c = 2; vote 5 (2) over 6 (1): right; formatted 3 (the last has no answer).
  a: [g('so \\boxed{5}', 10), g('\\boxed{5}', 20), g('\\boxed{6}', 30), g('no idea here', 40)],
  // c = 2 (0.5 and 1/2 both equal 1/2); a 2-2 tie between the bloc {0.5, 1/2} and {3}: the bloc seen first wins: right.
  b: [g('\\boxed{0.5}', 10), g('\\boxed{3}', 20), g('\\boxed{3}', 30), g('\\boxed{1/2}', 40)],
  // c = 2; a 2-2 tie between 8 (first seen at sample 0) and 7: 8 wins: wrong. Sample 0 is unboxed: formatted 3.
  c: [g('The answer is 8.', 10), g('\\boxed{7}', 20), g('\\boxed{7}', 30), g('\\boxed{8}', 40)],
  // Reasoning outputs. s0: the box inside the reasoning is ignored, 12 after </think> is wrong. s1: never closed
  // (truncated): the whole text is searched, 10 is right, but not well-formatted. s2: 11, wrong. s3: nothing after
  // </think>. c = 1; vote: 12, 10, 11 one each: 12 (first) wins: wrong. Formatted: s0, s2.
  d: [
    g('<think>\nI get \\boxed{10}\n</think>\nSo \\boxed{12}', 10),
    g('<think>\nlong reasoning \\boxed{10}', 20, 'length'),
    g('<think>\nx\n</think>\n\\boxed{11}', 30),
    g('<think>\nx\n</think>\n', 40),
  ],
  // c = 0; lengths unknown (null) and left out of the mean.
  e: [g('\\boxed{2}', null), g('\\boxed{2}', null), g('\\boxed{2}', null), g('\\boxed{2}', null)],
};

describe('evaluate() with a scripted generator', () => {
  it('pass@1, pass@k, cons@k, format rate, lengths and the by-level/by-subject breakdowns match hand computation', async () => {
    const gen = new ScriptedGenerator(script);
    const r = await evaluate({
      problems,
      generator: gen,
      samples: 4,
      temperature: 0.6,
      topP: 0.95,
      maxNewTokens: 100,
      seed: 3,
      prompt: (q) => `${q}\nPlease`,
    });
    assert.equal(gen.calls.length, 1);
    const { opts } = gen.calls[0];
    assert.deepEqual([opts.n, opts.temperature, opts.topP, opts.maxNewTokens, opts.seed], [4, 0.6, 0.95, 100, 3]);
    assert.deepEqual(opts.ids, ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(
      r.scores.map((s) => [s.id, s.n, s.c, s.voteCorrect, s.formatted]),
      [
        ['a', 4, 2, true, 3],
        ['b', 4, 2, true, 4],
        ['c', 4, 2, false, 3],
        ['d', 4, 1, false, 2],
        ['e', 4, 0, false, 4],
      ],
    );
    assert.equal(r.scores[1].vote, '0.5');
    assert.equal(r.scores[2].vote, '8');
    assert.equal(r.scores[3].vote, '12');
    const s = r.summary;
    const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
    assert.equal(s.problems, 5);
    assert.equal(s.samples, 4);
    // pass@1 = mean(2/4, 2/4, 2/4, 1/4, 0) = 1.75 / 5.
    close(s.pass_at_1, 0.35, 'pass@1');
    // pass@4 with n = 4: any sample right: a b c d.
    close(s.pass_at_k, 0.8, 'pass@4');
    // pass@2 = 1 - C(n-c, 2)/C(4, 2): c=2 → 5/6, c=1 → 1/2, c=0 → 0; (3 * 5/6 + 1/2) / 5.
    close(s.pass_at['2'], 0.6, 'pass@2');
    close(s.pass_at['1'], 0.35, 'pass_at[1]');
    close(s.pass_at['4'], 0.8, 'pass_at[4]');
    assert.deepEqual(Object.keys(s.pass_at), ['1', '2', '4']);
    close(s.cons_at_k!, 0.4, 'cons@4');
    close(s.format_rate, 16 / 20, 'format');
    close(s.mean_length!, 25, 'mean length (nulls left out)');
    close(s.truncated_rate, 1 / 20, 'truncated');
    assert.equal(s.prompts_too_long, 0);
    assert.deepEqual(s.by_level, {
      1: { problems: 2, pass_at_1: 0.375, pass_at_k: 1, cons_at_k: 0.5 },
      2: { problems: 2, pass_at_1: 0.5, pass_at_k: 1, cons_at_k: 0.5 },
      3: { problems: 1, pass_at_1: 0, pass_at_k: 0, cons_at_k: 0 },
    });
    assert.deepEqual(Object.keys(s.by_level!), ['1', '2', '3']);
    assert.deepEqual(s.by_subject!.Algebra, { problems: 2, pass_at_1: 0.5, pass_at_k: 1, cons_at_k: 1 });
    assert.equal(s.by_subject!.Geometry.problems, 3);
    close(s.by_subject!.Geometry.pass_at_1, 0.25, 'Geometry pass@1');
    close(s.by_subject!.Geometry.pass_at_k, 2 / 3, 'Geometry pass@4');
    assert.equal(s.by_subject!.Geometry.cons_at_k, 0);
    // The records are the JSONL lines: every field present.
    const rec = r.records.find((x) => x.problem_id === 'd' && x.sample === 0)!;
    assert.deepEqual(rec, {
      problem_id: 'd',
      sample: 0,
      prompt: 'Q:d\nPlease',
      completion: script.d[0].text,
      extracted: '12',
      rule: 'boxed',
      equal: false,
      reason: rec.reason,
      tokens: 10,
      finish_reason: 'stop',
    });
    assert.equal(r.records.find((x) => x.problem_id === 'a' && x.sample === 3)!.extracted, null);
    assert.match(r.records.find((x) => x.problem_id === 'a' && x.sample === 3)!.reason!, /no answer found/);
  });

  it('completed problems are reused, not generated again; the summary is the same', async () => {
    const full = await evaluate({
      problems,
      generator: new ScriptedGenerator(script),
      samples: 4,
      temperature: 1,
      topP: 1,
      maxNewTokens: 9,
      prompt: (q) => q,
    });
    const completed = new Map<string, SampleRecord[]>();
    for (const id of ['a', 'c'])
      completed.set(
        id,
        full.records.filter((x) => x.problem_id === id),
      );
    const gen = new ScriptedGenerator(script);
    const progress: number[] = [];
    const r = await evaluate({
      problems,
      generator: gen,
      samples: 4,
      temperature: 1,
      topP: 1,
      maxNewTokens: 9,
      prompt: (q) => q,
      completed,
      onProgress: (done) => progress.push(done),
    });
    assert.deepEqual(gen.calls[0].opts.ids, ['b', 'd', 'e']);
    assert.equal(r.generated, 3);
    assert.deepEqual(r.summary, full.summary);
    assert.deepEqual(progress, [2, 3, 4, 5]);
    const short = new Map([['a', completed.get('a')!.slice(0, 2)]]);
    await assert.rejects(
      evaluate({
        problems,
        generator: gen,
        samples: 4,
        temperature: 1,
        topP: 1,
        maxNewTokens: 9,
        prompt: (q) => q,
        completed: short,
      }),
      /problem a has 2 saved samples, expected 4/,
    );
  });

  it('a generator that only returns its results (no onPrompt calls) is scored the same', async () => {
    const o = { problems, samples: 4, temperature: 1, topP: 1, maxNewTokens: 9, prompt: (q: string) => q };
    const reported = await evaluate({ ...o, generator: new ScriptedGenerator(script) });
    const seen: string[] = [];
    const silent = await evaluate({
      ...o,
      generator: new ScriptedGenerator(script, false),
      onProblem: (p) => {
        seen.push(p.id);
      },
    });
    assert.deepEqual(silent.summary, reported.summary);
    assert.deepEqual(seen, ['a', 'b', 'c', 'd', 'e']);
    await assert.rejects(
      evaluate({ ...o, samples: 5, generator: new ScriptedGenerator(script) }),
      /returned 4 samples for problem a, expected 5/,
    );
  });

  it('answer scope and strategies are configurable', () => {
    const p = { id: 'x', answer: '3' };
    const text = '<think>\nmaybe \\boxed{3}\n</think>\nthe answer is 4';
    assert.equal(scoreSample(p, 0, '', g(text)).extracted, '4');
    assert.equal(scoreSample(p, 0, '', g(text), { answerScope: 'all' }).equal, true);
    const r = scoreSample(p, 0, '', g('I think 3'), { strategies: ['boxed'] });
    assert.deepEqual([r.extracted, r.rule, r.equal], [null, null, false]);
    assert.equal(scoreSample(p, 0, '', g('I think 3')).rule, 'lastNumber');
    // R1-Zero's format: the <answer> tag.
    const z = scoreSample(p, 0, '', g('<think> 1+2 </think> <answer> 3 </answer>'));
    assert.deepEqual([z.extracted, z.rule, z.equal, formatOk(z)], ['3', 'answerTag', true, true]);
  });

  it('format: a prompt that opens <think> (forced prefix) needs </think> in the completion', () => {
    const prompt = 'User: q\nAssistant:<think>\n';
    assert.equal(promptOpensThink(prompt), true);
    assert.equal(promptOpensThink(r1ZeroPrompt('q')), false);
    assert.equal(formatOk({ prompt, completion: 'work\n</think>\n\\boxed{1}', rule: 'boxed' }), true);
    assert.equal(formatOk({ prompt, completion: 'work \\boxed{1}', rule: 'boxed' }), false);
    assert.equal(formatOk({ prompt: 'q', completion: 'work \\boxed{1}', rule: 'boxed' }), true);
    assert.equal(formatOk({ prompt: 'q', completion: 'the answer is 1', rule: 'answerIs' }), false);
  });
});

/** A tiny randomly initialised model with the char tokenizer (its chat template: <|user|>...<|endoftext|><|assistant|>). */
function tinyModelDir(): string {
  const dir = join(tmp, 'tiny');
  const config = join(tmp, 'tiny-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      max_position_embeddings: 160,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      hidden_act: 'silu',
    }),
  );
  initModel({ config, tokenizer: 'chars', out: dir, seed: 1 });
  return dir;
}

describe('prompt templates', () => {
  const q = 'What is 1+1?';
  // The char tokenizer's files carry its chat template; no engine needed.
  const modelDir = join(tmp, 'chat-tok');
  writeCharTokenizer(modelDir);
  it("default: the model's chat template around question + R1's instruction, with the generation prompt", () => {
    const f = makePromptFormat('default', { modelDir });
    assert.equal(f.kind, 'chat');
    assert.equal(f.addSpecialTokens, false);
    assert.equal(f.render(q), `<|user|>${q}\n${MATH_INSTRUCTION}<|endoftext|><|assistant|>`);
    assert.equal(MATH_INSTRUCTION, 'Please reason step by step, and put your final answer within \\boxed{}.');
    assert.equal(
      makePromptFormat('default', { modelDir, thinkPrefix: true }).render(q),
      `<|user|>${q}\n${MATH_INSTRUCTION}<|endoftext|><|assistant|><think>\n`,
    );
  });

  it('plain fallback without a chat template; r1-zero; custom strings and @file; chat messages', () => {
    const plain = makePromptFormat('default', {});
    assert.deepEqual(
      [plain.kind, plain.addSpecialTokens, plain.render(q)],
      ['plain', true, `User: ${q}\n${MATH_INSTRUCTION}\nAssistant:`],
    );
    assert.equal(makePromptFormat('r1-zero', { modelDir }).render(q), r1ZeroPrompt(q));
    assert.equal(
      makePromptFormat('Solve {question} then {question}. A:', { modelDir }).render('x'),
      'Solve x then x. A:',
    );
    const file = join(tmp, 'tpl.txt');
    writeFileSync(file, 'Q: {question}\nA: <think>\n');
    const fromFile = makePromptFormat(`@${file}`, { thinkPrefix: true });
    assert.equal(fromFile.render('y'), 'Q: y\nA: <think>\n', 'an existing <think>\\n prefix is not doubled');
    assert.throws(
      () => makePromptFormat('no placeholder'),
      (e: Error) => e instanceof AhaError && /\{question\}/.test(e.message),
    );
    assert.throws(() => makePromptFormat(`@${join(tmp, 'missing.txt')}`), /file not found/);
    const chat = makePromptFormat('default', { modelDir, chatMessage: true });
    assert.deepEqual([chat.kind, chat.render(q)], ['chat-message', `${q}\n${MATH_INSTRUCTION}`]);
    assert.throws(() => makePromptFormat('default', { chatMessage: true, thinkPrefix: true }), /completions endpoint/);
  });
});

describe('local engine generator', () => {
  let p: Pretrained;
  let format: PromptFormat;
  before(() => {
    const modelDir = tinyModelDir();
    p = loadPretrained(modelDir, { requireTokenizer: true });
    format = makePromptFormat('default', { modelDir });
  });
  const examples: BenchmarkExample[] = ['1+2', '3*4', '10-7'].map((q, i) => ({
    id: `p${i}`,
    question: q,
    answer: String(eval(q)),
    meta: {},
    source: `t:${i}`,
  }));
  const opts = {
    samples: 2,
    temperature: 1,
    topP: 1,
    maxNewTokens: 16,
    seed: 7,
    prompt: (q: string) => format.render(q),
  };
  const gen = (batchSize: number) =>
    new LocalEngineGenerator({
      model: p.model,
      tokenizer: p.tokenizer!,
      addSpecialTokens: format.addSpecialTokens,
      batchSize,
    });
  const texts = (recs: SampleRecord[]) =>
    recs.map((r) => `${r.problem_id}/${r.sample}:${JSON.stringify(r.completion)}:${r.tokens}:${r.finish_reason}`);

  it('samples are seeded per (problem, sample): identical across runs, batch sizes and subsets', async () => {
    const a = await evaluate({ ...opts, problems: examples, generator: gen(4) });
    const b = await evaluate({ ...opts, problems: examples, generator: gen(4) });
    assert.deepEqual(texts(a.records), texts(b.records));
    assert.equal(a.records.length, 6);
    for (const r of a.records) {
      assert.ok(r.tokens! >= 1 && r.tokens! <= 16);
      assert.ok(r.finish_reason === 'stop' || (r.finish_reason === 'length' && r.tokens === 16));
      assert.equal(r.prompt, format.render(examples.find((e) => e.id === r.problem_id)!.question));
    }
    const one = await evaluate({ ...opts, problems: [examples[1]], generator: gen(1) });
    assert.deepEqual(texts(one.records), texts(a.records.filter((r) => r.problem_id === 'p1')));
    const other = await evaluate({ ...opts, seed: 8, problems: examples, generator: gen(4) });
    assert.notDeepEqual(texts(other.records), texts(a.records));
    assert.notEqual(sampleSeed(7, 'p1', 0), sampleSeed(7, 'p1', 1));
  });

  it('runs end to end through runEval: JSONL per problem, summary, resume; a prompt longer than the context is scored wrong', async () => {
    const long: BenchmarkExample = { id: 'long', question: 'x'.repeat(200), answer: '1', meta: {}, source: 't:long' };
    const bench = { name: 'tiny', path: 'memory', examples: [...examples, long] };
    const out = join(tmp, 'local-run');
    const settings = { model: 'tiny', samples: 2 };
    const s = await runEval({ ...opts, benchmark: bench, generator: gen(3), settings, out });
    const lines = readFileSync(join(out, 'tiny.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 8);
    const tooLong = lines.filter((l) => l.problem_id === 'long');
    assert.deepEqual(
      tooLong.map((l) => [l.completion, l.tokens, l.finish_reason, l.equal]),
      [
        ['', 0, 'prompt_too_long', false],
        ['', 0, 'prompt_too_long', false],
      ],
    );
    assert.equal(s.prompts_too_long, 1);
    const generated = lines.filter((l) => l.problem_id !== 'long');
    assert.equal(s.mean_length, generated.reduce((a, l) => a + l.tokens, 0) / generated.length);
    assert.equal(s.generated_problems, 4);
    const saved = JSON.parse(readFileSync(join(out, 'tiny.summary.json'), 'utf8'));
    assert.equal(saved.pass_at_1, s.pass_at_1);
    assert.equal(saved.generator, 'local engine');
    // Rerun: everything is complete, nothing is generated; the same numbers come back.
    const again = await runEval({ ...opts, benchmark: bench, generator: gen(3), settings, out });
    assert.equal(again.generated_problems, 0);
    assert.equal(again.resumed_problems, 4);
    assert.equal(again.pass_at_1, s.pass_at_1);
    assert.equal(readFileSync(join(out, 'tiny.jsonl'), 'utf8').trim().split('\n').length, 8);
  });
});
