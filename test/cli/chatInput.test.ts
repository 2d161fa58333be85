/**
 * Chat models at the command line: `aha generate` and `aha logprobs` take {"messages": [...]} lines, rendered with
 * the model's chat template (Qwen3's, from test/fixtures/tokenizers/qwen3), `--chat-template-kwargs` reaches the
 * template, and logprobs come with their token ids and texts. Also `aha init-model` and a config's vocab_size.
 * Expected prompts are written by hand from Qwen3's documented format (as in test/model/chatTemplate.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { parseRecipe, type RecipeInput } from '../../src/rl/recipe.ts';
import { prepareExamples } from '../../src/rl/grpoData.ts';
import type { Example } from '../../src/rewards/types.ts';
import { TOKENIZER_FIXTURES } from '../fixtures/tokenizers/materialize.ts';

const root = resolve(import.meta.dirname, '../..');
const aha = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin/aha.js'), ...args], { cwd: root, encoding: 'utf8' });
const dir = mkdtempSync(join(tmpdir(), 'aha-chat-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const jsonl = (s: string) =>
  s
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const writeLines = (name: string, rows: unknown[]) => {
  const path = join(dir, name);
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
};

// A tiny character-level model wearing Qwen3's chat template (chat_template.jinja wins over tokenizer_config.json).
const model = join(dir, 'm');
const qwen3Template = (
  JSON.parse(readFileSync(join(TOKENIZER_FIXTURES, 'qwen3', 'tokenizer_config.json'), 'utf8')) as {
    chat_template: string;
  }
).chat_template;

const SYS = { role: 'system', content: 'You are a helpful assistant.' };
const USER = { role: 'user', content: 'What is 2+3?' };
const ASSISTANT = { role: 'assistant', content: '<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.' };
const HEAD = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n';
const FULL = HEAD + '<|im_start|>assistant\n<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.<|im_end|>\n';

test('setup: a tiny model with the Qwen3 chat template', () => {
  const r = aha(['init-model', '--config', 'tiny', '--out', model, '--seed', '3']);
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(join(model, 'chat_template.jinja'), qwen3Template);
});

test('logprobs of a messages line: the rendered chat, each token with its id and text', async () => {
  const input = writeLines('lp.jsonl', [{ messages: [SYS, USER, ASSISTANT] }, { ids: [7] }]);
  const r = aha(['logprobs', '--model', model, '--input', input]);
  assert.equal(r.status, 0, r.stderr);
  const [line, single] = jsonl(r.stdout);
  const p = loadPretrained(model);
  const ids = p.tokenizer!.encode(FULL, { addSpecialTokens: false });
  assert.deepEqual(line.ids, ids.slice(1));
  assert.equal((line.tokens as string[]).join(''), FULL.slice(1));
  const ref = await p.model.forward([ids]);
  const lps = line.logprobs as number[];
  assert.equal(lps.length, ids.length - 1);
  lps.forEach((x, t) => assert.ok(Math.abs(x - ref.logprobs[0][t]) < 1e-6, `position ${t + 1}`));
  assert.deepEqual(single, { ids: [], tokens: [], logprobs: [] });
});

test('generate: messages get the generation prompt; --chat-template-kwargs reaches the template', () => {
  const p = loadPretrained(model);
  const enc = (s: string) => p.tokenizer!.encode(s, { addSpecialTokens: false });
  const input = writeLines('gen.jsonl', [
    { messages: [SYS, USER] },
    { ids: enc(HEAD + '<|im_start|>assistant\n<think>\n\n</think>\n\n') },
    { ids: enc(HEAD + '<|im_start|>assistant\n') },
    // A last assistant message is continued (a prefill), not closed; Qwen3's template gives the final turn its
    // (here empty) think block.
    { messages: [SYS, USER, { role: 'assistant', content: 'The answer is' }] },
    { ids: enc(HEAD + '<|im_start|>assistant\n<think>\n\n</think>\n\nThe answer is') },
  ]);
  const run = (extra: string[]) => {
    const r = aha(['generate', '--model', model, '--input', input, '--greedy', '--max-new-tokens', '4', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return jsonl(r.stdout);
  };
  // Greedy continuations of the same prompt are identical, down to every log-prob; another prompt's are not.
  const [thinkOff, promptOff, promptOn, prefill, prefillIds] = run([
    '--chat-template-kwargs',
    '{"enable_thinking": false}',
  ]);
  assert.deepEqual(thinkOff, promptOff);
  assert.notDeepEqual(thinkOff.logprobs, promptOn.logprobs);
  assert.deepEqual(prefill, prefillIds);
  const [thinkDefault, , promptOn2] = run([]);
  assert.deepEqual(thinkDefault, promptOn2);

  const bad = aha(['generate', '--model', model, '--input', input, '--chat-template-kwargs', '[1]']);
  assert.equal(bad.status, 1);
  assert.equal(
    bad.stderr.trim(),
    `aha: --chat-template-kwargs: expected a JSON object, e.g. '{"enable_thinking": false}', got '[1]'`,
  );
  const badLine = writeLines('bad.jsonl', [{ messages: [SYS, USER] }, { messages: [] }]);
  const r = aha(['logprobs', '--model', model, '--input', badLine]);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim(), /^aha: .*bad\.jsonl:2: "messages" must be a non-empty array/);
});

test('eval with the local engine: --chat-template-kwargs reaches the prompts, and needs a chat template', () => {
  const bench = writeLines('bench.jsonl', [{ question: 'What is 2+3?', answer: '5' }]);
  const out = join(dir, 'eval');
  const args = ['eval', '--model', model, '--benchmark', bench, '--samples', '1', '--max-new-tokens', '2'];
  const r = aha([...args, '--out', out, '--chat-template-kwargs', '{"enable_thinking": false}']);
  assert.equal(r.status, 0, r.stderr);
  const [row] = jsonl(readFileSync(join(out, 'bench.jsonl'), 'utf8'));
  assert.match(
    row.prompt as string,
    /^<\|im_start\|>user\nWhat is 2\+3\?\n.*<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/s,
  );
  const bad = aha([...args, '--prompt-template', 'r1-zero', '--chat-template-kwargs', '{"enable_thinking": false}']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^aha: --chat-template-kwargs: the prompts use no chat template \(prompt format r1-zero\)/);
});

test('init-model keeps a vocab_size that covers the tokenizer and refuses a smaller one', () => {
  const vocab = loadPretrained(model).tokenizer!.vocabSize;
  const config = (vocabSize: number) => {
    const path = join(dir, `config-${vocabSize}.json`);
    writeFileSync(
      path,
      JSON.stringify({
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 64,
        tie_word_embeddings: true,
        vocab_size: vocabSize,
      }),
    );
    return path;
  };
  const small = join(dir, 'small');
  const r = aha(['init-model', '--config', config(vocab - 10), '--out', small]);
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    new RegExp(`vocab_size ${vocab - 10} is smaller than the tokenizer's ${vocab} tokens .*use at least ${vocab}`),
  );
  assert.equal(existsSync(small), false, 'nothing written');

  const padded = join(dir, 'padded');
  const ok = aha(['init-model', '--config', config(vocab + 22), '--out', padded]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`vocabulary ${vocab} \\(embedding padded to vocab_size ${vocab + 22}\\)`));
  assert.equal(JSON.parse(readFileSync(join(padded, 'config.json'), 'utf8')).vocab_size, vocab + 22);
});

test("a GRPO recipe's chat_template_kwargs reach its chat prompts, and need prompt: chat", () => {
  const recipe = (over: Partial<RecipeInput>) =>
    parseRecipe({
      model,
      dataset: [{ question: 'What is 2+3?', answer: '5' }],
      rewards: [{ name: 'accuracy' }],
      prompt: 'chat',
      ...over,
    } as RecipeInput);
  const p = loadPretrained(model);
  const render = (r: ReturnType<typeof recipe>) =>
    prepareExamples(r, r.dataset as Example[], {
      tokenizer: p.tokenizer!,
      modelDir: model,
      maxPositions: 4096,
      maxNew: 1,
      log: () => {},
    })[0].promptText;
  assert.match(
    render(recipe({ chat_template_kwargs: { enable_thinking: false } })),
    /^<\|im_start\|>user\nWhat is 2\+3\?<\|im_end\|>\n<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/,
  );
  assert.match(render(recipe({})), /<\|im_start\|>assistant\n$/);
  assert.throws(
    () => recipe({ prompt: 'r1-zero', chat_template_kwargs: { enable_thinking: false } }),
    (e: Error) => e.message === "recipe: chat_template_kwargs: only used with prompt 'chat'",
  );
});

test('aha sft --chat-template-kwargs reaches the template that renders messages data', () => {
  // A template that refuses to render unless the variable arrives.
  const probe = join(dir, 'probe');
  assert.equal(aha(['init-model', '--config', 'tiny', '--out', probe, '--seed', '3']).status, 0);
  writeFileSync(
    join(probe, 'chat_template.jinja'),
    "{% if probe is not defined %}{{ raise_exception('probe missing') }}{% endif %}" +
      '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}',
  );
  const data = writeLines('sft.jsonl', [{ messages: [USER, { role: 'assistant', content: '5' }] }]);
  const args = ['sft', '--model', probe, '--data', data, '--max-steps', '1'];
  const without = aha([...args, '--out', join(dir, 'sft-a')]);
  assert.equal(without.status, 1);
  assert.match(without.stderr, /probe missing/);
  const withKw = aha([...args, '--out', join(dir, 'sft-b'), '--chat-template-kwargs', '{"probe": true}']);
  assert.equal(withKw.status, 0, withKw.stderr);
  const bad = aha([...args, '--out', join(dir, 'sft-c'), '--chat-template-kwargs', 'true']);
  assert.equal(bad.status, 1);
  assert.equal(
    bad.stderr.trim(),
    `aha: --chat-template-kwargs: expected a JSON object, e.g. '{"enable_thinking": false}', got "true"`,
  );
});
