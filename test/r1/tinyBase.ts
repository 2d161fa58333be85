/**
 * A tiny "base model" for the r1 integration tests: a 2-layer, width-48 character model fine-tuned for a few
 * seconds on worked one-step additions ("User: 5+3. Assistant: <think>\n5+3\n=8\n</think> <answer>8</answer>"), so
 * that it follows the R1-Zero format and is right about a third of the time: enough correct samples for cold
 * start and rejection sampling to keep some, enough wrong ones for them to drop some.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { arithmeticTask, type ArithmeticOptions } from '../../src/data/tasks/arithmetic.ts';
import { corpusAlphabet } from '../../src/data/tasks/corpus.ts';
import { Rng } from '../../src/data/rng.ts';
import { r1ZeroCompletion } from '../../src/data/r1ZeroTemplate.ts';
import { tinyCharModel } from '../support/tinyCharModel.ts';
import { resolveSftOptions } from '../../src/sft/sftConfig.ts';
import { sftTrain } from '../../src/sft/trainer.ts';

/** The one-step addition task the tiny base knows. */
export const EASY_TASK: ArithmeticOptions = { minTerms: 2, maxTerms: 2, maxOperand: 9, ops: '+' };

/** The same, as an r1 recipe's task_options. */
export const EASY_TASK_OPTIONS = { min_terms: 2, max_terms: 2, max_operand: 9, ops: '+' };

/** Writes an untrained tiny model with the demo's character alphabet; returns its directory. */
export function freshTinyModel(dir: string, seed = 1, maxPositions = 128): string {
  return tinyCharModel(dir, {
    alphabet: corpusAlphabet(arithmeticTask()),
    seed,
    name: 'init',
    config: { hidden_size: 48, intermediate_size: 96, max_position_embeddings: maxPositions },
  }).dir;
}

/** Trains the tiny base (about 5 s on 2 cores); returns its directory. */
export async function buildTinyBase(dir: string, steps = 300): Promise<string> {
  const init = freshTinyModel(dir);
  const task = arithmeticTask(EASY_TASK);
  const rng = new Rng(3);
  const lines = task.pretrainExamples(rng, 400).map((ex) => {
    const s = task.solve(ex, rng, { slip: 'none', verify: false });
    return JSON.stringify({ prompt: task.prompt(ex), completion: r1ZeroCompletion(s.reasoning, s.answer) });
  });
  const data = join(dir, 'base-data.jsonl');
  writeFileSync(data, lines.join('\n') + '\n');
  const r = await sftTrain(
    resolveSftOptions({
      cli: {
        model: init,
        data,
        out: join(dir, 'base-sft'),
        max_steps: steps,
        per_device_train_batch_size: 16,
        learning_rate: 3e-3,
        lr_scheduler_type: 'cosine',
        save_steps: 100_000,
        logging_steps: 100,
      },
    }),
  );
  return r.finalDir!;
}
