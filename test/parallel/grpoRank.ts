// One rank of a test GRPO run (test/parallel/grpo.test.ts), with or without mpirun:
//   node --import tsx test/parallel/grpoRank.ts MODEL_DIR OUT_DIR MAX_STEPS [resume]
// After step AHA_TEST_FAULT_AT, rank AHA_TEST_FAULT_RANK (default 1) does AHA_TEST_FAULT: 'kill' (SIGKILL, first
// writing the time to OUT_DIR.killed), 'hang' (blocks for a minute) or 'perturb' (changes one weight).
import { writeFileSync } from 'node:fs';
import { loadPretrained } from '../../src/model/pretrained.ts';
import { grpoTrain } from '../../src/rl/grpoTrainer.ts';
import type { RecipeInput } from '../../src/rl/recipe.ts';

const [modelDir, outDir, maxSteps, resume] = process.argv.slice(2);
const sevens = (c: string) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length);
const recipe = {
  model: modelDir,
  dataset: Array.from({ length: 12 }, (_, i) => ({ question: `q${i}`, answer: '7' })),
  prompt: '{question} ',
  rewards: [{ name: 'sevens', fn: sevens }],
  // AHA_TEST_LORA=1: train LoRA adapters (the gradient buffer is then the adapters').
  ...(process.env.AHA_TEST_LORA ? { lora: { r: 4, lora_alpha: 8, target_modules: 'all-linear' } } : {}),
  grpo: { num_generations: 4, max_completion_length: 10, beta: 0.04, scale_rewards: 'batch', loss_type: 'dapo' },
  training: {
    learning_rate: Number(process.env.AHA_TEST_LR ?? 5e-4),
    max_steps: Number(maxSteps),
    prompts_per_step: 6,
    steps_per_generation: 2,
    save_steps: 2,
    seed: 3,
    lr_scheduler_type: 'constant',
  },
} as RecipeInput;
const rank = Number(process.env.OMPI_COMM_WORLD_RANK ?? 0);
const faultAt = Number(process.env.AHA_TEST_FAULT_AT ?? 0);
const fault = process.env.AHA_TEST_FAULT;
const pre = fault === 'perturb' ? loadPretrained(modelDir, { requireTokenizer: true }) : undefined;
await grpoTrain(recipe, {
  outDir,
  resume: resume === 'resume',
  model: pre,
  log: () => {},
  onStep: (m) => {
    if (m.step !== faultAt || rank !== Number(process.env.AHA_TEST_FAULT_RANK ?? 1)) return;
    if (fault === 'kill') {
      writeFileSync(outDir + '.killed', String(Date.now()));
      process.kill(process.pid, 'SIGKILL');
    } else if (fault === 'hang') {
      writeFileSync(outDir + '.killed', String(Date.now()));
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    } else if (fault === 'perturb') pre!.model.params[0] += 1e-3;
  },
});
