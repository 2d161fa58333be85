/**
 * TensorBoard event files, written without TensorFlow: `tensorboard --logdir <run>/runs` (or any reader of the
 * format: TensorBoard, tbparse, W&B's sync) plots a run's scalars.
 *
 * The format, as TensorFlow's own writers produce it:
 * - The file is a TFRecord stream. Each record is: uint64 length (little-endian), uint32 masked CRC32C of those 8
 *   bytes, the payload, uint32 masked CRC32C of the payload. CRC32C is the Castagnoli CRC (reflected polynomial
 *   0x82F63B78, init and final xor 0xFFFFFFFF); masked(c) = ((c >>> 15) | (c << 17)) + 0xA282EAD8 (mod 2^32).
 * - Each payload is a serialized `tensorflow.Event` protobuf: wall_time (1, double), step (2, int64), and one of
 *   file_version (3, string), summary (5, Summary), session_log (7, SessionLog).
 * - Summary is `repeated Value value = 1`; a scalar Value is tag (1, string) and simple_value (2, float), which
 *   TensorBoard reads as a scalar (what PyTorch's SummaryWriter.add_scalar writes).
 * - The first record is an Event with file_version "brain.Event:2". A writer continuing a run first writes an
 *   Event with session_log {status: START} at the resumed step: TensorBoard then drops the older files' points at
 *   and after that step, the ones the interrupted run logged past its last checkpoint (PyTorch's purge_step).
 *
 * No npm package fits: the ones found write TFRecords of tf.Example (not events) or need libtensorflow. The
 * protobuf needed is four message types, so it is encoded by hand below.
 */
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of `data`; crc32c("123456789") = 0xE3069283. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The masked CRC32C TFRecord stores (masking keeps a CRC of data that holds CRCs well distributed). */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, its masked CRC, the payload, its masked CRC. */
export function tfRecord(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + payload.length + 4);
  out.writeBigUInt64LE(BigInt(payload.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(payload, 12);
  out.writeUInt32LE(maskedCrc32c(payload), 12 + payload.length);
  return out;
}

// ---- protobuf wire format: just the types the Event messages use ----

/** A base-128 varint of a non-negative integer (or int64 two's complement for a negative one). */
function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

const key = (field: number, wireType: number) => varint((field << 3) | wireType);

function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...key(field, 2), ...varint(bytes.length)]), bytes]);
}

function doubleField(field: number, x: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return Buffer.concat([Buffer.from(key(field, 1)), b]);
}

function floatField(field: number, x: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return Buffer.concat([Buffer.from(key(field, 5)), b]);
}

const varintField = (field: number, x: number): Buffer => Buffer.from([...key(field, 0), ...varint(x)]);

/** A scalar's tag and value. */
export interface Scalar {
  tag: string;
  value: number;
}

/** The content of one Event besides its time and step. */
export type EventBody =
  | { fileVersion: string }
  | { scalars: readonly Scalar[] }
  | { sessionLog: { status: 'start' | 'stop' | 'checkpoint' } };

const SESSION_STATUS = { start: 1, stop: 2, checkpoint: 3 } as const;

/** A serialized tensorflow.Event. */
export function encodeEvent(wallTime: number, step: number, body: EventBody): Buffer {
  const parts: Buffer[] = [doubleField(1, wallTime)];
  if (step !== 0) parts.push(varintField(2, step));
  if ('fileVersion' in body) parts.push(lengthDelimited(3, Buffer.from(body.fileVersion, 'utf8')));
  else if ('scalars' in body) {
    const values = body.scalars.map((s) =>
      lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from(s.tag, 'utf8')), floatField(2, s.value)])),
    );
    parts.push(lengthDelimited(5, Buffer.concat(values)));
  } else parts.push(lengthDelimited(7, varintField(1, SESSION_STATUS[body.sessionLog.status])));
  return Buffer.concat(parts);
}

/**
 * The file name TensorFlow's writers use, events.out.tfevents.<unix seconds>.<host>, with the pid after it (and a
 * counter when the same process opens a second file in the same second), so that no two writers share a file;
 * TensorBoard reads the files of a directory in name order, which is the order they were written.
 */
export function eventFileName(dir: string, now = Date.now()): string {
  const base = `events.out.tfevents.${Math.floor(now / 1000)}.${hostname()}.${process.pid}`;
  let name = base;
  for (let k = 1; existsSync(join(dir, name)); k++) name = `${base}.${k}`;
  return name;
}

/** Appends scalar events to a new event file in `dir` (created when needed). */
export class TensorBoardWriter {
  readonly path: string;

  /** `purgeFrom`: a resumed run's first step; TensorBoard drops the older files' points from there on. */
  constructor(dir: string, o: { purgeFrom?: number } = {}) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, eventFileName(dir));
    const now = Date.now() / 1000;
    const records = [tfRecord(encodeEvent(now, 0, { fileVersion: 'brain.Event:2' }))];
    if (o.purgeFrom !== undefined)
      records.push(tfRecord(encodeEvent(now, o.purgeFrom, { sessionLog: { status: 'start' } })));
    appendFileSync(this.path, Buffer.concat(records));
  }

  /** One event holding every finite value of `scalars` at `step`. */
  addScalars(step: number, scalars: Readonly<Record<string, number>>, wallTime = Date.now() / 1000): void {
    const list = Object.entries(scalars)
      .filter(([, v]) => Number.isFinite(v))
      .map(([tag, value]) => ({ tag, value }));
    if (list.length > 0) appendFileSync(this.path, tfRecord(encodeEvent(wallTime, step, { scalars: list })));
  }
}
