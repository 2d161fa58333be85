// One rank of a test GRPO run (test/parallel/grpo.test.ts), with or without mpirun:
//   node --import tsx test/parallel/grpoRank.ts MODEL_DIR OUT_DIR MAX_STEPS [resume]
// AHA_TEST_KILL_AT=STEP with AHA_TEST_KILL_RANK=R: rank R kills itself (SIGKILL) after that step, first writing
// the time to OUT_DIR.killed.
import { writeFileSync } from 'node:fs';
import { grpoTrain } from '../../src/rl/grpoTrainer.ts';
import type { RecipeInput } from '../../src/rl/recipe.ts';

const [modelDir, outDir, maxSteps, resume] = process.argv.slice(2);
const sevens = (c: string) => (c.length === 0 ? 0 : [...c].filter((x) => x === '7').length / c.length);
const recipe = {
  model: modelDir,
  dataset: Array.from({ length: 12 }, (_, i) => ({ question: `q${i}`, answer: '7' })),
  prompt: '{question} ',
  rewards: [{ name: 'sevens', fn: sevens }],
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
const killAt = Number(process.env.AHA_TEST_KILL_AT ?? 0);
await grpoTrain(recipe, {
  outDir,
  resume: resume === 'resume',
  log: () => {},
  onStep: (m) => {
    if (m.step === killAt && rank === Number(process.env.AHA_TEST_KILL_RANK ?? 1)) {
      writeFileSync(outDir + '.killed', String(Date.now()));
      process.kill(process.pid, 'SIGKILL');
    }
  },
});
