/**
 * What each recipe field means, and its Hugging Face TRL / transformers counterpart, keyed by the field's path.
 * Types, defaults and allowed values are not written here: the reference (docs/recipes.md) reads them from the
 * schemas (src/config/recipeSchemas.ts). A schema field without an entry here fails test/config/recipeReference.test.ts,
 * which names the path to add.
 *
 * Paths: dotted, list elements as `[]` (`rewards[].name`); in the r1 table one segment may be `*` (any stage).
 * `trl`: the TRL or transformers name of the same setting ("GRPOConfig.beta", "TrainingArguments.seed"), or a short
 * note where the counterpart is not a single field.
 */
import type { RecipeKind } from './recipeSchemas.ts';

/** A field's description. */
export interface FieldDoc {
  /** What it does, in a sentence or a few; Markdown allowed (backticks). */
  doc: string;
  /** The TRL / transformers equivalent, when there is one. */
  trl?: string;
}

const GRPO_CONFIG = (name: string) => `GRPOConfig.${name}`;
const SAVE_DTYPE_DOC =
  "Weight type of `final/`'s model: `auto` (the type the model came in: config.json's `torch_dtype`, else its stored weights'), `float32`, `bfloat16` or `float16` (rounded to nearest even). Checkpoints keep float32 weights, for exact resumes; LoRA adapters stay float32, as PEFT keeps them.";
const SAVE_DTYPE_TRL = "the dtype `save_pretrained` writes (the model's own)";
const TRAINING_ARGS = (name: string) => `TrainingArguments.${name}`;

/** Descriptions of every field of each recipe, by path. */
export const FIELD_DOCS: Record<RecipeKind, Record<string, FieldDoc>> = {
  grpo: {
    lora: {
      doc: 'Train LoRA adapters on frozen weights instead of every weight (PEFT semantics). Checkpoints and `final/` are then PEFT adapter directories; `aha merge` makes a whole model of one.',
      trl: 'GRPOTrainer(peft_config=LoraConfig(...))',
    },
    'lora.r': { doc: 'Rank of the adapters (A is [r, in], B is [out, r]).', trl: 'LoraConfig.r' },
    'lora.lora_alpha': {
      doc: 'Scale of the adapters: alpha / r (alpha / sqrt(r) under use_rslora); default r (scale 1).',
      trl: 'LoraConfig.lora_alpha',
    },
    'lora.target_modules': {
      doc: 'The linear layers to adapt: a list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or "all-linear".',
      trl: 'LoraConfig.target_modules',
    },
    'lora.lora_dropout': {
      doc: 'Dropout on the adapters input; only 0 (GRPO needs the log-probs of sampling and training to agree).',
      trl: 'LoraConfig.lora_dropout',
    },
    'lora.use_rslora': { doc: 'Rank-stabilised LoRA: scale alpha / sqrt(r).', trl: 'LoraConfig.use_rslora' },
    torch_dtype: {
      doc: 'Weights in memory: auto keeps a LoRA base in the 16-bit type its checkpoint stores (bf16 or f16; products widen on the fly), float32 otherwise; bfloat16/float16 need lora.',
      trl: 'model_init_kwargs.torch_dtype',
    },
    chat_template_kwargs: {
      doc: "Extra variables for the model's chat template when prompt is chat, e.g. {enable_thinking: false} for Qwen3.",
      trl: GRPO_CONFIG('chat_template_kwargs'),
    },
    ref_model_dtype: {
      doc: "Full fine-tuning's KL reference copy (beta > 0): auto keeps it in the checkpoint's 16-bit type when the checkpoint has one (bit-exact at step 0; rounded to nearest even at each ref_model_sync_steps refresh), in half the memory of float32; float32 keeps an exact copy. Under LoRA the reference is the base itself.",
    },
    model: {
      doc: 'Hugging Face model directory to train (config.json, *.safetensors, tokenizer.json); relative to the recipe.',
      trl: 'GRPOTrainer(model=...)',
    },
    dataset: {
      doc: 'The questions: a JSONL or Parquet file or a Hugging Face datasets directory (in code also a list of examples).',
      trl: 'GRPOTrainer(train_dataset=...)',
    },
    'dataset.path': {
      doc: 'JSONL or Parquet file, or a Hugging Face datasets directory (saved with `save_to_disk` or a hub snapshot); relative to the recipe.',
      trl: '`load_dataset(path)`',
    },
    'dataset.question_field': {
      doc: 'Column holding the question (the text the prompt template wraps).',
      trl: "the dataset's `prompt` column",
    },
    'dataset.answer_field': {
      doc: 'Column holding the reference answer the accuracy reward checks against; null when the data has none (then no accuracy reward).',
      trl: 'an extra column passed to reward functions',
    },
    'dataset.answer_extraction': {
      doc: 'How the reference answer is read from that column: `none` (as it is), `gsm8k` (after `####`), `boxed` (the last `\\boxed{}` of a worked solution, as in MATH).',
    },
    'dataset.split': {
      doc: 'Split of a datasets directory (ignored for a single file).',
      trl: '`load_dataset(..., split=...)`',
    },
    'dataset.limit': { doc: 'Use only the first N rows.', trl: '`dataset.select(range(N))`' },
    prompt: {
      doc: "How a question becomes the prompt: `r1-zero` (the R1-Zero paper's template), `r1-zero-short` (its short form, the demo's), `chat` (the model's chat template), or any text containing `{question}`.",
      trl: 'conversational or plain `prompt` column',
    },
    system_prompt: {
      doc: 'System message before the question; only with prompt `chat`.',
      trl: 'a system turn in `prompt`',
    },
    rewards: {
      doc: 'The reward functions; the step reward is their weighted sum (weights from `weight` or grpo.reward_weights).',
      trl: 'GRPOTrainer(reward_funcs=...)',
    },
    'rewards[].name': {
      doc: 'A built-in (`accuracy`, `format`, `length`, `overlong`, `language`, `code`; options below) or a module reward `./file.ts#export` (the default export without `#`), relative to the recipe.',
      trl: 'a reward function in reward_funcs',
    },
    'rewards[].weight': {
      doc: 'Weight in the total reward (default 1). Give either these or grpo.reward_weights.',
      trl: GRPO_CONFIG('reward_weights'),
    },
    'rewards[].options': {
      doc: 'Options of a built-in reward (see [reward options](#grpo-reward-options)); for a module reward, the object passed to its export, then a factory that returns the reward function.',
    },
    'rewards[].label': {
      doc: 'Name the reward is logged under (default: the built-in name, or the export name).',
      trl: "the reward function's `__name__`",
    },
    'rewards[].fn': { doc: 'In code only: the reward function itself (`name` is then only its label).' },
    'rewards[].check': {
      doc: "In code only, accuracy only: decides an extracted answer (a task's check) instead of the math verifier.",
    },
    grpo: {
      doc: "GRPO hyper-parameters under TRL's GRPOConfig names and defaults, so a TRL recipe's values carry over.",
      trl: 'GRPOConfig',
    },
    'grpo.num_generations': {
      doc: 'G: completions sampled per prompt; the group whose rewards are normalised together (at least 2).',
      trl: GRPO_CONFIG('num_generations'),
    },
    'grpo.max_completion_length': {
      doc: 'Longest completion in tokens; also the constant of the `dr_grpo` loss and the end of the `overlong` penalty.',
      trl: GRPO_CONFIG('max_completion_length'),
    },
    'grpo.temperature': {
      doc: 'Sampling temperature of the rollouts (R1-Zero: 1.0).',
      trl: GRPO_CONFIG('temperature'),
    },
    'grpo.top_p': { doc: 'Nucleus sampling of the rollouts (1: off).', trl: GRPO_CONFIG('top_p') },
    'grpo.top_k': { doc: 'Sample among the k most likely tokens only (0: off).', trl: GRPO_CONFIG('top_k') },
    'grpo.beta': {
      doc: 'KL coefficient against the reference model; 0 skips the reference model entirely (R1-Zero used 0.001).',
      trl: GRPO_CONFIG('beta'),
    },
    'grpo.epsilon': {
      doc: 'Lower clip epsilon of the policy ratio (and the upper one unless epsilon_high is set).',
      trl: GRPO_CONFIG('epsilon'),
    },
    'grpo.epsilon_high': {
      doc: "Upper clip epsilon (DAPO's clip-higher: 0.28); null means epsilon.",
      trl: GRPO_CONFIG('epsilon_high'),
    },
    'grpo.loss_type': {
      doc: 'Loss aggregation: `grpo` (per-sequence mean, then mean), `bnpo` (token mean over the micro-batch), `dr_grpo` (sum over max_completion_length), `dapo` (token mean over the whole step).',
      trl: GRPO_CONFIG('loss_type'),
    },
    'grpo.scale_rewards': {
      doc: "Advantage scaling: divide by the group's reward std (`group`), the batch's (`batch`), or not at all (`none`, Dr. GRPO); true/false are TRL's older spellings of group/none.",
      trl: GRPO_CONFIG('scale_rewards'),
    },
    'grpo.num_iterations': {
      doc: "Policy updates per generated batch (mu); above 1 the sampling policy's log-probs are kept for the ratio.",
      trl: GRPO_CONFIG('num_iterations'),
    },
    'grpo.mask_truncated_completions': {
      doc: 'Leave completions that hit max_completion_length without EOS out of the loss (DAPO).',
      trl: GRPO_CONFIG('mask_truncated_completions'),
    },
    'grpo.reward_weights': {
      doc: 'One weight per reward, in the order of `rewards`; null weighs each by its own `weight` (default 1).',
      trl: GRPO_CONFIG('reward_weights'),
    },
    training: {
      doc: "Optimisation, batch sizes, schedule, checkpoints and logging, under transformers' TrainingArguments names where one exists.",
      trl: 'TrainingArguments (GRPOConfig inherits them)',
    },
    'training.learning_rate': { doc: 'Peak AdamW learning rate.', trl: TRAINING_ARGS('learning_rate') },
    'training.max_steps': {
      doc: 'Trainer steps; one step is one rollout (sampling and scoring) and its policy updates.',
      trl: TRAINING_ARGS('max_steps'),
    },
    'training.prompts_per_step': {
      doc: 'Questions per step, each sampled num_generations times (default 8; R1-Zero: 32). Give at most one of this, per_device_train_batch_size and generation_batch_size.',
      trl: 'generation_batch_size / num_generations',
    },
    'training.per_device_train_batch_size': {
      doc: "TRL's unit instead: completions per optimizer update, so a step samples per_device_train_batch_size x steps_per_generation completions.",
      trl: TRAINING_ARGS('per_device_train_batch_size'),
    },
    'training.generation_batch_size': {
      doc: 'Completions sampled per step (prompts_per_step x num_generations); a multiple of num_generations.',
      trl: GRPO_CONFIG('generation_batch_size'),
    },
    'training.steps_per_generation': {
      doc: 'Optimizer updates each rollout is split into (mini-batches by prompt; R1-Zero: 16), per num_iterations pass.',
      trl: GRPO_CONFIG('steps_per_generation'),
    },
    'training.micro_batch_tokens': {
      doc: 'Token budget of one forward/backward micro-batch (sequences packed, at least one per micro-batch); bounds memory, not the result.',
      trl: 'per_device_train_batch_size x gradient_accumulation_steps (memory only)',
    },
    'training.gradient_checkpointing': {
      doc: "Keep only each layer's input in the forward pass and recompute the layer in backward: less activation memory, one more forward.",
      trl: TRAINING_ARGS('gradient_checkpointing'),
    },
    'training.sampling_batch_size': {
      doc: 'Completions sampled per engine call (bounds the KV cache; does not change the result).',
    },
    'training.max_grad_norm': { doc: 'Global gradient-norm clip (0: off).', trl: TRAINING_ARGS('max_grad_norm') },
    'training.weight_decay': { doc: 'Decoupled AdamW weight decay.', trl: TRAINING_ARGS('weight_decay') },
    'training.adam_beta1': { doc: 'AdamW beta1.', trl: TRAINING_ARGS('adam_beta1') },
    'training.adam_beta2': { doc: 'AdamW beta2 (0.99, as in the R1-Zero recipes).', trl: TRAINING_ARGS('adam_beta2') },
    'training.warmup_steps': {
      doc: 'Linear warm-up steps (overrides warmup_ratio when > 0).',
      trl: TRAINING_ARGS('warmup_steps'),
    },
    'training.warmup_ratio': { doc: 'Warm-up as a share of max_steps.', trl: TRAINING_ARGS('warmup_ratio') },
    'training.lr_scheduler_type': {
      doc: 'Learning-rate schedule after warm-up.',
      trl: TRAINING_ARGS('lr_scheduler_type'),
    },
    'training.seed': { doc: 'Seed of the question order and of sampling.', trl: TRAINING_ARGS('seed') },
    'training.shuffle': {
      doc: 'Shuffle the questions each epoch (seeded); false keeps file order.',
      trl: GRPO_CONFIG('shuffle_dataset'),
    },
    'training.top_p': { doc: 'Deprecated spelling of grpo.top_p (still read, with a warning).' },
    'training.top_k': { doc: 'Deprecated spelling of grpo.top_k (still read, with a warning).' },
    'training.save_steps': {
      doc: 'Checkpoint every N steps (0: only at the end and on interruption).',
      trl: TRAINING_ARGS('save_steps'),
    },
    'training.save_total_limit': {
      doc: 'Keep at most this many checkpoint-N directories (oldest removed); null keeps all.',
      trl: TRAINING_ARGS('save_total_limit'),
    },
    'training.save_dtype': {
      doc: SAVE_DTYPE_DOC,
      trl: SAVE_DTYPE_TRL,
    },
    'training.logging_steps': {
      doc: 'Print a summary line every N steps when stderr is not a terminal (metrics.jsonl has every step).',
      trl: TRAINING_ARGS('logging_steps'),
    },
    'training.report_to': {
      doc: 'Where metrics go besides metrics.jsonl (always written): `csv` (metrics.csv), `tensorboard` (event files in `runs/`); a list, a comma-separated string, or `none`.',
      trl: TRAINING_ARGS('report_to'),
    },
    'training.sample_log_steps': {
      doc: 'Write sample completions to samples.jsonl every N steps (0: never); step 1 is always written.',
      trl: `${GRPO_CONFIG('log_completions')} (every logging step)`,
    },
    'training.num_samples_logged': {
      doc: 'Completions written to samples.jsonl each time.',
      trl: GRPO_CONFIG('num_completions_to_print'),
    },
    'training.ref_model_sync_steps': {
      doc: 'Replace the KL reference model by the current policy every N steps (R1: 400); 0 never.',
      trl: `${GRPO_CONFIG('ref_model_sync_steps')} (with sync_ref_model)`,
    },
    'training.dynamic_sampling': {
      doc: 'DAPO dynamic sampling: drop groups whose rewards are all equal (no learning signal) and sample more prompts to fill the step.',
    },
    'training.dynamic_sampling_max_batches': {
      doc: 'Most rollout batches one step may sample under dynamic sampling (the first included).',
    },
    reward_timeout_ms: {
      doc: 'Time limit of one reward call (asynchronous and module rewards); a call over it scores 0 and is counted.',
    },
    output_dir: {
      doc: 'Run directory (metrics.jsonl, samples.jsonl, checkpoint-N/, final/); relative to the recipe. `--out` overrides it.',
      trl: TRAINING_ARGS('output_dir'),
    },
  },

  r1: {
    base_model: {
      doc: 'The base model; cold-start SFT and rejection-sampling SFT both fine-tune it, as in the paper. Relative to the recipe.',
    },
    output_dir: { doc: 'Run directory (one subdirectory per stage); relative to the recipe. `--out` overrides it.' },
    task: {
      doc: 'A built-in synthetic task (questions generated, split by hash, checked by rule). Give task or dataset.',
    },
    task_options: { doc: "The task's difficulty (src/data/tasks/arithmetic.ts); only with task." },
    'task_options.min_terms': { doc: 'Fewest operands in a question (default 4: three steps).' },
    'task_options.max_terms': { doc: 'Most operands in a question (default 5).' },
    'task_options.max_operand': { doc: 'Operands are drawn from 1 to this (default 9).' },
    'task_options.ops': { doc: 'Operators drawn from (default `+-`; `*` allowed).' },
    'task_options.max_value': { doc: 'Every intermediate value stays in [0, max_value] (default 99).' },
    task_train_size: { doc: 'Training problems generated from the task.' },
    dataset: {
      doc: 'Problems with reference answers (JSONL, Parquet, datasets directory), instead of a task.',
    },
    eval_dataset: {
      doc: 'Held-out problems (with a dataset); default: eval.problems rows held out from dataset (by the seed).',
    },
    prompt: {
      doc: "`r1-zero`, `r1-zero-short`, `chat`, or a template with `{question}`; default: the task's prompt, else `r1-zero`.",
    },
    system_prompt: { doc: 'System message before the question; only with prompt `chat`.' },
    language: {
      doc: 'Target language of the chain of thought, for the language-consistency reward and filter (e.g. `en`, `zh`).',
    },
    answer_strategies: {
      doc: 'How final answers are read (after `</think>`), in priority order; the verifier compares them with the references.',
    },
    summary_template: {
      doc: 'The readable summary cold-start samples are rewritten to end with; must contain `{answer}` (and may use `{final_line}`).',
    },
    max_new_tokens: {
      doc: 'Generation limit of every sampling step (data stages, evaluation) unless it sets its own.',
    },
    filters: { doc: "R1's readability filters of the data stages (cold start and rejection sampling)." },
    'filters.language_threshold': {
      doc: 'Drop chains of thought whose language consistency is below this (0 turns the filter off).',
    },
    'filters.max_paragraph_chars': { doc: 'Drop samples with a paragraph longer than this; null: no limit.' },
    'filters.drop_code_blocks': { doc: 'Drop samples with Markdown code blocks.' },
    'filters.min_tokens': { doc: 'Drop samples shorter than this many tokens; null: no minimum.' },
    'filters.max_tokens': { doc: 'Drop samples longer than this many tokens; null: no maximum.' },
    'filters.min_chars': { doc: 'Drop samples shorter than this many characters; null: no minimum.' },
    'filters.max_chars': { doc: 'Drop samples longer than this many characters; null: no maximum.' },
    'filters.min_reasoning_lines': {
      doc: 'Drop chains of thought with fewer non-empty lines than this (a direct guess is no chain); null: no minimum.',
    },
    'filters.drop_repetition': { doc: 'Drop degenerate loops (the same lines or phrases over and over).' },
    'filters.require_summary': { doc: 'Drop samples with no summary (and answer) after `</think>`.' },
    'filters.judge_unreadable': {
      doc: "An LLM judge (the `judge` reward's options plus `min_score`) that decides, in rejection sampling, the samples whose final answer the verifier cannot read; null: such samples are incorrect.",
    },
    'filters.judge_unreadable.min_score': {
      doc: 'A sample the judge scores at least this (verdicts score 1 or 0, ratings in [0, 1]) counts as correct.',
    },
    'filters.judge_unreadable.*': { doc: "As the `judge` reward's option of the same name." },
    eval: { doc: 'The held-out evaluation run before the first stage (base) and after each stage.' },
    'eval.problems': { doc: 'Held-out problems per evaluation.' },
    'eval.samples': { doc: 'Samples per problem; pass@1 is their mean correctness.' },
    'eval.temperature': { doc: "Sampling temperature of the evaluation (the paper's 0.6)." },
    'eval.top_p': { doc: "Nucleus sampling of the evaluation (the paper's 0.95)." },
    'eval.max_new_tokens': { doc: "Generation limit of the evaluation (default: the recipe's max_new_tokens)." },
    'eval.evaluate_base': { doc: 'Evaluate the base model too, before the first stage.' },
    seed: { doc: 'Seed of the problem draws, the held-out split and sampling.' },
    stages: {
      doc: 'The stages to run, in this order: cold_start_sft, reasoning_rl, rejection_sft, all_scenarios_rl; leave any out. A stage written with no body takes all its defaults.',
    },
    'stages.cold_start_sft': {
      doc: 'Stage 1: cold-start data (samples of source_model, verified, filtered and rewritten as reasoning + summary), then SFT of the base model on it.',
    },
    'stages.cold_start_sft.data': {
      doc: "Ready-made cold-start SFT data (JSONL in aha sft's formats); when given, nothing is sampled. Relative to the recipe.",
    },
    'stages.cold_start_sft.source_model': {
      doc: 'The model whose samples become the cold-start data (an R1-Zero checkpoint or any teacher); default the base model.',
    },
    'stages.cold_start_sft.summary_template': { doc: "Overrides the recipe's summary_template for this stage." },
    'stages.*.prompts': { doc: 'Training problems drawn for sampling.' },
    'stages.*.samples_per_prompt': { doc: 'Completions sampled per problem.' },
    'stages.*.max_per_prompt': { doc: 'Most samples kept per problem (after verification and filters).' },
    'stages.*.temperature': { doc: 'Sampling temperature of the data stage.' },
    'stages.*.top_p': { doc: 'Nucleus sampling of the data stage.' },
    'stages.*.max_new_tokens': {
      doc: "Generation limit of the stage's sampling (default: the recipe's max_new_tokens).",
    },
    'stages.*.sft': {
      doc: "The stage's SFT run; the pipeline sets its model, data and run directory.",
    },
    'stages.*.max_minutes': {
      doc: "Wall-clock budget of the stage's training: it stops cleanly there (at a checkpoint) and counts as finished. Per invocation: a resumed stage gets the budget again.",
    },
    'stages.reasoning_rl': {
      doc: 'Stage 2: GRPO from the cold-start checkpoint with rule rewards (accuracy, format, language consistency).',
    },
    'stages.*.rewards': {
      doc: 'Weights of the built-in rewards by name; a weight of 0 leaves the reward out.',
    },
    'stages.*.rewards.accuracy': { doc: 'Weight of the accuracy reward (the answer verified against the reference).' },
    'stages.*.rewards.format': { doc: 'Weight of the format reward (`<think>...</think>` then the answer).' },
    'stages.*.rewards.language': {
      doc: "Weight of R1's language-consistency reward (share of the chain of thought's words in `language`).",
    },
    'stages.*.max_failing_reward_steps': {
      doc: 'The stage fails (resumable) when some reward fails on every call for this many consecutive steps.',
    },
    'stages.*.grpo': {
      doc: "The stage's GRPO options (weights come from the stage's rewards).",
      trl: 'GRPOConfig',
    },
    'stages.*.training': { doc: "The stage's GRPO training options.", trl: 'TrainingArguments' },
    'stages.*.lora': {
      doc: "LoRA adapters for this RL stage (the fields of an aha grpo recipe's `lora`); the next stage reads base + adapters, merged when it trains.",
      trl: 'GRPOTrainer(peft_config=...)',
    },
    'stages.*.torch_dtype': {
      doc: "Weights in memory for this RL stage (as an aha grpo recipe's `torch_dtype`).",
      trl: 'model_init_kwargs.torch_dtype',
    },
    'stages.reasoning_rl.prompts': { doc: 'Training problems the stage draws from (default: all).' },
    'stages.rejection_sft': {
      doc: 'Stage 3: samples of the RL checkpoint, verified and filtered (plus non-reasoning data), then SFT of the base model on them.',
    },
    'stages.rejection_sft.non_reasoning_data': {
      doc: 'Non-reasoning SFT lines (writing, QA, ...) mixed into the data; JSONL, relative to the recipe.',
    },
    'stages.rejection_sft.non_reasoning_ratio': {
      doc: 'Share of non-reasoning lines in the final data (R1: about 0.25; default 0.25 with non_reasoning_data).',
    },
    'stages.all_scenarios_rl': {
      doc: 'Stage 4: GRPO from the rejection-SFT checkpoint, on the reasoning problems plus, optionally, general prompts scored by reward modules.',
    },
    'stages.all_scenarios_rl.prompts': { doc: 'Training problems the stage draws from (default: all).' },
    'stages.all_scenarios_rl.general_dataset': {
      doc: 'Prompts without a verifiable answer (helpfulness, harmlessness, ...), scored by general_rewards only.',
    },
    'stages.all_scenarios_rl.general_rewards': {
      doc: 'Reward modules that score the general prompts.',
      trl: 'reward_funcs',
    },
    'stages.all_scenarios_rl.general_rewards[].name': {
      doc: '`./module.ts#export`: a reward function, or with options a factory of one; relative to the recipe.',
    },
    'stages.all_scenarios_rl.general_rewards[].weight': { doc: 'Weight in the total reward.' },
    'stages.all_scenarios_rl.general_rewards[].options': {
      doc: "Passed to the module's export, which then returns the reward function.",
    },
    'stages.all_scenarios_rl.general_rewards[].label': {
      doc: 'Name the reward is logged under (default: the export name).',
    },
    'stages.all_scenarios_rl.general_prompts_per_step': {
      doc: "General prompts in each step's prompts (the rest are reasoning prompts), drawn in turn; default: their share of all the stage's prompts, at least 1.",
    },
  },

  sft: {
    use_peft: {
      doc: 'Train LoRA adapters on frozen weights (checkpoints are PEFT adapter directories).',
      trl: 'ModelConfig.use_peft',
    },
    lora_r: { doc: 'LoRA rank.', trl: 'ModelConfig.lora_r' },
    lora_alpha: { doc: 'LoRA alpha: the adapters are scaled by alpha / r.', trl: 'ModelConfig.lora_alpha' },
    lora_target_modules: {
      doc: 'Comma-separated modules to adapt (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj) or all-linear.',
      trl: 'ModelConfig.lora_target_modules',
    },
    lora_dropout: { doc: 'LoRA dropout; only 0 is supported.', trl: 'ModelConfig.lora_dropout' },
    use_rslora: { doc: 'Rank-stabilised LoRA: scale by alpha / sqrt(r).', trl: 'ModelConfig.use_rslora' },
    torch_dtype: {
      doc: 'Weights in memory: auto (the checkpoint type when frozen under LoRA, float32 otherwise), float32, bfloat16, float16.',
      trl: 'ModelConfig.torch_dtype',
    },
    model: {
      doc: 'The Hugging Face model directory to fine-tune (with tokenizer.json).',
      trl: 'ModelConfig.model_name_or_path',
    },
    data: {
      doc: 'Training JSONL: `{"text"}`, `{"prompt","completion"}` or `{"messages"}` per line (loss on the completion / assistant turns).',
      trl: 'SFTTrainer(train_dataset=...)',
    },
    eval_data: { doc: 'Held-out JSONL in the same formats.', trl: 'SFTTrainer(eval_dataset=...)' },
    eval_fraction: {
      doc: 'Share of data held out for evaluation (split with the seed) when there is no eval_data.',
      trl: '`dataset.train_test_split(test_size=...)`',
    },
    out: {
      doc: 'Run directory: metrics.jsonl, checkpoint-N/ (weights, trainer and optimizer state), final/ (the model only), config.json.',
      trl: TRAINING_ARGS('output_dir'),
    },
    max_seq_length: {
      doc: 'Longer sequences are truncated (with packing: the row length); null: min(1024, max_position_embeddings).',
      trl: 'SFTConfig.max_length',
    },
    packing: {
      doc: 'Concatenate sequences into max_seq_length rows (attention crosses examples).',
      trl: 'SFTConfig.packing',
    },
    per_device_train_batch_size: {
      doc: 'Sequences per micro-batch.',
      trl: TRAINING_ARGS('per_device_train_batch_size'),
    },
    per_device_eval_batch_size: {
      doc: 'Sequences per evaluation call.',
      trl: TRAINING_ARGS('per_device_eval_batch_size'),
    },
    micro_batch_tokens: { doc: 'Also cap the tokens of a micro-batch (bounds memory); null: no cap.' },
    gradient_accumulation_steps: {
      doc: 'Micro-batches per optimizer step.',
      trl: TRAINING_ARGS('gradient_accumulation_steps'),
    },
    gradient_checkpointing: {
      doc: "Keep only each layer's input and recompute the layer in backward: less memory, one more forward of the layers.",
      trl: TRAINING_ARGS('gradient_checkpointing'),
    },
    num_train_epochs: {
      doc: 'Passes over the training data (may be fractional).',
      trl: TRAINING_ARGS('num_train_epochs'),
    },
    max_steps: {
      doc: 'Optimizer steps; overrides num_train_epochs when > 0 (-1: from the epochs).',
      trl: TRAINING_ARGS('max_steps'),
    },
    learning_rate: { doc: 'Peak AdamW learning rate.', trl: TRAINING_ARGS('learning_rate') },
    lr_scheduler_type: { doc: 'Decay after warm-up.', trl: TRAINING_ARGS('lr_scheduler_type') },
    warmup_ratio: { doc: 'Warm-up as a share of the steps.', trl: TRAINING_ARGS('warmup_ratio') },
    warmup_steps: { doc: 'Warm-up steps (overrides warmup_ratio when > 0).', trl: TRAINING_ARGS('warmup_steps') },
    min_lr_ratio: {
      doc: 'Floor of the linear/cosine decay as a share of the peak.',
      trl: "lr_scheduler_kwargs.min_lr_rate ('cosine_with_min_lr')",
    },
    weight_decay: { doc: 'Decoupled weight decay (matrices only).', trl: TRAINING_ARGS('weight_decay') },
    max_grad_norm: { doc: 'Global gradient-norm clip (0: off).', trl: TRAINING_ARGS('max_grad_norm') },
    adam_beta1: { doc: 'AdamW beta1.', trl: TRAINING_ARGS('adam_beta1') },
    adam_beta2: { doc: 'AdamW beta2.', trl: TRAINING_ARGS('adam_beta2') },
    adam_epsilon: { doc: 'AdamW epsilon.', trl: TRAINING_ARGS('adam_epsilon') },
    seed: { doc: 'Seed of the data order and of the eval split.', trl: TRAINING_ARGS('seed') },
    logging_steps: { doc: 'Steps between metrics.jsonl records.', trl: TRAINING_ARGS('logging_steps') },
    report_to: {
      doc: 'Where metrics go besides metrics.jsonl (always written): `csv` (metrics.csv), `tensorboard` (event files in `runs/`); a list, a comma-separated string, or `none`.',
      trl: TRAINING_ARGS('report_to'),
    },
    eval_steps: { doc: 'Steps between evaluations; null: only at the end.', trl: TRAINING_ARGS('eval_steps') },
    eval_on_start: { doc: 'Evaluate before the first step.', trl: TRAINING_ARGS('eval_on_start') },
    save_steps: { doc: 'Steps between checkpoints.', trl: TRAINING_ARGS('save_steps') },
    save_total_limit: {
      doc: 'Keep only the newest N checkpoints; null keeps all.',
      trl: TRAINING_ARGS('save_total_limit'),
    },
    save_dtype: { doc: SAVE_DTYPE_DOC, trl: SAVE_DTYPE_TRL },
    chat_template_kwargs: {
      doc: "Extra variables for the model's chat template when rendering messages data, e.g. {enable_thinking: false} for Qwen3 (on the command line, a JSON object).",
      trl: 'apply_chat_template(**chat_template_kwargs)',
    },
    overwrite_output_dir: {
      doc: 'Start over in a run directory that holds checkpoints.',
      trl: TRAINING_ARGS('overwrite_output_dir'),
    },
    resume_from_checkpoint: {
      doc: 'Continue from the newest checkpoint in out (true) or from the given checkpoint directory (`--resume`).',
      trl: TRAINING_ARGS('resume_from_checkpoint'),
    },
  },
};

/** Descriptions of the options of each built-in reward (`rewards[i].options` in a GRPO recipe). */
export const REWARD_OPTION_DOCS: Record<string, { about: string; options: Record<string, FieldDoc> }> = {
  accuracy: {
    about: "1 when the answer read from the completion verifies equal to the example's reference answer, else 0.",
    options: {
      strategies: {
        doc: 'Where the answer is read from, in priority order (default `answerTag`, `boxed`: the `<answer>` block, else the last `\\boxed{}`).',
      },
      rtol: { doc: "Relative tolerance of numeric equality (default: the verifier's)." },
      timeout_ms: { doc: "Time limit of one symbolic comparison (default: the verifier's)." },
    },
  },
  format: {
    about: '1 when the completion follows the R1-Zero format (`<think>...</think> <answer>...</answer>`), else 0.',
    options: {
      mode: {
        doc: "`strict`: `<think>...</think> <answer>...</answer>` and nothing else (R1-Zero's template); `think`: a `<think>` block, then whatever follows is the answer (the R1 paper's, TRL's think_format_reward).",
      },
      prefilled_think: {
        doc: "The chat template already opened `<think>` at the end of the prompt (DeepSeek-R1's does): the check runs on `<think>` + completion.",
      },
      require_answer: { doc: 'In `think` mode, also require a non-empty answer after `</think>`.' },
    },
  },
  length: {
    about:
      'min(length, target_length) / target_length: pays for longer outputs up to a target (easy to game: pair it with accuracy and a small weight).',
    options: {
      target_length: { doc: 'Length at which the reward reaches 1 (required).' },
      unit: { doc: 'Count tokens or characters.' },
    },
  },
  overlong: {
    about:
      "DAPO's soft overlong penalty: 0 up to max_completion_length - cache_length, then down to -1 at max_completion_length.",
    options: {
      cache_length: { doc: 'Length of the penalty ramp in tokens (default: a fifth of grpo.max_completion_length).' },
    },
  },
  language: {
    about: "R1's language-consistency reward: the share of the chain of thought's words in the target language.",
    options: {
      target: { doc: 'Target language (e.g. `en`, `zh`).' },
      scope: { doc: '`cot`: the `<think>` block only; `all`: the whole completion.' },
      no_words_score: { doc: 'Score of a completion with no counted word (math only).' },
    },
  },
  code: {
    about: "Runs the completion's last fenced code block against the example's tests in the sandbox (src/judge/).",
    options: {
      language: { doc: "The program's language (default: the code fence's tag)." },
      mode: { doc: '`fraction` of the tests passed, or `all` (1 only when every test passes).' },
      timeout_s: { doc: 'Time limit per test in seconds.' },
      memory_mb: { doc: 'Memory limit per test in MiB.' },
      float_tolerance: { doc: 'Accept numbers in the output within this tolerance of the expected ones.' },
      sandbox: { doc: '`bwrap` (bubblewrap, the default) or `none` (runs unsandboxed, with a warning on every run).' },
    },
  },
  judge: {
    about:
      'An LLM judge over an OpenAI-compatible server (src/rewards/llmJudge.ts): a verdict (1 or 0) or a rating mapped to [0, 1]; no readable reply is a failure, scored 0 and counted.',
    options: {
      base_url: { doc: 'The server, with or without `/v1` (vLLM, SGLang, llama.cpp, a hosted API).' },
      model: { doc: 'The model to ask (default: the one model `/v1/models` lists).' },
      api_key_env: { doc: 'Environment variable holding the API key (sent as a Bearer token).' },
      template: {
        doc: "`equivalence` (is the final answer equivalent to the reference; a verdict), `rating` (1-10 helpfulness, MT-Bench's prompt), or an inline template with `{question}`, `{reference}`, `{response}`.",
      },
      parse: {
        doc: "How replies are read: `verdict` or `score` (default: the built-in template's; required for an inline one).",
      },
      score_range: { doc: 'The rating scale of `parse: score`, mapped linearly to [0, 1] (default [1, 10]).' },
      max_tokens: { doc: 'Token limit of a reply (raise it for a reasoning judge).' },
      temperature: { doc: 'Sampling temperature of the judge.' },
      concurrency: { doc: 'Requests in flight at once, across all calls.' },
      timeout_ms: { doc: 'Time limit of one attempt; the whole call must also fit `reward_timeout_ms`.' },
      retries: { doc: 'Retries after a 429, a 5xx, a timeout or a network error.' },
      on: { doc: '`response`: the whole completion; `summary`: the text after `</think>` (as R1 judges helpfulness).' },
      cache: {
        doc: 'A JSONL file keeping replies across runs (relative to the recipe); replies are also cached in memory.',
      },
    },
  },
  reward_model: {
    about:
      'A local Hugging Face sequence-classification checkpoint (`Qwen2ForSequenceClassification`, `LlamaForSequenceClassification`; `num_labels: 1`) scoring the chat-rendered prompt and completion at the last token (src/rewards/rewardModel.ts); 16-bit weights stay 16-bit. Calls scored together are batched, and a call waits for the batches before its own: raise `reward_timeout_ms` (10 s) for a large reward model.',
    options: {
      model: { doc: 'The checkpoint directory (relative to the recipe); its tokenizer and chat template are used.' },
      on: { doc: '`response`: the whole completion; `summary`: the text after `</think>` (0 when there is none).' },
      normalize: {
        doc: 'Raw scores when absent; `{type: running}` standardises by the mean and std of every score so far; `{type: affine, scale, shift}` maps x to scale * x + shift.',
      },
      batch_size: { doc: 'Sequences per engine pass.' },
      torch_dtype: {
        doc: '`auto` keeps the weights as stored (bf16/f16 stay 16-bit: half the memory); `float32` widens them once, faster on CPUs that widen 16-bit weights in every product.',
      },
    },
  },
};

/** The description of `path` in `kind`'s table: the exact path, else one with a segment as `*`. */
export function fieldDoc(kind: RecipeKind, path: string): FieldDoc | undefined {
  const docs = FIELD_DOCS[kind];
  if (docs[path]) return docs[path];
  const segs = path.split('.');
  for (let i = 0; i < segs.length; i++) {
    const wild = [...segs.slice(0, i), '*', ...segs.slice(i + 1)].join('.');
    if (docs[wild]) return docs[wild];
  }
  return undefined;
}
