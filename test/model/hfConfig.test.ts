import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { AhaError } from '../../src/errors.ts';
import { parameterCount, type EngineConfig } from '../../src/engine/types.ts';
import { computeRopeInvFreq, parseHfConfig, toHfConfig } from '../../src/model/hfConfig.ts';

// config.json files as published on the Hugging Face Hub (text kept as in the repos).
const QWEN25_05B = `{
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
}`;

const LLAMA32_1B = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}`;

const QWEN3_06B = `{
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
}`;

const SMOLLM2_135M = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 0,
  "eos_token_id": 0,
  "hidden_act": "silu",
  "hidden_size": 576,
  "initializer_range": 0.041666666666666664,
  "intermediate_size": 1536,
  "is_llama_config": true,
  "max_position_embeddings": 8192,
  "model_type": "llama",
  "num_attention_heads": 9,
  "num_hidden_layers": 30,
  "num_key_value_heads": 3,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_interleaved": false,
  "rope_scaling": null,
  "rope_theta": 100000,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.42.3",
  "use_cache": true,
  "vocab_size": 49152
}`;

const MISTRAL_7B = `{
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
}`;

const FIXTURES: Record<string, string> = {
  'Qwen2.5-0.5B': QWEN25_05B,
  'Llama-3.2-1B': LLAMA32_1B,
  'Qwen3-0.6B': QWEN3_06B,
  'SmolLM2-135M': SMOLLM2_135M,
  'Mistral-7B-v0.1': MISTRAL_7B,
};

const parse = (text: string) => parseHfConfig(JSON.parse(text), 'config.json');

/** Plain RoPE in float64: theta^(-2i/d). */
function refInvFreq(theta: number, d: number): number[] {
  return Array.from({ length: d / 2 }, (_, i) => Math.pow(theta, (-2 * i) / d));
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]);
    assert.ok(err <= rel, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (rel err ${err})`);
  }
}

test('Qwen2.5-0.5B: Qwen2 biases, tied embeddings, published parameter count', () => {
  const { engine, hf } = parse(QWEN25_05B);
  assert.deepEqual(
    { ...engine, ropeInvFreq: undefined },
    {
      vocabSize: 151936,
      hiddenSize: 896,
      intermediateSize: 4864,
      numLayers: 24,
      numHeads: 14,
      numKvHeads: 2,
      headDim: 64,
      rmsNormEps: 1e-6,
      ropeInvFreq: undefined,
      ropeAttentionScale: 1,
      tieWordEmbeddings: true,
      qkvBias: true,
      oBias: false,
      qkNorm: false,
      maxPositionEmbeddings: 32768,
    },
  );
  assert.equal(parameterCount(engine), 494_032_768); // "0.49B" on the model card
  assertClose(engine.ropeInvFreq, refInvFreq(1e6, 64), 2e-7, 'inv_freq');
  assert.equal(engine.ropeInvFreq[0], 1);
  assert.equal(hf.architecture, 'Qwen2ForCausalLM');
  assert.equal(hf.bosTokenId, 151643);
  assert.equal(hf.eosTokenId, 151643);
  assert.equal(hf.torchDtype, 'bfloat16');
  assert.equal(hf.slidingWindow, null); // use_sliding_window: false
  assert.equal(hf.maxWindowLayers, 24);
});

test('Llama-3.2-1B: llama3 rope_scaling matches the published frequency-dependent formula', () => {
  const { engine, hf } = parse(LLAMA32_1B);
  assert.equal(engine.headDim, 64);
  assert.equal(engine.tieWordEmbeddings, true);
  assert.equal(engine.qkvBias || engine.oBias || engine.qkNorm, false);
  assert.equal(engine.rmsNormEps, 1e-5);
  assert.equal(engine.maxPositionEmbeddings, 131072);
  assert.equal(parameterCount(engine), 1_235_814_400);
  assert.deepEqual(hf.ropeScaling, {
    type: 'llama3',
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  // Llama 3.1 scaling in float64, from the reference implementation's description: wavelengths under
  // 8192/4 are kept, over 8192/1 divided by 32, in between blended by smooth = (8192/wavelen - 1) / (4 - 1).
  const expected: number[] = [];
  const kinds = { high: 0, low: 0, medium: 0 };
  for (const f of refInvFreq(500000, 64)) {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < 8192 / 4) {
      expected.push(f);
      kinds.high++;
    } else if (wavelen > 8192 / 1) {
      expected.push(f / 32);
      kinds.low++;
    } else {
      const s = (8192 / wavelen - 1) / (4 - 1);
      expected.push((1 - s) * (f / 32) + s * f);
      kinds.medium++;
    }
  }
  assert.deepEqual(kinds, { high: 15, medium: 3, low: 14 });
  assertClose(engine.ropeInvFreq, expected, 1e-6, 'llama3 inv_freq');
  // A few by hand: i=0 is 1; i=31 is 500000^(-62/64)/32; i=16 (wavelen 2*pi*500000^(1/2) = 4442.9) is blended.
  assert.equal(engine.ropeInvFreq[0], 1);
  assertClose([engine.ropeInvFreq[31]], [Math.exp((-62 / 64) * Math.log(500000)) / 32], 1e-6, 'i=31');
  const f16 = 1 / Math.sqrt(500000);
  const s16 = (8192 / ((2 * Math.PI) / f16) - 1) / 3;
  assertClose([engine.ropeInvFreq[16]], [((1 - s16) * f16) / 32 + s16 * f16], 1e-6, 'i=16');
  assert.ok(s16 > 0 && s16 < 1);
});

test('Qwen3-0.6B: qk-norm, explicit head_dim different from hidden/heads', () => {
  const { engine, hf } = parse(QWEN3_06B);
  assert.equal(engine.headDim, 128);
  assert.equal(engine.hiddenSize / engine.numHeads, 64);
  assert.equal(engine.qkNorm, true);
  assert.equal(engine.qkvBias, false);
  assert.equal(engine.oBias, false);
  assert.equal(engine.maxPositionEmbeddings, 40960);
  assert.equal(parameterCount(engine), 596_049_920);
  assertClose(engine.ropeInvFreq, refInvFreq(1e6, 128), 2e-7, 'inv_freq');
  assert.equal(hf.eosTokenId, 151645);
  assert.equal(hf.ropeScaling, null);
});

test('SmolLM2-135M (Llama): 9 heads of 64, theta 1e5', () => {
  const { engine, hf } = parse(SMOLLM2_135M);
  assert.equal(engine.headDim, 64);
  assert.equal(engine.numKvHeads, 3);
  assert.equal(engine.tieWordEmbeddings, true);
  assert.equal(parameterCount(engine), 134_515_008);
  assertClose(engine.ropeInvFreq, refInvFreq(1e5, 64), 2e-7, 'inv_freq');
  assert.equal(hf.initializerRange, 0.041666666666666664);
  assert.equal(hf.bosTokenId, 0);
});

test('Mistral-7B-v0.1: untied, sliding window caps the usable context', () => {
  const { engine, hf } = parse(MISTRAL_7B);
  assert.equal(engine.tieWordEmbeddings, false);
  assert.equal(engine.headDim, 128);
  assert.equal(parameterCount(engine), 7_241_732_096);
  assert.equal(hf.slidingWindow, 4096);
  assert.equal(hf.maxPositionEmbeddings, 32768);
  assert.equal(engine.maxPositionEmbeddings, 4096);
  assertClose(engine.ropeInvFreq, refInvFreq(1e4, 128), 2e-7, 'inv_freq');
  // v0.3 style: no sliding window.
  const v03 = parseHfConfig({ ...JSON.parse(MISTRAL_7B), sliding_window: null }, 'config.json');
  assert.equal(v03.engine.maxPositionEmbeddings, 32768);
  assert.equal(v03.hf.slidingWindow, null);
});

test('defaults of the transformers config classes fill absent fields', () => {
  const base = {
    vocab_size: 100,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
  };
  const llama = parseHfConfig({ ...base, model_type: 'llama' }, 'config.json');
  assert.equal(llama.hf.architecture, 'LlamaForCausalLM');
  assert.equal(llama.engine.numKvHeads, 4);
  assert.equal(llama.engine.headDim, 16);
  assert.equal(llama.engine.rmsNormEps, 1e-6);
  assert.equal(llama.engine.tieWordEmbeddings, false);
  assert.equal(llama.engine.maxPositionEmbeddings, 2048);
  assert.equal(llama.hf.ropeTheta, 10000);
  assert.equal(llama.hf.bosTokenId, null);
  assertClose(llama.engine.ropeInvFreq, refInvFreq(1e4, 16), 2e-7, 'inv_freq');
  // Qwen3Config's head_dim defaults to 128, not hidden/heads.
  const qwen3 = parseHfConfig({ ...base, architectures: ['Qwen3ForCausalLM'], num_key_value_heads: 2 }, 'config.json');
  assert.equal(qwen3.engine.headDim, 128);
  assert.equal(qwen3.hf.modelType, 'qwen3');
  // Qwen2 with use_sliding_window caps the context at the window.
  const qwen2 = parseHfConfig(
    { ...base, model_type: 'qwen2', num_key_value_heads: 2, use_sliding_window: true, sliding_window: 1024 },
    'config.json',
  );
  assert.equal(qwen2.engine.maxPositionEmbeddings, 1024);
  assert.equal(qwen2.hf.maxPositionEmbeddings, 32768);
});

test('attention_bias: Llama and Qwen3 put it on q/k/v/o, Mistral has none, Qwen2 always q/k/v only', () => {
  const base = {
    vocab_size: 100,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 4,
  };
  const b = (model_type: string, attention_bias?: boolean) => {
    const e = parseHfConfig({ ...base, model_type, attention_bias }, 'config.json').engine;
    return [e.qkvBias, e.oBias];
  };
  assert.deepEqual(b('llama', true), [true, true]);
  assert.deepEqual(b('llama'), [false, false]);
  assert.deepEqual(b('qwen3', true), [true, true]);
  assert.deepEqual(b('mistral', true), [false, false]);
  assert.deepEqual(b('qwen2'), [true, false]);
  assert.deepEqual(b('qwen2', false), [true, false]);
});

test('rope_scaling: linear divides by the factor; "type" and "default" are understood; rope_parameters', () => {
  const base = {
    model_type: 'llama',
    vocab_size: 100,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    rope_theta: 10000,
  };
  const lin = parseHfConfig({ ...base, rope_scaling: { type: 'linear', factor: 4.0 } }, 'config.json');
  assertClose(
    lin.engine.ropeInvFreq,
    refInvFreq(1e4, 32).map((x) => x / 4),
    2e-7,
    'linear',
  );
  assert.deepEqual(lin.hf.ropeScaling, { type: 'linear', factor: 4 });
  const linJson = toHfConfig(lin.engine, lin.hf);
  assert.deepEqual(linJson.rope_scaling, { factor: 4, type: 'linear' });
  assert.deepEqual(parseHfConfig(linJson, 'out/config.json').engine, lin.engine);
  const dflt = parseHfConfig({ ...base, rope_scaling: { rope_type: 'default' } }, 'config.json');
  assert.equal(dflt.hf.ropeScaling, null);
  assert.deepEqual(dflt.engine.ropeInvFreq, computeRopeInvFreq(32, 10000, null));
  // transformers 5 writes rope_theta and the rope type in rope_parameters.
  const v5 = parseHfConfig(
    { ...base, rope_theta: undefined, rope_parameters: { rope_type: 'linear', factor: 2.0, rope_theta: 50000.0 } },
    'config.json',
  );
  assert.equal(v5.hf.ropeTheta, 50000);
  assertClose(
    v5.engine.ropeInvFreq,
    refInvFreq(5e4, 32).map((x) => x / 2),
    2e-7,
    'rope_parameters',
  );
});

test('bad fields: one-line AhaError naming the field and the file', () => {
  const good = JSON.parse(QWEN25_05B);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ num_attention_heads: 'x' }, /^cfg\/config\.json: num_attention_heads must be a positive integer \(got "x"\)$/],
    [{ hidden_size: undefined }, /^cfg\/config\.json: missing required field hidden_size$/],
    [{ vocab_size: 0 }, /vocab_size must be a positive integer \(got 0\)/],
    [{ intermediate_size: 12.5 }, /intermediate_size must be a positive integer \(got 12.5\)/],
    [{ num_hidden_layers: -2 }, /num_hidden_layers must be a positive integer \(got -2\)/],
    [{ num_key_value_heads: 3 }, /num_attention_heads \(14\) must be a multiple of num_key_value_heads \(3\)/],
    [{ head_dim: 63 }, /head_dim must be even/],
    [{ hidden_size: 900 }, /hidden_size \(900\) must be a multiple of num_attention_heads \(14\)/],
    [{ rms_norm_eps: '1e-6' }, /rms_norm_eps must be a positive number \(got "1e-6"\)/],
    [{ rms_norm_eps: -1 }, /rms_norm_eps must be a positive number/],
    [{ rope_theta: 0 }, /rope_theta must be a positive number/],
    [{ tie_word_embeddings: 'yes' }, /tie_word_embeddings must be true or false \(got "yes"\)/],
    [{ hidden_act: 'gelu' }, /hidden_act must be "silu" \(got "gelu"\)/],
    [{ mlp_bias: true }, /mlp_bias=true is not supported/],
    [
      { architectures: ['GPT2LMHeadModel'], model_type: undefined },
      /unsupported architecture GPT2LMHeadModel \(supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM\)/,
    ],
    [{ architectures: ['Qwen2ForRewardModel'] }, /unsupported architecture Qwen2ForRewardModel/],
    [{ architectures: 'Qwen2ForCausalLM' }, /architectures must be a non-empty list of class names/],
    [{ model_type: 'gpt2' }, /unsupported model_type "gpt2" \(supported: llama, mistral, qwen2, qwen3\)/],
    [{ model_type: 'llama' }, /model_type "llama" does not match architectures \["Qwen2ForCausalLM"\]/],
    [{ architectures: undefined, model_type: undefined }, /missing architectures and model_type/],
    [
      { rope_scaling: { type: 'dynamic', factor: 2.0 } },
      /rope_scaling type "dynamic" .*not supported \(supported: linear, llama3\)/,
    ],
    [{ rope_scaling: { rope_type: 'yarn', factor: 4.0 } }, /rope_scaling type "yarn" is not supported/],
    [{ rope_scaling: { rope_type: 'linear' } }, /missing required field rope_scaling\.factor/],
    [
      { rope_scaling: { rope_type: 'llama3', factor: 8, high_freq_factor: 4, original_max_position_embeddings: 8192 } },
      /missing required field rope_scaling\.low_freq_factor/,
    ],
    [
      {
        rope_scaling: {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 4,
          high_freq_factor: 1,
          original_max_position_embeddings: 8192,
        },
      },
      /high_freq_factor must be greater than low_freq_factor/,
    ],
    [{ rope_scaling: 'linear' }, /rope_scaling must be an object or null \(got "linear"\)/],
    [{ partial_rotary_factor: 0.5 }, /partial_rotary_factor must be 1 \(got 0.5\)/],
    [
      { quantization_config: { quant_method: 'gptq' } },
      /quantized checkpoints \(quantization_config\) are not supported/,
    ],
    [{ eos_token_id: 'eos' }, /eos_token_id must be a non-negative integer or a list of them/],
    [{ bos_token_id: -1 }, /bos_token_id must be a non-negative integer \(got -1\)/],
    [{ use_sliding_window: true, sliding_window: 'big' }, /sliding_window must be a positive integer/],
  ];
  for (const [patch, re] of cases) {
    const cfg = { ...good, ...patch };
    for (const k of Object.keys(patch)) if (patch[k] === undefined) delete cfg[k];
    assert.throws(
      () => parseHfConfig(cfg, 'cfg/config.json'),
      (e: unknown) => {
        assert.ok(e instanceof AhaError, `${JSON.stringify(patch)}: not an AhaError: ${e}`);
        assert.match(e.message, re, JSON.stringify(patch));
        assert.ok(e.message.startsWith('cfg/config.json: '), e.message);
        assert.ok(!e.message.includes('\n'), e.message);
        return true;
      },
    );
  }
  assert.throws(() => parseHfConfig([1, 2], 'c.json'), {
    name: 'AhaError',
    message: /^c\.json: expected a JSON object/,
  });
  assert.throws(() => parseHfConfig(null, 'c.json'), AhaError);
});

test('eos_token_id may be a list (Llama 3 instruct)', () => {
  const { hf } = parseHfConfig({ ...JSON.parse(LLAMA32_1B), eos_token_id: [128001, 128008, 128009] }, 'config.json');
  assert.deepEqual(hf.eosTokenId, [128001, 128008, 128009]);
});

test('toHfConfig writes a config.json that parses back to the same model', () => {
  for (const [name, text] of Object.entries(FIXTURES)) {
    const { engine, hf } = parse(text);
    const out = toHfConfig(engine, hf);
    for (const k of [
      'model_type',
      'architectures',
      'hidden_act',
      'initializer_range',
      'use_cache',
      'rms_norm_eps',
      'rope_theta',
      'vocab_size',
      'num_key_value_heads',
      'head_dim',
      'tie_word_embeddings',
      'max_position_embeddings',
    ]) {
      assert.ok(k in out, `${name}: ${k} missing`);
    }
    assert.equal(out.torch_dtype, 'float32');
    assert.equal(out.hidden_act, 'silu');
    assert.deepEqual(out.architectures, [hf.architecture]);
    assert.equal(out.bos_token_id, hf.bosTokenId);
    assert.deepEqual(out.eos_token_id, hf.eosTokenId);
    const back = parseHfConfig(JSON.parse(JSON.stringify(out)), `${name}/config.json`);
    assert.deepEqual(back.engine, engine, name);
    assert.deepEqual({ ...back.hf, torchDtype: null }, { ...hf, torchDtype: null }, name);
  }
  const llama = toHfConfig(parse(LLAMA32_1B).engine, parse(LLAMA32_1B).hf);
  assert.deepEqual(llama.rope_scaling, {
    factor: 32,
    high_freq_factor: 4,
    low_freq_factor: 1,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  });
  assert.equal(llama.max_position_embeddings, 131072);
});

test('toHfConfig refuses engine configs the architecture cannot express', () => {
  const { engine, hf } = parse(QWEN25_05B);
  assert.throws(() => toHfConfig({ ...engine, qkvBias: false }, hf), /Qwen2ForCausalLM cannot express qkvBias=false/);
  assert.throws(() => toHfConfig({ ...engine, qkNorm: true }, hf), /cannot express/);
  assert.throws(() => toHfConfig(engine, { ...hf, ropeTheta: 10000 }), /ropeInvFreq does not match/);
  const llama: EngineConfig = parse(SMOLLM2_135M).engine;
  assert.throws(
    () => toHfConfig({ ...llama, oBias: true }, { architecture: 'LlamaForCausalLM', ropeTheta: 100000 }),
    /cannot express/,
  );
  const ok = toHfConfig(
    { ...llama, qkvBias: true, oBias: true },
    { architecture: 'LlamaForCausalLM', ropeTheta: 100000 },
  );
  assert.equal(ok.attention_bias, true);
});

const PY = '/usr/bin/python3';

test("inv_freq agrees with torch running transformers' rope init code", (t) => {
  if (!existsSync(PY)) return t.skip('no /usr/bin/python3');
  // The body of _compute_default_rope_parameters / _compute_llama3_parameters (transformers), run by torch.
  const script = `
import json, math, sys
try:
    import torch
except ImportError:
    print('NO_TORCH')
    sys.exit(0)
cases = json.load(sys.stdin)
out = []
for c in cases:
    dim, base, s = c["dim"], c["theta"], c["scaling"]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if s and s["rope_type"] == "linear":
        inv_freq /= s["factor"]
    elif s and s["rope_type"] == "llama3":
        factor, lo, hi, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
        low_freq_wavelen = old / lo
        high_freq_wavelen = old / hi
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old / wavelen - lo) / (hi - lo)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        inv_freq = torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    out.append(inv_freq.view(torch.int32).tolist())
print(json.dumps(out))
`;
  const configs = [
    ...Object.values(FIXTURES).map((t) => JSON.parse(t)),
    { ...JSON.parse(SMOLLM2_135M), rope_scaling: { rope_type: 'linear', factor: 3.0 } },
    {
      ...JSON.parse(LLAMA32_1B),
      head_dim: 128,
      hidden_size: 4096,
      rope_scaling: { ...JSON.parse(LLAMA32_1B).rope_scaling, factor: 8.0 },
    },
  ];
  const parsed = configs.map((c) => parseHfConfig(c, 'config.json'));
  const cases = parsed.map(({ engine, hf }, k) => ({
    dim: engine.headDim,
    theta: hf.ropeTheta,
    scaling: configs[k].rope_scaling ?? null,
  }));
  const r = spawnSync(PY, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  if (r.stdout.trim() === 'NO_TORCH') return t.skip('no torch in /usr/bin/python3');
  const torchBits: number[][] = JSON.parse(r.stdout);
  parsed.forEach(({ engine }, k) => {
    const ours = new Int32Array(engine.ropeInvFreq.buffer, engine.ropeInvFreq.byteOffset, engine.ropeInvFreq.length);
    assert.equal(ours.length, torchBits[k].length);
    for (let i = 0; i < ours.length; i++) {
      // Same float32 steps; torch's vectorised powf is not always correctly rounded, so allow one ulp.
      assert.ok(Math.abs(ours[i] - torchBits[k][i]) <= 1, `case ${k} i=${i}: ${ours[i]} vs ${torchBits[k][i]}`);
    }
  });
});
