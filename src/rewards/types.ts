/**
 * A dataset row as a reward sees it: whatever fields the task carries (the reference answer, test cases, ...).
 * Rewards that need a specific shape take their own type through the `E` parameter of {@link RewardFn}.
 */
export type Example = { readonly answer?: unknown; readonly [key: string]: unknown };

/** What a reward may know besides the completion and the example. */
export interface RewardContext {
  /** The prompt text the completion continues (after the chat template). */
  prompt: string;
  /** The completion's token ids, for length-based rewards; absent when the caller did not tokenize. */
  completionIds?: number[];
  /**
   * Says why the completion got its score (a judge verdict, 'no_code_block', ...): scoreCompletions keeps the last
   * reason per call, and GRPO counts them per reward in its step metrics (`reward_reasons`). Absent when the caller
   * does not collect reasons.
   */
  note?: (reason: string) => void;
  /**
   * Aborted when the caller stops waiting for this call (scoreCompletions' timeout): a reward holding a process, a
   * worker or a request should stop it then. Module rewards run in a worker that is terminated on abort
   * (src/rewards/isolatedReward.ts).
   */
  signal?: AbortSignal;
}

/**
 * Scores one completion. Synchronous or async; a throw, a rejection, a timeout or a non-finite value is reported
 * by scoreCompletions (src/rewards/combine.ts) and scored 0, so one bad reward never stops a training step.
 */
export type RewardFn<E = Example> = (completion: string, example: E, ctx: RewardContext) => number | Promise<number>;

/** A reward with the name it is logged under and its weight in the total (TRL's reward_weights; default 1). */
export interface NamedReward<E = Example> {
  name: string;
  fn: RewardFn<E>;
  weight?: number;
}

/** A reward call that failed; the completion got 0 from that reward. */
export interface RewardErrorEvent {
  rewardName: string;
  /** Index of the completion in the items passed to scoreCompletions. */
  exampleIndex: number;
  /** 'throw': threw or rejected; 'timeout': did not settle in time; 'invalid': returned a non-finite number. */
  kind: 'throw' | 'timeout' | 'invalid';
  message: string;
}
