import { AhaError } from '../errors.ts';

/** Parses a numeric option, with a one-line error naming the option. */
export function parseNumber(
  v: string,
  name: string,
  range: { min?: number; max?: number; above?: number } = {},
): number {
  const x = Number(v);
  if (!Number.isFinite(x)) throw new AhaError(`${name} must be a number (got "${v}")`);
  if (range.above !== undefined && !(x > range.above))
    throw new AhaError(`${name} must be > ${range.above} (got ${x})`);
  if (range.min !== undefined && x < range.min) throw new AhaError(`${name} must be >= ${range.min} (got ${x})`);
  if (range.max !== undefined && x > range.max) throw new AhaError(`${name} must be <= ${range.max} (got ${x})`);
  return x;
}

export function parseInteger(v: string, name: string, range: { min?: number; max?: number } = {}): number {
  const x = parseNumber(v, name, range);
  if (!Number.isInteger(x)) throw new AhaError(`${name} must be an integer (got "${v}")`);
  if (!Number.isSafeInteger(x)) throw new AhaError(`${name} must be below 2^53 (got "${v}")`);
  return x;
}
