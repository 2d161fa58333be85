import { readJsonlObjects } from '../data/jsonl.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { AhaError } from '../errors.ts';

/** Reads `{"ids":[...]}` or `{"text":"..."}` lines into token sequences. */
export function readTokenInput(path: string, tokenizer: Tokenizer | undefined, addSpecialTokens = true): number[][] {
  return readJsonlObjects(path).map(({ line, value }) => {
    if (Array.isArray(value.ids)) {
      if (!value.ids.every((x) => Number.isInteger(x)))
        throw new AhaError(`${path}:${line}: "ids" must be an array of integers`);
      return value.ids as number[];
    }
    if (typeof value.text === 'string') {
      if (!tokenizer)
        throw new AhaError(`${path}:${line}: "text" input needs a model directory with tokenizer.json (or give "ids")`);
      return tokenizer.encode(value.text, { addSpecialTokens });
    }
    throw new AhaError(`${path}:${line}: expected "ids" (array of token ids) or "text"`);
  });
}
