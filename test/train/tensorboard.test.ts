// TensorBoard event files, read back by an independent decoder (tfeventsReader.ts), CRCs against published vectors.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32c, encodeEvent, maskedCrc32c, TensorBoardWriter, tfRecord } from '../../src/train/tensorboard.ts';
import { decodeEvent, readRecords, referenceCrc32c, referenceMask } from './tfeventsReader.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-tb-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('CRC32C', () => {
  it('matches the published check value and the RFC 3720 (iSCSI) test vectors', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });
  it('agrees with a bitwise implementation, and masks as TFRecord does', () => {
    const data = Buffer.from('the masked crc of a record');
    assert.equal(crc32c(data), referenceCrc32c(data));
    assert.equal(maskedCrc32c(data), referenceMask(referenceCrc32c(data)));
    // mask(0) = rotate(0) + 0xa282ead8
    assert.equal(referenceMask(0), 0xa282ead8);
  });
});

describe('event records', () => {
  it('frame one Event: length, masked CRCs, payload', () => {
    const payload = encodeEvent(1700000000.25, 42, { scalars: [{ tag: 'train/loss', value: 0.5 }] });
    const records = readRecords(tfRecord(payload));
    assert.equal(records.length, 1);
    const e = decodeEvent(records[0]);
    assert.deepEqual(e, { wallTime: 1700000000.25, step: 42, scalars: { 'train/loss': 0.5 } });
  });
  it('encode large steps, negative and non-integer floats, and UTF-8 tags', () => {
    const e = decodeEvent(
      encodeEvent(1, 2 ** 40 + 3, {
        scalars: [
          { tag: 'train/rewards/äccuracy/mean', value: -1.5 },
          { tag: 'x', value: 0.1 },
        ],
      }),
    );
    assert.equal(e.step, 2 ** 40 + 3);
    assert.equal(e.scalars!['train/rewards/äccuracy/mean'], -1.5);
    assert.equal(e.scalars!.x, Math.fround(0.1));
  });
});

describe('TensorBoardWriter', () => {
  it('writes events.out.tfevents.<time>.<host>.<pid>: the file version first, then one event per step', () => {
    const dir = join(root, 'run', 'runs');
    const w = new TensorBoardWriter(dir);
    w.addScalars(1, { 'train/reward': 0.25, 'train/kl': 0.001, 'train/skipped': NaN }, 1000);
    w.addScalars(2, { 'train/reward': 0.75 }, 1001);
    w.addScalars(3, { 'train/none': Infinity }, 1002); // nothing finite: no event
    const [name] = readdirSync(dir);
    assert.match(
      name,
      new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.${hostname().replace(/[.]/g, '\\.')}\\.${process.pid}$`),
    );
    assert.equal(join(dir, name), w.path);
    const events = readRecords(readFileSync(w.path)).map(decodeEvent);
    assert.equal(events.length, 3);
    assert.equal(events[0].fileVersion, 'brain.Event:2');
    assert.ok(Math.abs(events[0].wallTime - Date.now() / 1000) < 60);
    assert.deepEqual(events[1], {
      wallTime: 1000,
      step: 1,
      scalars: { 'train/reward': 0.25, 'train/kl': Math.fround(0.001) },
    });
    assert.deepEqual(events[2], { wallTime: 1001, step: 2, scalars: { 'train/reward': 0.75 } });
  });

  it('a resumed run starts its file with session_log START at the resumed step (TensorBoard purges later points)', () => {
    const w = new TensorBoardWriter(join(root, 'resumed'), { purgeFrom: 11 });
    const events = readRecords(readFileSync(w.path)).map(decodeEvent);
    assert.equal(events.length, 2);
    assert.equal(events[1].step, 11);
    assert.equal(events[1].sessionStatus, 1);
  });
});
