/**
 * Side-by-side benchmark: aha's engine vs PyTorch eager fp32 (Debian's python3-torch) on the same config and the
 * same weights, in one run, reported as ratios. Usage:
 *   node --import tsx bench/compare.ts [--shape qwen2-27m|qwen2.5-0.5b|all] [--steps N] [--rounds R] [--out FILE.json]
 * PyTorch gets the fast OpenBLAS kernel too (the OPENBLAS_CORETYPE aha picks for itself: SKYLAKEX on AVX-512 CPUs,
 * HASWELL on AVX2 ones). Rounds alternate aha and PyTorch; medians and per-round ratios are reported.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseHfConfig } from '../src/model/hfConfig.ts';
import { saveModelDir } from '../src/model/checkpoint.ts';
import { Model } from '../src/engine/model.ts';
import { writeFileAtomic } from '../src/util/fs.ts';
import { chooseBlasKernel } from '../src/engine/blasKernel.ts';
import { readFileSync } from 'node:fs';

const SHAPES: Record<
  string,
  {
    config: Record<string, unknown>;
    batch: number;
    seq: number;
    genBatch: number;
    promptLen: number;
    newTokens: number;
  }
> = {
  'qwen2-27m': {
    config: {
      hidden_size: 512,
      intermediate_size: 1536,
      num_hidden_layers: 8,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      vocab_size: 4096,
      max_position_embeddings: 2048,
      rope_theta: 10000,
    },
    batch: 8,
    seq: 256,
    genBatch: 64,
    promptLen: 32,
    newTokens: 64,
  },
  'qwen2.5-0.5b': {
    config: {
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      vocab_size: 151936,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
    },
    batch: 1,
    seq: 256,
    genBatch: 8,
    promptLen: 32,
    newTokens: 32,
  },
};

const args = process.argv.slice(2);
const arg = (k: string, d: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const shapes = arg('--shape', 'all') === 'all' ? Object.keys(SHAPES) : [arg('--shape', 'qwen2-27m')];
const steps = arg('--steps', '3');

function makeDir(name: string): string {
  const dir = join(tmpdir(), `aha-bench-${name}`);
  if (existsSync(join(dir, 'config.json'))) return dir;
  mkdirSync(dir, { recursive: true });
  const raw = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    tie_word_embeddings: true,
    rms_norm_eps: 1e-6,
    hidden_act: 'silu',
    ...SHAPES[name].config,
  };
  const { engine, hf } = parseHfConfig(raw, name);
  const m = new Model(engine);
  const p = m.params;
  let s = 12345;
  for (const t of m.layout) {
    const v = p.subarray(t.offset, t.offset + t.size);
    if (t.name.endsWith('norm.weight')) v.fill(1);
    else
      for (let i = 0; i < v.length; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        v[i] = (s / 4294967296 - 0.5) * 0.04;
      }
  }
  saveModelDir(dir, { config: engine, hf, params: p });
  return dir;
}

function lastJson(out: string): Record<string, number | string> {
  const lines = out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  return JSON.parse(lines[lines.length - 1]);
}

const flags = new Set(
  (
    readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags')) ?? ''
  ).split(/\s+/),
);
const kernel = chooseBlasKernel(flags) ?? '';
const rounds = Math.max(1, Number(arg('--rounds', '3')));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Record<string, unknown> = {};
for (const name of shapes) {
  const sh = SHAPES[name];
  const dir = makeDir(name);
  const common = [
    '--batch',
    `${sh.batch}`,
    '--seq',
    `${sh.seq}`,
    '--gen-batch',
    `${sh.genBatch}`,
    '--prompt-len',
    `${sh.promptLen}`,
    '--new-tokens',
    `${sh.newTokens}`,
    '--steps',
    steps,
    '--json',
  ];
  const ahaRuns: Record<string, number | string>[] = [],
    torchRuns: Record<string, number | string>[] = [];
  // Rounds alternate the two, so a busy spell on a shared machine hits both; ratios are taken per round.
  for (let r = 0; r < rounds; r++) {
    process.stderr.write(`== ${name} round ${r + 1}/${rounds}: aha\n`);
    const a = spawnSync(process.execPath, ['bin/aha.js', 'bench', '--model', dir, ...common], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (a.status !== 0) throw new Error(`aha bench failed for ${name}`);
    ahaRuns.push(lastJson(a.stdout));
    process.stderr.write(`== ${name} round ${r + 1}/${rounds}: PyTorch (OPENBLAS_CORETYPE=${kernel})\n`);
    const t = spawnSync('/usr/bin/python3', ['bench/pytorch_reference.py', '--config', dir, ...common], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, OPENBLAS_CORETYPE: kernel },
    });
    if (t.status !== 0) throw new Error(`PyTorch bench failed for ${name}`);
    torchRuns.push(lastJson(t.stdout));
  }
  const col = (runs: Record<string, number | string>[], k: string) => runs.map((x) => x[k] as number);
  const perRound = (k: string) => ahaRuns.map((a, i) => (a[k] as number) / (torchRuns[i][k] as number));
  const row = {
    rounds,
    aha_train_tokens_per_s: median(col(ahaRuns, 'train_tokens_per_s')),
    torch_train_tokens_per_s: median(col(torchRuns, 'train_tokens_per_s')),
    train_ratio: median(perRound('train_tokens_per_s')),
    train_ratio_per_round: perRound('train_tokens_per_s'),
    aha_generate_tokens_per_s: median(col(ahaRuns, 'generate_tokens_per_s')),
    torch_generate_tokens_per_s: median(col(torchRuns, 'generate_tokens_per_s')),
    generate_ratio: median(perRound('generate_tokens_per_s')),
    generate_ratio_per_round: perRound('generate_tokens_per_s'),
    aha_train_gflops: median(col(ahaRuns, 'train_gflops')),
    sgemm_gflops: median(col(ahaRuns, 'sgemm_gflops')),
    aha_fraction_of_peak: median(col(ahaRuns, 'train_fraction_of_peak')),
    fma_peak_gflops: median(col(ahaRuns, 'fma_peak_gflops')),
    aha_fraction_of_fma_peak: median(col(ahaRuns, 'train_fraction_of_fma_peak')),
    aha_peak_rss_mb: Math.max(...col(ahaRuns, 'peak_rss_mb')),
    torch_peak_rss_mb: Math.max(...col(torchRuns, 'peak_rss_mb')),
    blas_kernel: ahaRuns[0].blas_kernel,
    torch_blas: torchRuns[0].openblas_corename,
  };
  results[name] = row;
  const f = (x: number) => x.toFixed(1);
  const rr = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  console.log(`\n${name} (medians of ${rounds} alternating rounds; ratios per round in brackets)`);
  console.log(
    `  training   aha ${f(row.aha_train_tokens_per_s)} tok/s   PyTorch ${f(row.torch_train_tokens_per_s)} tok/s   ratio ${row.train_ratio.toFixed(2)}x [${rr(row.train_ratio_per_round)}]`,
  );
  console.log(
    `             aha ${row.aha_train_gflops.toFixed(0)} GFLOP/s = ${(100 * row.aha_fraction_of_peak).toFixed(0)}% of the sgemm probe (${row.sgemm_gflops.toFixed(0)}), ${(100 * row.aha_fraction_of_fma_peak).toFixed(0)}% of the FMA peak (${row.fma_peak_gflops.toFixed(0)})`,
  );
  console.log(
    `  sampling   aha ${f(row.aha_generate_tokens_per_s)} tok/s   PyTorch ${f(row.torch_generate_tokens_per_s)} tok/s   ratio ${row.generate_ratio.toFixed(2)}x [${rr(row.generate_ratio_per_round)}]`,
  );
  console.log(`  peak RSS   aha ${row.aha_peak_rss_mb.toFixed(0)} MB   PyTorch ${row.torch_peak_rss_mb.toFixed(0)} MB`);
}
const out = arg('--out', '');
if (out) writeFileAtomic(out, JSON.stringify(results, null, 2) + '\n');
