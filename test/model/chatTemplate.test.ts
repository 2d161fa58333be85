import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  getChatTemplate,
  hasChatTemplate,
  renderChat,
  strftime,
  type ChatMessage,
} from '../../src/model/chatTemplate.ts';
import { AhaError } from '../../src/errors.ts';
import { TOKENIZER_FIXTURES } from '../fixtures/tokenizers/materialize.ts';

// Templates come from the real tokenizer_config.json files in test/fixtures/tokenizers (see its README); the
// expected strings are written by hand from each model's documented prompt format, not produced by this code.
const QWEN3 = join(TOKENIZER_FIXTURES, 'qwen3');
const DEEPSEEK_V3 = join(TOKENIZER_FIXTURES, 'deepseek-v3');
const CHAR = join(TOKENIZER_FIXTURES, 'char-default');
const qwen3Config = () =>
  JSON.parse(readFileSync(join(QWEN3, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;

const SYS = 'You are a helpful assistant.';
const USER = 'What is 2+3?';
const ANSWER = '<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.';
const chat: ChatMessage[] = [
  { role: 'system', content: SYS },
  { role: 'user', content: USER },
  { role: 'assistant', content: ANSWER },
];

describe('Qwen3 chat template (ChatML with <think>)', () => {
  const head = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n';
  const assistantTurn = '<|im_start|>assistant\n<think>\nAdd 2 and 3.\n</think>\n\nThe answer is 5.<|im_end|>\n';

  test('system + user + assistant, without and with add_generation_prompt', () => {
    assert.equal(renderChat(QWEN3, chat), head + assistantTurn);
    assert.equal(
      renderChat(QWEN3, chat, { addGenerationPrompt: true }),
      head + assistantTurn + '<|im_start|>assistant\n',
    );
  });

  test('prompt for generation, and enable_thinking=false prefills an empty think block', () => {
    assert.equal(renderChat(QWEN3, chat.slice(0, 2), { addGenerationPrompt: true }), head + '<|im_start|>assistant\n');
    assert.equal(
      renderChat(QWEN3, chat.slice(0, 2), { addGenerationPrompt: true, vars: { enable_thinking: false } }),
      head + '<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });

  test('a parsed tokenizer_config object works like the directory', () => {
    assert.equal(renderChat(qwen3Config(), chat), head + assistantTurn);
  });

  test('reasoning of earlier assistant turns is dropped', () => {
    const multi: ChatMessage[] = [
      { role: 'user', content: 'q1' },
      { role: 'assistant', content: '<think>\nr1\n</think>\n\na1' },
      { role: 'user', content: 'q2' },
    ];
    assert.equal(
      renderChat(QWEN3, multi, { addGenerationPrompt: true }),
      '<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  test('tools are rendered with Python json.dumps spacing (tojson)', () => {
    const tools = [
      {
        type: 'function',
        function: { name: 'add', description: 'Add — exactly', parameters: { type: 'object', required: ['a', 'b'] } },
      },
    ];
    const out = renderChat(QWEN3, chat.slice(1, 2), { addGenerationPrompt: true, tools });
    assert.equal(
      out,
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "add", "description": "Add — exactly", "parameters": {"type": "object", "required": ["a", "b"]}}}\n' +
        '</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  test('continueFinalMessage stops right after the prefilled assistant text', () => {
    // Qwen3 renders the last assistant turn as <think>\n{reasoning}\n</think>\n\n{content}; with no reasoning the
    // think block is empty and the text ends at the prefilled content instead of <|im_end|>.
    const out = renderChat(QWEN3, [...chat.slice(0, 2), { role: 'assistant', content: 'The answer' }], {
      continueFinalMessage: true,
    });
    assert.equal(out, head + '<|im_start|>assistant\n<think>\n\n</think>\n\nThe answer');
    assert.throws(() => renderChat(QWEN3, chat, { continueFinalMessage: true, addGenerationPrompt: true }), AhaError);
  });
});

describe('DeepSeek-V3 chat template', () => {
  test('system + user + assistant, without and with add_generation_prompt; bos_token from an AddedToken object', () => {
    const plain: ChatMessage[] = [chat[0], chat[1], { role: 'assistant', content: 'The answer is 5.' }];
    const expected =
      '<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 2+3?<｜Assistant｜>The answer is 5.<｜end▁of▁sentence｜>';
    assert.equal(renderChat(DEEPSEEK_V3, plain), expected);
    assert.equal(renderChat(DEEPSEEK_V3, plain, { addGenerationPrompt: true }), expected + '<｜Assistant｜>');
    assert.equal(
      renderChat(DEEPSEEK_V3, plain.slice(0, 2), { addGenerationPrompt: true }),
      '<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 2+3?<｜Assistant｜>',
    );
  });

  test('several system messages are joined by a blank line', () => {
    const out = renderChat(DEEPSEEK_V3, [
      { role: 'system', content: 'A' },
      { role: 'system', content: 'B' },
      { role: 'user', content: 'u' },
    ]);
    assert.equal(out, '<｜begin▁of▁sentence｜>A\n\nB<｜User｜>u');
  });
});

describe('char tokenizer chat template', () => {
  test('renders <|role|>content<|endoftext|> turns', () => {
    const msgs: ChatMessage[] = [
      { role: 'system', content: 'S' },
      { role: 'user', content: '2+3' },
      { role: 'assistant', content: '5' },
    ];
    assert.equal(renderChat(CHAR, msgs), '<|system|>S<|endoftext|><|user|>2+3<|endoftext|><|assistant|>5<|endoftext|>');
    assert.equal(
      renderChat(CHAR, msgs.slice(0, 2), { addGenerationPrompt: true }),
      '<|system|>S<|endoftext|><|user|>2+3<|endoftext|><|assistant|>',
    );
  });

  test('raise_exception becomes AhaError carrying the template message', () => {
    assert.throws(
      () => renderChat(CHAR, [{ role: 'tool', content: 'x' }]),
      (e: unknown) => e instanceof AhaError && /chat template raised an error: Unsupported role: tool/.test(e.message),
    );
  });
});

describe('template selection and errors', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'aha-chat-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

  test('hasChatTemplate', () => {
    assert.equal(hasChatTemplate(QWEN3), true);
    assert.equal(hasChatTemplate({ eos_token: 'x' }), false);
    assert.equal(hasChatTemplate({ chat_template: '' }), false);
    assert.equal(hasChatTemplate(tmp), false); // no files at all
    assert.equal(hasChatTemplate({ chat_template: [{ name: 'default', template: 'x' }] }), true);
  });

  test('no template → AhaError', () => {
    assert.throws(
      () => renderChat({ eos_token: 'x' }, chat),
      (e: unknown) => e instanceof AhaError && /no chat_template/.test(e.message),
    );
    assert.throws(
      () => renderChat(tmp, chat),
      (e: unknown) => e instanceof AhaError && /no chat template/.test(e.message),
    );
    assert.throws(
      () => renderChat(join(tmp, 'missing'), chat),
      (e: unknown) => e instanceof AhaError && /not a directory/.test(e.message),
    );
  });

  test('a template that does not parse, or fails at render time, is AhaError saying why', () => {
    assert.throws(
      () => renderChat({ chat_template: '{% for m in messages %}{{ m.content }}' }, chat),
      (e: unknown) => e instanceof AhaError && /does not parse/.test(e.message),
    );
    assert.throws(
      () => renderChat({ chat_template: "{{ messages[0].content.nope('x') }}" }, chat),
      (e: unknown) => e instanceof AhaError && /failed to render: /.test(e.message),
    );
    assert.throws(
      () => renderChat({ chat_template: 'x' }, [{ content: 'no role' } as unknown as ChatMessage]),
      AhaError,
    );
    assert.throws(() => renderChat({ chat_template: 'x' }, chat, { vars: { messages: [] } }), AhaError);
  });

  test('named templates: default, tool_use when tools are given, or by name', () => {
    const cfg = {
      chat_template: [
        { name: 'default', template: 'D{{ messages|length }}' },
        { name: 'tool_use', template: 'T{{ tools|length }}' },
        { name: 'rag', template: 'R{{ documents|length }}' },
      ],
    };
    assert.equal(renderChat(cfg, chat), 'D3');
    assert.equal(renderChat(cfg, chat, { tools: [{}, {}] }), 'T2');
    assert.equal(renderChat(cfg, chat, { templateName: 'rag', documents: [{ text: 'd' }] }), 'R1');
    assert.throws(() => renderChat(cfg, chat, { templateName: 'nope' }), AhaError);
    assert.equal(getChatTemplate(cfg), 'D{{ messages|length }}');
  });

  test('chat_template.jinja in the directory wins over tokenizer_config.json, as in transformers', () => {
    const d = join(tmp, 'jinja');
    mkdirSync(d);
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ chat_template: 'old', eos_token: '</s>' }));
    writeFileSync(
      join(d, 'chat_template.jinja'),
      '{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}\n{% endfor %}',
    );
    assert.equal(hasChatTemplate(d), true);
    assert.equal(renderChat(d, chat.slice(0, 2)), `[system]${SYS}</s>\n[user]${USER}</s>\n`);
  });

  test('trim_blocks and lstrip_blocks are on, as in transformers', () => {
    const t = '{% for m in messages %}\n  {% if m.role != "system" %}\n{{ m.role }}\n  {% endif %}\n{% endfor %}';
    assert.equal(renderChat({ chat_template: t }, chat), 'user\nassistant\n');
  });

  test('tools and documents are none when absent, as transformers passes None', () => {
    assert.equal(
      renderChat({ chat_template: '{{ tools is none }} {{ documents is none }} {{ add_generation_prompt }}' }, chat),
      'true true false',
    );
  });

  test('strftime_now uses the given clock and English names', () => {
    const now = new Date(2024, 6, 26, 9, 5, 3);
    assert.equal(renderChat({ chat_template: '{{ strftime_now("%d %b %Y") }}' }, chat, { now }), '26 Jul 2024');
    assert.equal(strftime(now, '%A %B %-d, %H:%M:%S %y %j %%'), 'Friday July 26, 09:05:03 24 208 %');
  });
});
