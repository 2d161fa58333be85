/**
 * Exported GGUF files run in llama.cpp (through npm's node-llama-cpp, its prebuilt CPU binaries): the prompt's token
 * ids, 16 greedy tokens and their text must be aha's. node-llama-cpp is not a dependency (its install is about
 * 720 MB, every platform's binaries); with it absent (`npm install --no-save node-llama-cpp` adds it) the test is
 * skipped.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportGguf, type GgufExportDtype } from '../../src/model/gguf/exportGguf.ts';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { fixtureModelDir } from '../fixtures/tokenizers/materialize.ts';
import { parseGguf, randomCheckpoint } from '../support/ggufModels.ts';
import { llamaCppTensorName, unpermuteRopeRows } from '../../src/model/gguf/llamaCppTensors.ts';
import { saveModelDir } from '../../src/model/checkpoint.ts';
import { tensorLayout } from '../../src/engine/types.ts';
import { GGUF_CHAR_ALPHABET, LLAMA_CONFIG, QWEN2_CHAR_CONFIG, QWEN3_CONFIG } from '../support/ggufConfigs.ts';
import { llamaCppGreedy, loadLlamaCpp } from '../support/llamaCpp.ts';

const { llama, skip } = await loadLlamaCpp();

const dir = mkdtempSync(join(tmpdir(), 'aha-gguf-llamacpp-'));
after(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const NEW_TOKENS = 16;

/** aha's greedy continuation and llama.cpp's of `prompt` for one model directory exported as `dtype`. */
async function bothGreedy(modelDir: string, prompt: string, dtype: GgufExportDtype) {
  const out = join(dir, `${modelDir.split('/').pop()}-${dtype}.gguf`);
  await exportGguf({ model: modelDir, out, dtype, overwrite: true });
  const p = loadPretrained(modelDir);
  const ids = p.tokenizer!.encode(prompt);
  const [aha] = await p.model.generate([ids], {
    maxNewTokens: NEW_TOKENS,
    temperature: 0,
    stopTokenIds: [],
    seeds: [0],
  });
  const model = await llama!.loadModel({ modelPath: out });
  const got = await llamaCppGreedy(model, ids, NEW_TOKENS, 128);
  const promptIds = model.tokenize(prompt);
  const texts = { aha: p.tokenizer!.decode(aha.tokens), llamaCpp: model.detokenize(got, true) };
  const trainContextSize = model.trainContextSize;
  await model.dispose();
  return { ids, promptIds, aha: Array.from(aha.tokens), llamaCpp: got, trainContextSize, texts };
}

const cases = [
  {
    name: 'qwen2, character tokenizer',
    make: () =>
      randomCheckpoint(join(dir, 'qwen2-char'), QWEN2_CHAR_CONFIG, {
        tokenizer: 'chars',
        alphabet: GGUF_CHAR_ALPHABET,
        seed: 11,
        std: 0.3,
      }),
    prompt: 'Héllo <think>world</think>, €5 {x}!\n',
    context: 64,
  },
  {
    name: 'llama (q/k permuted, biases, llama3 rope_freqs), Qwen3 tokenizer',
    make: () =>
      randomCheckpoint(join(dir, 'llama'), LLAMA_CONFIG, { tokenizer: fixtureModelDir('qwen3'), seed: 12, std: 0.3 }),
    prompt: 'The quick brown fox, 12345 jumps <think> over\n\n  spaces',
    context: 128,
  },
  {
    name: 'qwen3 (q/k norms), Qwen3 tokenizer',
    make: () =>
      randomCheckpoint(join(dir, 'qwen3'), QWEN3_CONFIG, { tokenizer: fixtureModelDir('qwen3'), seed: 13, std: 0.3 }),
    prompt: "It's 2025: naïve café, ünïcödé — done.",
    context: 128,
  },
];

for (const c of cases) {
  test(
    `llama.cpp runs the f32 export of ${c.name} as aha does: prompt ids and ${NEW_TOKENS} greedy tokens`,
    { skip },
    async (t) => {
      const m = c.make();
      const r = await bothGreedy(m.dir, c.prompt, 'f32');
      t.diagnostic(`aha       ${r.aha.join(' ')}`);
      t.diagnostic(`llama.cpp ${r.llamaCpp.join(' ')}`);
      assert.equal(r.trainContextSize, c.context);
      assert.deepEqual(r.promptIds, r.ids);
      assert.equal(new Set(r.aha).size > 1, true, 'the continuation is not one token repeated');
      assert.deepEqual(r.llamaCpp, r.aha);
      // The continuation's text, special tokens included: llama.cpp's detokenizer and aha's decode agree.
      assert.equal(r.texts.llamaCpp, r.texts.aha);
    },
  );
}

test(
  "llama.cpp runs the q8_0, f16 and bf16 exports of the Llama model as aha runs the file's rounded weights",
  { skip },
  async (t) => {
    const m = randomCheckpoint(join(dir, 'llama'), LLAMA_CONFIG, {
      tokenizer: fixtureModelDir('qwen3'),
      seed: 12,
      std: 0.3,
    });
    for (const dtype of ['q8_0', 'f16', 'bf16'] as const) {
      const r = await bothGreedy(m.dir, cases[1].prompt, dtype);
      assert.deepEqual(r.promptIds, r.ids);
      // The weights as the file holds them, decoded by the test's reader and un-permuted, run in aha: llama.cpp must
      // continue the same way (its rounded activations did not change an argmax on this model and prompt).
      const g = await parseGguf(join(dir, `llama-${dtype}.gguf`));
      const params = new Float32Array(m.params.length);
      for (const info of tensorLayout(m.engine)) {
        let v: Float32Array = Float32Array.from(g.tensors.get(llamaCppTensorName(info.name))!.values);
        const qk = /\.self_attn\.([qk])_proj\.(weight|bias)$/.exec(info.name);
        if (qk) v = unpermuteRopeRows(v, qk[1] === 'q' ? 4 : 2, 16, info.shape.length === 2 ? info.shape[1] : 1);
        params.set(v, info.offset);
      }
      const rounded = join(dir, `llama-${dtype}-rounded`);
      saveModelDir(rounded, { config: m.engine, hf: m.hf, params, tokenizerFrom: m.dir });
      const p = loadPretrained(rounded);
      const [aha] = await p.model.generate([r.ids], {
        maxNewTokens: NEW_TOKENS,
        temperature: 0,
        stopTokenIds: [],
        seeds: [0],
      });
      let same = 0;
      while (same < NEW_TOKENS && r.llamaCpp[same] === r.aha[same]) same++;
      t.diagnostic(`${dtype}: llama.cpp ${r.llamaCpp.join(' ')}`);
      t.diagnostic(`${dtype}: agrees with aha on the float32 weights for ${same} of ${NEW_TOKENS} tokens`);
      assert.deepEqual(r.llamaCpp, Array.from(aha.tokens));
    }
  },
);
