// An independent reader of TensorBoard event files for the tests, written from the format's description (TFRecord
// framing with masked CRC32C, protobuf wire format, tensorflow.Event / Summary field numbers), sharing no code with
// src/train/tensorboard.ts.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';

/** CRC32C bit by bit (no table), straight from the definition: reflected polynomial 0x82F63B78. */
export function referenceCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function referenceMask(crc: number): number {
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  return (rotated + 0xa282ead8) % 2 ** 32;
}

/** Splits a TFRecord stream into payloads, checking both masked CRCs of every record. */
export function readRecords(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const lenBytes = buf.subarray(at, at + 8);
    const len = Number(lenBytes.readBigUInt64LE(0));
    assert.equal(buf.readUInt32LE(at + 8), referenceMask(referenceCrc32c(lenBytes)), `length CRC at ${at}`);
    const data = buf.subarray(at + 12, at + 12 + len);
    assert.equal(buf.readUInt32LE(at + 12 + len), referenceMask(referenceCrc32c(data)), `data CRC at ${at}`);
    out.push(data);
    at += 12 + len + 4;
  }
  assert.equal(at, buf.length, 'no trailing bytes');
  return out;
}

type Field = { wire: number; value: bigint | Buffer };

/** Protobuf wire format: field number -> its values in order (varint as bigint; fixed and length-delimited as bytes). */
export function decodeMessage(buf: Buffer): Map<number, Field[]> {
  const fields = new Map<number, Field[]>();
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[at++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    let value: bigint | Buffer;
    if (wire === 0) value = varint();
    else if (wire === 1) value = buf.subarray(at, (at += 8));
    else if (wire === 5) value = buf.subarray(at, (at += 4));
    else if (wire === 2) {
      const n = Number(varint());
      value = buf.subarray(at, (at += n));
    } else throw new Error(`wire type ${wire}`);
    fields.set(field, [...(fields.get(field) ?? []), { wire, value }]);
  }
  return fields;
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars?: Record<string, number>;
  sessionStatus?: number;
}

/** tensorflow.Event: wall_time 1 (double), step 2 (int64), file_version 3, summary 5, session_log 7. */
export function decodeEvent(buf: Buffer): DecodedEvent {
  const f = decodeMessage(buf);
  const one = (n: number) => f.get(n)?.[0];
  const e: DecodedEvent = {
    wallTime: (one(1)!.value as Buffer).readDoubleLE(0),
    step: one(2) ? Number(one(2)!.value) : 0,
  };
  if (one(3)) e.fileVersion = (one(3)!.value as Buffer).toString('utf8');
  if (one(5)) {
    // Summary: repeated Value value = 1; Value: tag = 1 (string), simple_value = 2 (float).
    e.scalars = {};
    for (const v of decodeMessage(one(5)!.value as Buffer).get(1) ?? []) {
      const val = decodeMessage(v.value as Buffer);
      assert.equal(val.get(2)![0].wire, 5, 'simple_value is a 32-bit float');
      e.scalars[(val.get(1)![0].value as Buffer).toString('utf8')] = (val.get(2)![0].value as Buffer).readFloatLE(0);
    }
  }
  if (one(7)) e.sessionStatus = Number(decodeMessage(one(7)!.value as Buffer).get(1)![0].value);
  return e;
}

/** Every event of an event file, CRCs checked. */
export function readEventFile(path: string): DecodedEvent[] {
  return readRecords(readFileSync(path)).map(decodeEvent);
}
