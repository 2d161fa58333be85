import { readFileSync, existsSync } from 'node:fs';
import { AhaError } from '../errors.ts';

/** One parsed JSONL record with its 1-based line number (for error messages). */
export interface JsonlRecord {
  line: number;
  value: unknown;
}

/** Reads a JSONL file; a malformed line is an AhaError naming the file and line. Blank lines are skipped. */
export function readJsonl(path: string): JsonlRecord[] {
  if (!existsSync(path)) throw new AhaError(`${path}: file not found`);
  const text = readFileSync(path, 'utf8');
  const out: JsonlRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    try {
      out.push({ line: i + 1, value: JSON.parse(raw) });
    } catch (e) {
      throw new AhaError(`${path}:${i + 1}: malformed JSON (${(e as Error).message})`);
    }
  }
  return out;
}

/** Reads a JSONL file whose lines must be objects. */
export function readJsonlObjects(path: string): { line: number; value: Record<string, unknown> }[] {
  return readJsonl(path).map(({ line, value }) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new AhaError(`${path}:${line}: expected a JSON object`);
    return { line, value: value as Record<string, unknown> };
  });
}
