// One rank of a test SFT run (test/parallel/sft.test.ts), with or without mpirun:
//   node --import tsx test/parallel/sftRank.ts MODEL_DIR DATA OUT_DIR MAX_STEPS [resume]
import { sftTrain } from '../../src/sft/trainer.ts';
import { resolveSftOptions } from '../../src/sft/sftConfig.ts';

const [model, data, out, maxSteps, resume] = process.argv.slice(2);
await sftTrain(
  resolveSftOptions({
    cli: {
      model,
      data,
      out,
      max_steps: Number(maxSteps),
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 4,
      learning_rate: 5e-4,
      lr_scheduler_type: 'constant',
      warmup_steps: 0,
      logging_steps: 1,
      save_steps: 2,
      seed: 5,
      ...(resume === 'resume' ? { resume_from_checkpoint: true } : {}),
    },
  }),
);
