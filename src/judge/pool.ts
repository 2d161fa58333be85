import { availableParallelism } from 'node:os';

/**
 * A bounded pool of judging slots: at most `size` programs run at once, each run told its slot number (the sandbox
 * derives a host uid from it, so concurrent runs never share one).
 */
export class JudgePool {
  readonly size: number;
  private free: number[];
  private waiting: ((slot: number) => void)[] = [];

  constructor(size = availableParallelism()) {
    if (!Number.isInteger(size) || size < 1 || size > 256) throw new RangeError(`pool size ${size} is not in 1..256`);
    this.size = size;
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** Runs `fn` in a free slot, waiting for one when all are busy. */
  async run<T>(fn: (slot: number) => Promise<T>): Promise<T> {
    const slot = this.free.pop() ?? (await new Promise<number>((r) => this.waiting.push(r)));
    try {
      return await fn(slot);
    } finally {
      const next = this.waiting.shift();
      if (next) next(slot);
      else this.free.push(slot);
    }
  }
}

let shared: JudgePool | null = null;

/** The process-wide pool (one slot per core), shared by every judge that is not given its own. */
export function defaultJudgePool(): JudgePool {
  shared ??= new JudgePool();
  return shared;
}
