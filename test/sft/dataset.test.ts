/**
 * Loss masks of the SFT line formats, checked against sequences tokenised by hand with a character tokenizer
 * (ids: specials in order from 0, then the alphabet in order), and against a real chat template (Qwen3).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCharTokenizer, charTokenizerFromFiles } from '../../src/model/charTokenizer.ts';
import { loadTokenizer } from '../../src/model/tokenizer.ts';
import {
  countTargets,
  encodeSftRecord,
  loadSftDataset,
  logprobMask,
  type SftEncodeContext,
} from '../../src/sft/dataset.ts';
import { AhaError } from '../../src/errors.ts';
import { fixtureModelDir } from '../fixtures/tokenizers/materialize.ts';

const dir = mkdtempSync(join(tmpdir(), 'aha-sft-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Specials: 0 <|unk|>, 1 <|endoftext|> (eos), 2 <|pad|>, 3 <|system|>, 4 <|user|>, 5 <|assistant|>; then the alphabet.
const ALPHABET = 'abehinoqrstuy:AU \n';
const files = buildCharTokenizer(ALPHABET);
const tok = charTokenizerFromFiles(files);
const c = (ch: string) => 6 + ALPHABET.indexOf(ch);
const EOS = 1,
  SYS = 3,
  USER = 4,
  ASSIST = 5;
const withTemplate: SftEncodeContext = { tokenizer: tok, chatTemplate: files.tokenizerConfig };
const noTemplate: SftEncodeContext = { tokenizer: tok };

describe('line formats → ids and masks (char tokenizer, hand-tokenised)', () => {
  test('text: every token is a target, eos appended', () => {
    const r = encodeSftRecord({ text: 'ab' }, noTemplate, 'x:1');
    assert.equal(r.format, 'text');
    assert.deepEqual(r.ids, [c('a'), c('b'), EOS]);
    assert.deepEqual([...r.mask], [1, 1, 1]);
    // The engine scores tokens 1..n-1: logprob index t-1 carries mask[t].
    assert.deepEqual([...logprobMask(r.mask)], [1, 1]);
    assert.equal(countTargets(r.mask), 2);
  });

  test('prompt/completion: only the completion and its eos are targets', () => {
    const r = encodeSftRecord({ prompt: 'ab', completion: 'ba', id: 7 }, noTemplate, 'x:1');
    assert.equal(r.format, 'prompt_completion');
    assert.deepEqual(r.ids, [c('a'), c('b'), c('b'), c('a'), EOS]);
    assert.deepEqual([...r.mask], [0, 0, 1, 1, 1]);
    assert.deepEqual([...logprobMask(r.mask)], [0, 1, 1, 1]);
  });

  test('messages with the chat template: assistant turns (and the eos closing them) only', () => {
    const r = encodeSftRecord(
      {
        messages: [
          { role: 'system', content: 's' },
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
          { role: 'user', content: 'r' },
          { role: 'assistant', content: 'by' },
        ],
      },
      withTemplate,
      'x:1',
    );
    // "<|system|>s<eos><|user|>q<eos><|assistant|>a<eos><|user|>r<eos><|assistant|>by<eos>"
    assert.deepEqual(r.ids, [
      SYS,
      c('s'),
      EOS,
      USER,
      c('q'),
      EOS,
      ASSIST,
      c('a'),
      EOS,
      USER,
      c('r'),
      EOS,
      ASSIST,
      c('b'),
      c('y'),
      EOS,
    ]);
    assert.deepEqual([...r.mask], [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1]);
  });

  test('conversational prompt/completion: assistant turns of the completion only', () => {
    const r = encodeSftRecord(
      {
        prompt: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
          { role: 'user', content: 'r' },
        ],
        completion: [{ role: 'assistant', content: 'b' }],
      },
      withTemplate,
      'x:1',
    );
    assert.equal(r.format, 'conversational_prompt_completion');
    assert.deepEqual(r.ids, [USER, c('q'), EOS, ASSIST, c('a'), EOS, USER, c('r'), EOS, ASSIST, c('b'), EOS]);
    assert.deepEqual([...r.mask], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  });

  test('messages without a chat template: the "Role: content" fallback', () => {
    const r = encodeSftRecord(
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'yo' },
        ],
      },
      noTemplate,
      'x:1',
    );
    // "User: hi\nAssistant: yo<eos>", targets "yo" and the eos.
    const text = 'User: hi\nAssistant: yo';
    assert.deepEqual(r.ids, [...[...text].map(c), EOS]);
    const mask = new Array(text.length + 1).fill(0);
    mask[text.length - 2] = mask[text.length - 1] = mask[text.length] = 1;
    assert.deepEqual([...r.mask], mask);
  });

  test('wrong shapes name the place', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ foo: 1 }, /^f\.jsonl:3: expected "text", "prompt" \+ "completion", or "messages" \(found "foo"\)$/],
      [{ text: 5 }, /^f\.jsonl:3: "text" must be a string$/],
      [{ prompt: 'a' }, /^f\.jsonl:3: "prompt" without "completion"$/],
      [{ prompt: 'a', completion: null }, /^f\.jsonl:3: "completion" must be a string$/],
      [{ messages: [] }, /^f\.jsonl:3: "messages" must be a non-empty array/],
      [{ messages: [{ role: 'user', content: 1 }] }, /^f\.jsonl:3: messages\[0\]\.content must be a string$/],
      [{ messages: [{ content: 'x' }] }, /^f\.jsonl:3: messages\[0\]\.role must be a non-empty string$/],
    ];
    for (const [value, re] of bad) {
      assert.throws(
        () => encodeSftRecord(value, noTemplate, 'f.jsonl:3'),
        (e: unknown) => e instanceof AhaError && re.test(e.message),
        JSON.stringify(value),
      );
    }
  });
});

describe('loadSftDataset', () => {
  test('malformed JSON and malformed records name file:line', () => {
    const f = join(dir, 'bad.jsonl');
    writeFileSync(f, '{"text": "ab"}\n\n{"text": "ab"\n');
    assert.throws(
      () => loadSftDataset(f, noTemplate),
      (e: unknown) => e instanceof AhaError && e.message.startsWith(`${f}:3: malformed JSON`),
    );
    writeFileSync(f, '{"text": "ab"}\n{"prompt": "a", "completion": 3}\n');
    assert.throws(
      () => loadSftDataset(f, noTemplate),
      (e: unknown) => e instanceof AhaError && e.message === `${f}:2: "completion" must be a string`,
    );
    writeFileSync(f, '{"text": "ab"}\n[1, 2]\n');
    assert.throws(
      () => loadSftDataset(f, noTemplate),
      (e: unknown) => e instanceof AhaError && e.message === `${f}:2: expected a JSON object`,
    );
  });

  test('truncation to max_seq_length is counted; sequences left without targets are dropped and counted', () => {
    const f = join(dir, 'trunc.jsonl');
    writeFileSync(
      f,
      [
        JSON.stringify({ text: 'abab' }), // 5 tokens with eos: truncated to 3
        JSON.stringify({ prompt: 'abab', completion: 'b' }), // prompt fills the 3 tokens: no target left
        JSON.stringify({ prompt: 'a', completion: 'b' }), // 3 tokens, fits
      ].join('\n') + '\n',
    );
    const { examples, stats } = loadSftDataset(f, { ...noTemplate, maxSeqLength: 3 });
    assert.equal(stats.lines, 3);
    assert.equal(stats.truncated, 2);
    assert.equal(stats.droppedNoTargets, 1);
    assert.deepEqual(
      examples.map((e) => e.line),
      [1, 3],
    );
    assert.deepEqual(examples[0].ids, [c('a'), c('b'), c('a')]);
    assert.deepEqual(examples[1].ids, [c('a'), c('b'), EOS]);
    assert.deepEqual([...examples[1].mask], [0, 1, 1]);
    assert.equal(stats.tokens, 6);
    assert.equal(stats.targetTokens, 2 + 2);
    assert.deepEqual(stats.byFormat, {
      text: 1,
      prompt_completion: 2,
      messages: 0,
      conversational_prompt_completion: 0,
    });
  });
});

describe('a real chat template (Qwen3)', () => {
  const qwen = fixtureModelDir('qwen3');
  const qtok = loadTokenizer(qwen);
  const ctx: SftEncodeContext = { tokenizer: qtok, chatTemplate: qwen };
  const masked = (ids: number[], mask: Uint8Array) => qtok.decode(ids.filter((_, i) => mask[i] === 1));

  test('single turn: the span is the assistant content and its <|im_end|> line', () => {
    const r = encodeSftRecord(
      {
        messages: [
          { role: 'system', content: 'You are a helpful assistant.' },
          { role: 'user', content: 'What is 2+3?' },
          { role: 'assistant', content: '<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.' },
        ],
      },
      ctx,
      'q:1',
    );
    assert.equal(
      qtok.decode(r.ids),
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.<|im_end|>\n',
    );
    assert.equal(masked(r.ids, r.mask), '<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.<|im_end|>\n');
    // The mask is one contiguous run ending at the last token.
    const first = r.mask.indexOf(1);
    assert.ok([...r.mask.subarray(first)].every((m) => m === 1));
  });

  test('multi-turn chats whose template renders the last turn differently are refused with the reason', () => {
    // Qwen3 gives only the final assistant turn an (empty) <think></think> block, so the rendering through turn 1
    // is not a prefix of the whole chat's: the turn cannot be located (TRL needs a patched template here too).
    assert.throws(
      () =>
        encodeSftRecord(
          {
            messages: [
              { role: 'user', content: 'a?' },
              { role: 'assistant', content: 'A.' },
              { role: 'user', content: 'b?' },
              { role: 'assistant', content: 'B.' },
            ],
          },
          ctx,
          'q:4',
        ),
      (e: unknown) =>
        e instanceof AhaError &&
        /^q:4: the chat template renders the chat up to messages\[1\] differently/.test(e.message),
    );
  });
});
