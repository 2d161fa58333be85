import { existsSync } from 'node:fs';
import type { Model } from '../engine/model.ts';
import { AhaError } from '../errors.ts';
import { tensorChunks } from '../engine/types.ts';
import { readSafetensorsHeader, readSafetensorsInto, writeSafetensors } from '../model/safetensors.ts';

/**
 * AdamW's moments in one safetensors file, one tensor per parameter and moment, named as PyTorch's optimizer state
 * names them per parameter (`exp_avg.<param>`, `exp_avg_sq.<param>`). Per tensor, so that models of any size are
 * written and read through per-tensor views; the step count sits in the metadata. SFT, GRPO, the R1 stages and
 * distillation all write this one format.
 */
export function saveOptimizerState(path: string, model: Model): void {
  const { m, v, step } = model.optimizerState();
  const tensors = model.trainableLayout.flatMap((t) => [
    { name: `exp_avg.${t.name}`, shape: t.shape, data: tensorChunks(m, t) },
    { name: `exp_avg_sq.${t.name}`, shape: t.shape, data: tensorChunks(v, t) },
  ]);
  writeSafetensors(path, tensors, { metadata: { format: 'aha-adamw/2', step: String(step) } });
}

/** Loads moments and step count written by `saveOptimizerState` (or the flat `m`/`v` files of earlier versions). */
export function loadOptimizerState(path: string, model: Model, step: number): void {
  if (!existsSync(path)) throw new AhaError(`${path}: file not found (the checkpoint has no optimizer state)`);
  const { m, v } = model.optimizerState();
  const names = readSafetensorsHeader(path).tensors;
  const layout = model.trainableLayout;
  const legacy = ['m', 'exp_avg'].find((n) => names.has(n) && !names.has(`${n}.${layout[0].name}`));
  if (legacy !== undefined) {
    // One flat tensor per moment (aha 0.1): read whole, then spread over the per-tensor views.
    const n = model.numTrainable;
    const second = legacy === 'm' ? 'v' : 'exp_avg_sq';
    const both = new Float32Array(2 * n);
    readSafetensorsInto(
      [path],
      [
        { name: legacy, shape: [n], offset: 0, size: n },
        { name: second, shape: [n], offset: n, size: n },
      ],
      both,
      path,
    );
    for (const t of layout) {
      m(t, 0, t.size).set(both.subarray(t.offset, t.offset + t.size));
      v(t, 0, t.size).set(both.subarray(n + t.offset, n + t.offset + t.size));
    }
  } else {
    const moments = layout.flatMap((t) => [
      { ...t, name: `exp_avg.${t.name}` },
      { ...t, name: `exp_avg_sq.${t.name}` },
    ]);
    const byName = new Map(layout.map((t) => [t.name, t]));
    readSafetensorsInto(
      [path],
      moments,
      (t, start, length) => {
        const moment = t.name.startsWith('exp_avg_sq.') ? v : m;
        return moment(byName.get(t.name.slice(t.name.indexOf('.') + 1))!, start, length);
      },
      path,
    );
  }
  model.setOptimizerStep(step);
}
