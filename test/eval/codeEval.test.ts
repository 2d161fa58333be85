import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadBenchmark, type Benchmark } from '../../src/eval/benchmarks.ts';
import { codeProgram, codeScorer } from '../../src/eval/codeScorer.ts';
import { evaluate, type SampleRecord } from '../../src/eval/evaluate.ts';
import { runEval } from '../../src/eval/evalRun.ts';
import type { GenerateOptions, Generation, Generator } from '../../src/eval/generators.ts';
import { codeUserMessage, makePromptFormat } from '../../src/eval/promptTemplates.ts';
import { loadHumanEval } from '../../src/judge/humaneval.ts';
import { JudgePool } from '../../src/judge/pool.ts';
import { workRoot } from '../judge/support.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-code-eval-'));
const runs = workRoot();
after(() => {
  assert.deepEqual(readdirSync(runs), [], 'every judge run directory is gone');
  rmSync(tmp, { recursive: true, force: true });
  rmSync(runs, { recursive: true, force: true });
});
const judge = { pool: new JudgePool(2), workRoot: runs };
const rows = loadHumanEval().slice(0, 4);
const fence = (lang: string, code: string) => `Here is the solution.\n\`\`\`${lang}\n${code}\n\`\`\`\n`;
const g = (text: string): Generation => ({ text, tokens: 10, finishReason: 'stop' });

/** Answers from a script keyed by the entry point named in the prompt; counts its calls. */
class ScriptedGenerator implements Generator {
  readonly description = 'scripted';
  calls = 0;
  constructor(private readonly script: Record<string, Generation[]>) {}
  async generate(prompts: readonly string[], opts: GenerateOptions): Promise<Generation[][]> {
    this.calls++;
    const out: Generation[][] = [];
    for (let i = 0; i < prompts.length; i++) {
      const entry = Object.keys(this.script).find((e) => prompts[i].includes(`def ${e}(`))!;
      out.push(this.script[entry].slice(0, opts.n));
      await opts.onPrompt?.(i, out[i]);
    }
    return out;
  }
}

describe('code benchmarks', () => {
  it('humaneval loads as a code benchmark: 164 function-completion problems in Python, one check each', async () => {
    const b = await loadBenchmark('humaneval');
    assert.equal(b.kind, 'code');
    assert.equal(b.examples.length, 164);
    const e = b.examples[0];
    assert.deepEqual([e.id, e.answer, e.code?.language, e.code?.completesPrompt], ['HumanEval/0', '', 'python', true]);
    assert.equal(e.question, rows[0].prompt);
    assert.deepEqual(e.code?.tests, [{ kind: 'assert', code: `${rows[0].test}\n\ncheck(has_close_elements)\n` }]);

    // A file whose rows carry stdin/stdout tests is a code benchmark too; the fence's tag picks the language.
    const file = join(tmp, 'io.jsonl');
    writeFileSync(file, JSON.stringify({ id: 'add', question: 'add', tests: [{ stdin: '1 2', stdout: '3' }] }) + '\n');
    const io = await loadBenchmark(file);
    assert.equal(io.kind, 'code');
    assert.deepEqual(io.examples[0].code, {
      tests: [{ kind: 'io', stdin: '1 2', stdout: '3' }],
      language: undefined,
      completesPrompt: false,
    });
    writeFileSync(file, JSON.stringify({ question: 'q', tests: [{ stdin: 1 }] }) + '\n');
    await assert.rejects(loadBenchmark(file), {
      message: `${file}:1: tests[0]: expected {"stdin": string, "stdout": string} or an assertion string`,
    });
  });

  it('the program: the last code block after the question, or question + completion cut at the Codex stops', () => {
    const code = { tests: [], language: 'python' as const, completesPrompt: true };
    const q = { question: 'def f(x):\n    """doc"""\n' };
    assert.deepEqual(codeProgram(q, code, fence('python', 'def f(x):\n    return x')), {
      program: 'def f(x):\n    """doc"""\n\ndef f(x):\n    return x\n',
      code: 'def f(x):\n    return x',
      language: 'python',
      rule: 'code_block',
    });
    assert.deepEqual(codeProgram(q, code, '    return x\n\ndef g():\n    pass\nprint(1)'), {
      program: 'def f(x):\n    """doc"""\n    return x\n',
      code: '    return x\n',
      language: 'python',
      rule: 'prompt_completion',
    });
    assert.deepEqual(codeProgram(q, code, fence('js', 'x')), { program: null, reason: 'wrong_language' });
    const io = { tests: [], completesPrompt: false };
    assert.deepEqual(codeProgram({ question: 'add' }, io, 'print(3)'), { program: null, reason: 'no_code_block' });
    assert.equal(codeProgram({ question: 'add' }, io, fence('cpp', 'int main(){}')).program, 'int main(){}');
  });

  it("runEval on HumanEval: pass@1 and pass@k match hand computation, the math files' layout, and a rerun resumes", async () => {
    const [p0, p1, p2, p3] = rows;
    const whole = (r: (typeof rows)[number]) => fence('python', r.prompt + r.canonical_solution);
    const script: Record<string, Generation[]> = {
      // 4 of 4: the whole function in a block.
      [p0.entry_point]: [g(whole(p0)), g(whole(p0)), g(whole(p0)), g(whole(p0))],
      // 2 of 4: a block, and a base model's continuation (no block: the question + the completion); a wrong
      // function; text that is no Python at all.
      [p1.entry_point]: [
        g(whole(p1)),
        g(p1.canonical_solution),
        g(fence('python', `def ${p1.entry_point}(paren_string):\n    return []`)),
        g("I don't know."),
      ],
      // 1 of 4: a block holding only the body; JavaScript; a crash; a correct block inside the reasoning only.
      [p2.entry_point]: [
        g(fence('python', p2.canonical_solution)),
        g(fence('js', 'function truncate_number(x) { return x % 1; }')),
        g(fence('python', `def ${p2.entry_point}(number):\n    raise ValueError("no")`)),
        g(`<think>${whole(p2)}</think> done`),
      ],
      // 0 of 4.
      [p3.entry_point]: Array.from({ length: 4 }, () =>
        g(fence('python', `def ${p3.entry_point}(operations):\n    return False`)),
      ),
    };
    const bench: Benchmark = { ...(await loadBenchmark('humaneval', { limit: 4 })) };
    const gen = new ScriptedGenerator(script);
    const out = join(tmp, 'run');
    const opts = {
      benchmark: bench,
      generator: gen,
      samples: 4,
      temperature: 0.6,
      topP: 0.95,
      maxNewTokens: 64,
      prompt: (q: string) => q,
      scorer: codeScorer({ judge }),
      settings: { benchmark: 'humaneval', samples: 4 },
      out,
    };
    const s = await runEval(opts);
    // c = 4, 2, 1, 0 of n = 4. pass@1 = (1 + 1/2 + 1/4 + 0) / 4; pass@2 = 1 - C(n-c, 2)/C(4, 2) = 1, 5/6, 1/2, 0.
    assert.equal(s.pass_at_1, 0.4375);
    assert.ok(Math.abs(s.pass_at['2'] - (1 + 5 / 6 + 1 / 2) / 4) < 1e-12, `pass@2 ${s.pass_at['2']}`);
    assert.equal(s.pass_at_k, 0.75);
    assert.deepEqual(Object.keys(s.pass_at), ['1', '2', '4']);
    assert.equal(s.cons_at_k, null, 'no majority vote over programs');
    assert.equal(s.format_rate, 12 / 16, 'samples whose program came from a code block');
    assert.deepEqual(s.reasons, {
      accepted: 7,
      compile_error: 2,
      runtime_error: 1,
      wrong_answer: 5,
      wrong_language: 1,
    });
    assert.deepEqual([s.problems, s.samples, s.generated_problems, s.resumed_problems], [4, 4, 4, 0]);

    // The files of a math run: generations per problem, settings, summary.
    assert.deepEqual(readdirSync(out).sort(), ['humaneval.jsonl', 'humaneval.run.json', 'humaneval.summary.json']);
    const recs = readFileSync(join(out, 'humaneval.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SampleRecord);
    assert.equal(recs.length, 16);
    const of = (id: string) => recs.filter((r) => r.problem_id === id).sort((a, b) => a.sample - b.sample);
    assert.deepEqual(
      of(p1.task_id).map((r) => [r.rule, r.equal, r.reason]),
      [
        ['code_block', true, 'accepted'],
        ['prompt_completion', true, 'accepted'],
        ['code_block', false, 'wrong_answer'],
        ['prompt_completion', false, 'compile_error'],
      ],
    );
    assert.deepEqual(
      of(p2.task_id).map((r) => [r.rule, r.equal, r.reason]),
      [
        ['code_block', true, 'accepted'],
        [null, false, 'wrong_language'],
        ['code_block', false, 'runtime_error'],
        ['prompt_completion', false, 'compile_error'],
      ],
    );
    assert.match(of(p2.task_id)[2].stderr!, /ValueError: no/);
    assert.equal(of(p1.task_id)[1].extracted, p1.canonical_solution);
    const saved = JSON.parse(readFileSync(join(out, 'humaneval.summary.json'), 'utf8'));
    assert.equal(saved.pass_at_1, 0.4375);
    assert.deepEqual(saved.reasons, s.reasons);

    // Rerun: nothing is generated or judged again, the numbers are the same.
    const again = await runEval(opts);
    assert.equal(gen.calls, 1);
    assert.deepEqual(
      [again.pass_at_1, again.pass_at, again.format_rate, again.reasons, again.resumed_problems],
      [s.pass_at_1, s.pass_at, s.format_rate, s.reasons, 4],
    );
  });

  it('stdin/stdout problems: no code block scores 0 as no_code_block', async () => {
    const problems = [
      {
        id: 'add',
        question: 'Read two numbers, print their sum.',
        answer: '',
        meta: {},
        source: 't:1',
        code: { tests: [{ kind: 'io' as const, stdin: '1 2', stdout: '3' }], completesPrompt: false },
      },
    ];
    const gen = new ScriptedGenerator({});
    gen.generate = async (prompts, opts) => {
      const outs = [g(fence('', 'a, b = map(int, input().split())\nprint(a + b)')), g('The sum is 3.')];
      await opts.onPrompt?.(0, outs);
      return [outs];
    };
    const r = await evaluate({
      problems,
      generator: gen,
      samples: 2,
      temperature: 0.6,
      topP: 0.95,
      maxNewTokens: 8,
      prompt: (q) => q,
      scorer: codeScorer({ judge }),
    });
    assert.deepEqual(
      r.records.map((x) => [x.equal, x.reason]),
      [
        [true, 'accepted'],
        [false, 'no_code_block'],
      ],
    );
    assert.equal(r.summary.pass_at_1, 0.5);
  });

  it("the default prompt on code: EvalPlus's instruction around the question", () => {
    const f = makePromptFormat('default', { userMessage: codeUserMessage });
    assert.equal(
      f.render('def f():\n'),
      'User: Please provide a self-contained Python script that solves the following problem in a markdown code block:\n```python\ndef f():\n```\nAssistant:',
    );
    assert.equal(makePromptFormat('{question}').render('def f():\n'), 'def f():\n');
  });
});
