/**
 * Side-by-side benchmark: aha's engine vs PyTorch eager fp32 (Debian's python3-torch) on the same config and the
 * same weights, in one run, reported as ratios. Usage:
 *   node --import tsx bench/compare.ts [--shape qwen2-27m|qwen2.5-0.5b|all] [--steps N] [--out FILE.json]
 * PyTorch gets the fast OpenBLAS kernel too (OPENBLAS_CORETYPE=SKYLAKEX on AVX-512 CPUs, as aha picks itself).
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

const SHAPES: Record<string, { config: Record<string, unknown>; batch: number; seq: number; genBatch: number; promptLen: number; newTokens: number }> = {
  'qwen2-27m': {
    config: { hidden_size: 512, intermediate_size: 1536, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 4096, max_position_embeddings: 2048, rope_theta: 10000 },
    batch: 8, seq: 256, genBatch: 64, promptLen: 32, newTokens: 64,
  },
  'qwen2.5-0.5b': {
    config: { hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rope_theta: 1000000 },
    batch: 1, seq: 256, genBatch: 8, promptLen: 32, newTokens: 32,
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
  const raw = { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', tie_word_embeddings: true, rms_norm_eps: 1e-6, hidden_act: 'silu', ...SHAPES[name].config };
  const { engine, hf } = parseHfConfig(raw, name);
  const m = new Model(engine);
  const p = m.params;
  let s = 12345;
  for (const t of m.layout) {
    const v = p.subarray(t.offset, t.offset + t.size);
    if (t.name.endsWith('norm.weight')) v.fill(1);
    else for (let i = 0; i < v.length; i++) { s = (s * 1103515245 + 12345) >>> 0; v[i] = ((s / 4294967296) - 0.5) * 0.04; }
  }
  saveModelDir(dir, { config: engine, hf, params: p });
  return dir;
}

function lastJson(out: string): Record<string, number | string> {
  const lines = out.trim().split('\n').filter((l) => l.startsWith('{'));
  return JSON.parse(lines[lines.length - 1]);
}

const flags = new Set((readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '').split(/\s+/));
const kernel = chooseBlasKernel(flags) ?? '';
const results: Record<string, unknown> = {};
for (const name of shapes) {
  const sh = SHAPES[name];
  const dir = makeDir(name);
  process.stderr.write(`== ${name}: aha\n`);
  const a = spawnSync(process.execPath, ['bin/aha.js', 'bench', '--model', dir, '--batch', `${sh.batch}`, '--seq', `${sh.seq}`, '--gen-batch', `${sh.genBatch}`, '--prompt-len', `${sh.promptLen}`, '--new-tokens', `${sh.newTokens}`, '--steps', steps, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (a.status !== 0) throw new Error(`aha bench failed for ${name}`);
  const aha = lastJson(a.stdout);
  process.stderr.write(`== ${name}: PyTorch (OPENBLAS_CORETYPE=${kernel})\n`);
  const t = spawnSync('/usr/bin/python3', ['bench/pytorch_reference.py', '--config', dir, '--batch', `${sh.batch}`, '--seq', `${sh.seq}`, '--gen-batch', `${sh.genBatch}`, '--prompt-len', `${sh.promptLen}`, '--new-tokens', `${sh.newTokens}`, '--steps', steps, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OPENBLAS_CORETYPE: kernel } });
  if (t.status !== 0) throw new Error(`PyTorch bench failed for ${name}`);
  const torch = lastJson(t.stdout);
  const row = {
    aha_train_tokens_per_s: aha.train_tokens_per_s, torch_train_tokens_per_s: torch.train_tokens_per_s,
    train_ratio: (aha.train_tokens_per_s as number) / (torch.train_tokens_per_s as number),
    aha_generate_tokens_per_s: aha.generate_tokens_per_s, torch_generate_tokens_per_s: torch.generate_tokens_per_s,
    generate_ratio: (aha.generate_tokens_per_s as number) / (torch.generate_tokens_per_s as number),
    aha_train_gflops: aha.train_gflops, sgemm_gflops: aha.sgemm_gflops, aha_fraction_of_peak: aha.train_fraction_of_peak,
    aha_peak_rss_mb: aha.peak_rss_mb, torch_peak_rss_mb: torch.peak_rss_mb, blas_kernel: aha.blas_kernel, torch_blas: torch.openblas_corename,
  };
  results[name] = row;
  console.log(`\n${name}`);
  console.log(`  training   aha ${(row.aha_train_tokens_per_s as number).toFixed(1)} tok/s   PyTorch ${(row.torch_train_tokens_per_s as number).toFixed(1)} tok/s   ratio ${row.train_ratio.toFixed(2)}x   (${(row.aha_train_gflops as number).toFixed(0)} GFLOP/s = ${(100 * (row.aha_fraction_of_peak as number)).toFixed(0)}% of sgemm peak ${(row.sgemm_gflops as number).toFixed(0)})`);
  console.log(`  sampling   aha ${(row.aha_generate_tokens_per_s as number).toFixed(1)} tok/s   PyTorch ${(row.torch_generate_tokens_per_s as number).toFixed(1)} tok/s   ratio ${row.generate_ratio.toFixed(2)}x`);
  console.log(`  peak RSS   aha ${(row.aha_peak_rss_mb as number).toFixed(0)} MB   PyTorch ${(row.torch_peak_rss_mb as number).toFixed(0)} MB`);
}
const out = arg('--out', '');
if (out) writeFileAtomic(out, JSON.stringify(results, null, 2) + '\n');
