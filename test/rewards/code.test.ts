import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { codeReward, lastCodeBlock, scoreCode, type CodeScore } from '../../src/rewards/code.ts';
import { scoreCompletions } from '../../src/rewards/combine.ts';
import { buildRewards } from '../../src/rl/rewardRegistry.ts';
import { parseGrpoOptions } from '../../src/rl/grpoOptions.ts';
import { initModel } from '../../src/model/initModel.ts';
import { grpoTrain } from '../../src/rl/grpoTrainer.ts';
import type { RecipeInput } from '../../src/rl/recipe.ts';
import { rewardNames, rewardReasons, type StepMetrics } from '../../src/rl/metrics.ts';
import { JudgePool } from '../../src/judge/pool.ts';
import { workRoot } from '../judge/support.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-test-'));
const runs = workRoot();
after(() => {
  assert.deepEqual(readdirSync(runs), []);
  rmSync(root, { recursive: true, force: true });
  rmSync(runs, { recursive: true, force: true });
});
const judge = { pool: new JudgePool(2), workRoot: runs };
const fence = (lang: string, code: string) => `Let me think.\n\`\`\`${lang}\n${code}\n\`\`\`\n`;
const addExample = {
  question: 'add two numbers',
  tests: [
    { stdin: '1 2', stdout: '3' },
    { stdin: '5 5', stdout: '10' },
    { stdin: '0 0', stdout: '1' },
  ],
};
const ADD_PY = 'a, b = map(int, input().split())\nprint(a + b)';

test('lastCodeBlock takes the last complete fence with its tag', () => {
  assert.deepEqual(lastCodeBlock('a\n```python\nx = 1\n```\nthen\n```js\ny\n```'), { info: 'js', code: 'y' });
  assert.deepEqual(lastCodeBlock('```\nprint(1)\n```'), { info: '', code: 'print(1)' });
  assert.equal(lastCodeBlock('no code here'), null);
  assert.equal(lastCodeBlock('```python\nprint(1)'), null, 'a fence cut off by the length limit is no block');
});

test('mode fraction scores the share of tests passed; mode all scores 1 only when every test passes', async () => {
  const c = fence('python', ADD_PY);
  assert.equal(await codeReward({ judge })(c, addExample, { prompt: '' }), 2 / 3);
  assert.equal(await codeReward({ judge, mode: 'all' })(c, addExample, { prompt: '' }), 0);
  const ok = { ...addExample, tests: addExample.tests.slice(0, 2) };
  assert.equal(await codeReward({ judge, mode: 'all' })(c, ok, { prompt: '' }), 1);
  const js = "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(' ').map(Number);\nconsole.log(a + b);";
  assert.equal(await codeReward({ judge })(fence('js', js), ok, { prompt: '' }), 1);
  const cpp = '#include <cstdio>\nint main() { int a, b; scanf("%d %d", &a, &b); printf("%d\\n", a + b); }';
  assert.equal(await codeReward({ judge })(fence('cpp', cpp), ok, { prompt: '' }), 1);
});

test('HumanEval-style examples (test + entry_point) and MBPP-style test_list', async () => {
  const he = { test: 'def check(candidate):\n    assert candidate(3) == 9\n', entry_point: 'sq' };
  assert.equal(await codeReward({ judge })(fence('python', 'def sq(x):\n    return x * x'), he, { prompt: '' }), 1);
  const mbpp = { test_list: ['assert sq(2) == 4', 'assert sq(3) == 9', 'assert sq(4) == 15'] };
  const s = await scoreCode(fence('python', 'def sq(x):\n    return x * x'), mbpp, { judge });
  assert.equal(s.score, 2 / 3);
  assert.equal(s.reason, 'wrong_answer');
});

test('no code block, or the wrong language, scores 0 with the reason given to onScore', async () => {
  const reasons: CodeScore['reason'][] = [];
  const fn = codeReward({ judge, language: 'python', onScore: (s) => reasons.push(s.reason) });
  assert.equal(await fn('the answer is 3', addExample, { prompt: '' }), 0);
  assert.equal(await fn(fence('cpp', 'int main() {}'), addExample, { prompt: '' }), 0);
  assert.equal(
    await fn(fence('python', 'while True: pass'), { tests: [{ stdin: '', stdout: '' }] }, { prompt: '' }),
    0,
  );
  assert.deepEqual(reasons, ['no_code_block', 'wrong_language', 'time_limit']);
  await assert.rejects(async () => fn(fence('python', ADD_PY), { question: 'x' }, { prompt: '' }), /has no tests/);
});

test("the registry builds 'code' with its options and rejects bad ones in one line", async () => {
  const grpo = parseGrpoOptions({});
  const [r] = await buildRewards([{ name: 'code', options: { mode: 'all', timeout_s: 2, memory_mb: 256 } }], {
    grpo,
    baseDir: '.',
  });
  assert.equal(r.kind, 'code');
  assert.equal(await r.fn(fence('python', ADD_PY), { tests: [{ stdin: '2 2', stdout: '4' }] }, { prompt: '' }), 1);
  await assert.rejects(
    buildRewards([{ name: 'code', options: { language: 'rust' } }], { grpo, baseDir: '.', source: 'r.yaml' }),
    /^AhaError: r\.yaml: rewards\[0\]\.options\.language: /,
  );
  await assert.rejects(
    buildRewards([{ name: 'code', options: { timeout: 2 } }], { grpo, baseDir: '.' }),
    /options: unknown option 'timeout'/,
  );
});

test('a GRPO run with the code reward goes through end to end', async () => {
  const cfg = join(root, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      tie_word_embeddings: true,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
    }),
  );
  const model = join(root, 'model');
  initModel({ config: cfg, tokenizer: 'chars', alphabet: '0123456789 abc`\n', out: model, seed: 1 });
  const dataset = Array.from({ length: 4 }, (_, i) => ({
    question: `print ${i}`,
    tests: [{ stdin: '', stdout: String(i) }],
  }));
  // The random model rarely writes a fence, so a second reward also runs a program built from each completion:
  // the judge runs inside every training step either way.
  const fromCompletion = codeReward({ judge });
  const recipe: RecipeInput = {
    model,
    dataset,
    prompt: '{question} ',
    rewards: [
      { name: 'code', options: { timeout_s: 2 } },
      {
        name: 'length_program',
        fn: (c, ex, rc) => fromCompletion(fence('python', `print(${c.length % 4})`), ex, rc),
      },
    ],
    reward_timeout_ms: 120_000,
    grpo: { num_generations: 4, max_completion_length: 8 },
    training: { learning_rate: 1e-3, max_steps: 2, prompts_per_step: 2, seed: 0 },
  };
  const steps: StepMetrics[] = [];
  const r = await grpoTrain(recipe, { outDir: join(root, 'run'), onStep: (m) => void steps.push(m), log: () => {} });
  assert.equal(r.step, 2);
  assert.equal(steps.length, 2);
  for (const m of steps) {
    assert.deepEqual(rewardNames(m).sort(), ['code', 'length_program']);
    assert.equal(m.reward_errors, 0);
    assert.ok(m['rewards/length_program/mean'] >= 0 && m['rewards/length_program/mean'] <= 1);
  }
  // Each reward's reasons are counted over the step's 2 x 4 completions, and written to metrics.jsonl as they are.
  const written = readFileSync(join(root, 'run', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepMetrics);
  assert.deepEqual(
    written.map((m) => rewardReasons(m)),
    steps.map((m) => rewardReasons(m)),
  );
  const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
  for (const m of written) {
    const reasons = rewardReasons(m);
    assert.deepEqual(Object.keys(reasons), ['code', 'length_program']);
    assert.equal(sum(reasons.code), 8);
    assert.equal(sum(reasons.length_program), 8);
    // The one test per example passes or not: a score of 1 is exactly an 'accepted' reason.
    assert.equal(reasons.code.accepted ?? 0, m['rewards/code/mean'] * 8);
    assert.equal(reasons.length_program.accepted ?? 0, m['rewards/length_program/mean'] * 8);
    for (const r of Object.keys(reasons.length_program)) assert.ok(['accepted', 'wrong_answer'].includes(r), r);
  }
  // The random model almost never closes a fence in 8 characters: most completions have no code block.
  assert.ok(written.some((m) => (m['reward_reasons/code/no_code_block'] ?? 0) > 0));
});

test('scoreCompletions keeps the reason a reward notes for each completion it scored', async () => {
  const s = await scoreCompletions(
    [
      { name: 'code', fn: codeReward({ judge }) },
      { name: 'silent', fn: () => 1 },
      {
        name: 'fails',
        fn: (_c, _e, ctx) => {
          ctx.note?.('lost');
          throw new Error('boom');
        },
      },
    ],
    [
      { completion: 'no code', example: addExample, prompt: '' },
      { completion: fence('python', ADD_PY), example: { tests: [{ stdin: '1 1', stdout: '2' }] }, prompt: '' },
    ],
  );
  assert.deepEqual(
    s.perReward.map((r) => r.reasons),
    [
      ['no_code_block', 'accepted'],
      [null, null],
      [null, null],
    ],
  );
});
