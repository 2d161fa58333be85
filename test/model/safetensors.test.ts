import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AhaError } from '../../src/errors.ts';
import type { TensorInfo } from '../../src/engine/types.ts';
import {
  findSafetensorsFiles,
  float32ToBfloat16Bits,
  readSafetensorsHeader,
  readSafetensorsInto,
  writeSafetensors,
} from '../../src/model/safetensors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-st-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const file = (name = 'model.safetensors') => join(tmp, `${seq++}-${name}`);

/** Float32 from a bit pattern. */
const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function layoutOf(specs: [string, number[]][]): TensorInfo[] {
  let offset = 0;
  return specs.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = { name, shape, offset, size };
    offset += size;
    return t;
  });
}
const total = (l: TensorInfo[]) => l.reduce((a, t) => a + t.size, 0);

/**
 * A safetensors file written by hand, independently of writeSafetensors: raw little-endian bytes per tensor.
 * `header` may override the JSON text, for corrupt-file tests.
 */
function writeRaw(
  path: string,
  tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[],
  header?: string,
) {
  const h: Record<string, unknown> = {};
  let off = 0;
  for (const t of tensors) {
    h[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  const hb = Buffer.from(header ?? JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  writeFileSync(path, Buffer.concat([len, hb, ...tensors.map((t) => Buffer.from(t.bytes))]));
}
const u16bytes = (xs: number[]) => new Uint8Array(new Uint16Array(xs).buffer);

function expectAha(fn: () => void, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AhaError, `expected AhaError, got ${e}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'message must be one line');
    return true;
  });
}

// Edge values: ±0, ±1, ±inf, NaN, largest/smallest normals, subnormals, and random finite values.
function edgeValues(): Float32Array {
  const bits = [
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00001, 0x7f7fffff,
    0x00800000, 0x00000001, 0x007fffff, 0x80000001, 0x3f808000, 0x3f818000, 0x477fe000,
  ];
  const a = new Float32Array(bits.length + 1000);
  new Uint32Array(a.buffer).set(bits);
  let s = 12345;
  for (let i = bits.length; i < a.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 2 ** ((i % 40) - 20);
  }
  return a;
}

test('F32 round trip is bit-exact; header is sorted, padded to 8 bytes, with format pt metadata', () => {
  const vals = edgeValues();
  const layout = layoutOf([
    ['b.weight', [4, 254]],
    ['a.bias', [3]],
    ['10.x', [2, 2, 1]],
    ['c', []],
  ]);
  const params = new Float32Array(total(layout));
  params.set(vals.subarray(0, params.length));
  const p = file();
  writeSafetensors(
    p,
    layout.map((t) => ({ name: t.name, shape: t.shape, data: params.subarray(t.offset, t.offset + t.size) })),
    { metadata: { step: '7' } },
  );
  const raw = readFileSync(p);
  const n = Number(raw.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
  const text = raw.subarray(8, 8 + n).toString();
  assert.match(text, /^\{"__metadata__":\{"format":"pt","step":"7"\},"10\.x":/);
  assert.match(text, /\}\s*$/);
  const h = readSafetensorsHeader(p);
  assert.deepEqual([...h.tensors.keys()], ['10.x', 'a.bias', 'b.weight', 'c']);
  assert.deepEqual(h.tensors.get('a.bias'), { name: 'a.bias', dtype: 'F32', shape: [3], dataOffsets: [16, 28] });
  assert.deepEqual(h.tensors.get('c')!.shape, []);
  assert.deepEqual(h.metadata, { format: 'pt', step: '7' });
  assert.equal(h.fileSize, raw.length);
  assert.equal(h.dataStart + 4 * params.length, raw.length);

  const back = new Float32Array(params.length).fill(NaN);
  readSafetensorsInto([p], layout, back, 'test');
  assert.deepEqual(bitsOf(back), bitsOf(params));
});

test('BF16 write rounds to nearest even, hand-computed bit patterns', () => {
  const cases: [number, number][] = [
    [0x3f800000, 0x3f80], // 1.0
    [0xc0200000, 0xc020], // -2.5
    [0x477fe000, 0x4780], // 65504 rounds up to 65536
    [0x3f808000, 0x3f80], // 1 + 2^-8: tie, keep even
    [0x3f818000, 0x3f82], // 1 + 3*2^-8: tie, round up to even
    [0x3f808001, 0x3f81], // just above the tie
    [0x3f807fff, 0x3f80], // just below the tie
    [0xbf818000, 0xbf82], // negative tie
    [0x7f7fffff, 0x7f80], // FLT_MAX overflows to +inf
    [0x7f800000, 0x7f80], // +inf
    [0xff800000, 0xff80], // -inf
    [0x80000000, 0x8000], // -0
    [0x00000001, 0x0000], // smallest subnormal underflows to 0
    [0x00018000, 0x0002], // subnormal tie, odd -> even up
    [0x00008000, 0x0000], // subnormal tie, even stays
    [0x007fffff, 0x0080], // largest subnormal rounds up to the smallest normal
    [0x7fc00000, 0x7fc0], // NaN
    [0xffa00001, 0x7fc0], // negative signalling NaN -> canonical NaN, as torch
    [0x7f800001, 0x7fc0], // NaN with low payload must not become inf
  ];
  const src = new Float32Array(new Uint32Array(cases.map((c) => c[0])).buffer);
  assert.deepEqual(
    Array.from(float32ToBfloat16Bits(src)),
    cases.map((c) => c[1]),
  );

  const p = file();
  const layout = layoutOf([['w', [cases.length]]]);
  writeSafetensors(p, [{ name: 'w', shape: [cases.length], data: src }], { dtype: 'BF16' });
  const h = readSafetensorsHeader(p);
  assert.equal(h.tensors.get('w')!.dtype, 'BF16');
  const onDisk = new Uint16Array(
    readFileSync(p)
      .subarray(h.dataStart)
      .buffer.slice(readFileSync(p).byteOffset + h.dataStart),
  );
  assert.deepEqual(
    Array.from(onDisk).slice(0, cases.length),
    cases.map((c) => c[1]),
  );
  const back = new Float32Array(cases.length);
  readSafetensorsInto([p], layout, back, 'test');
  assert.deepEqual(
    bitsOf(back),
    cases.map((c) => (c[1] << 16) >>> 0),
  );
});

test('F16 read: hand-computed values incl. subnormals, inf, NaN', () => {
  const cases: [number, number][] = [
    [0x3c00, 1.0],
    [0xc100, -2.5],
    [0x7bff, 65504],
    [0x0001, 2 ** -24], // smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0400, 2 ** -14], // smallest normal
    [0x3555, 0.333251953125],
    [0x8000, -0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x7e00, NaN],
  ];
  const p = file();
  writeRaw(p, [{ name: 'h', dtype: 'F16', shape: [cases.length], bytes: u16bytes(cases.map((c) => c[0])) }]);
  const out = new Float32Array(cases.length);
  readSafetensorsInto([p], layoutOf([['h', [cases.length]]]), out, 'test');
  cases.forEach(([, v], i) => assert.ok(Object.is(out[i], v), `0x${cases[i][0].toString(16)}: ${out[i]} vs ${v}`));
});

test('BF16 and F64 read: exact widening and round-to-nearest-even narrowing', () => {
  const p = file();
  const bf = [0x3f80, 0xc020, 0x0001, 0x7f80, 0x8000, 0x4049];
  const f64 = [0.1, 1 + 2 ** -24, 1 + 3 * 2 ** -24, 1e300, -1e-50, 3.141592653589793];
  writeRaw(p, [
    { name: 'bf', dtype: 'BF16', shape: [2, 3], bytes: u16bytes(bf) },
    { name: 'd', dtype: 'F64', shape: [6], bytes: new Uint8Array(new Float64Array(f64).buffer) },
  ]);
  const layout = layoutOf([
    ['d', [6]],
    ['bf', [2, 3]],
  ]);
  const out = new Float32Array(12);
  readSafetensorsInto([p], layout, out, 'test');
  assert.deepEqual(
    bitsOf(out.subarray(6)),
    bf.map((b) => (b << 16) >>> 0),
  );
  assert.equal(out[6 + 5], 3.140625);
  assert.equal(out[0], Math.fround(0.1));
  assert.equal(out[1], 1); // exact tie between 1 and 1+2^-23: even
  assert.equal(out[2], 1 + 2 ** -22); // tie between 1+2^-23 and 1+2^-22: even
  assert.equal(out[3], Infinity);
  assert.ok(Object.is(out[4], -0));
  assert.equal(out[5], f32(0x40490fdb));
});

test('large tensors are converted across read-chunk boundaries', () => {
  const n = 5_000_003; // 10 MB of BF16, more than one 8 MiB chunk, odd length
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = (i % 1000) - 500 + (i % 7) / 8;
  const p = file();
  writeSafetensors(p, [{ name: 'big', shape: [n], data: src }], { dtype: 'BF16' });
  const out = new Float32Array(n + 2);
  out[0] = 42;
  readSafetensorsInto([p], [{ name: 'big', shape: [n], offset: 1, size: n }], out, 'test');
  assert.equal(out[0], 42);
  const want = float32ToBfloat16Bits(src);
  const got = new Uint32Array(out.buffer, 4, n);
  for (let i = 0; i < n; i++)
    if (got[i] !== (want[i] << 16) >>> 0) assert.fail(`element ${i}: ${got[i]} vs ${(want[i] << 16) >>> 0}`);
});

test('sharded checkpoints via model.safetensors.index.json', () => {
  const dir = mkdtempSync(join(tmp, 'sharded-'));
  const layout = layoutOf([
    ['model.embed_tokens.weight', [4, 3]],
    ['model.norm.weight', [3]],
    ['lm_head.weight', [4, 3]],
  ]);
  const params = Float32Array.from({ length: total(layout) }, (_, i) => i * 0.25 - 3);
  const t = (name: string) => {
    const info = layout.find((x) => x.name === name)!;
    return { name, shape: info.shape, data: params.subarray(info.offset, info.offset + info.size) };
  };
  writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [
    t('model.embed_tokens.weight'),
    t('model.norm.weight'),
  ]);
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [t('lm_head.weight')], { dtype: 'F32' });
  const index = {
    metadata: { total_size: params.length * 4 },
    weight_map: {
      'lm_head.weight': 'model-00002-of-00002.safetensors',
      'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
      'model.norm.weight': 'model-00001-of-00002.safetensors',
    },
  };
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
  const files = findSafetensorsFiles(dir);
  assert.deepEqual(files, [
    join(dir, 'model-00002-of-00002.safetensors'),
    join(dir, 'model-00001-of-00002.safetensors'),
  ]);
  const out = new Float32Array(params.length);
  readSafetensorsInto(files, layout, out, dir);
  assert.deepEqual(bitsOf(out), bitsOf(params));

  // Index pointing a tensor at the wrong shard, or at a missing shard.
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({
      weight_map: { ...index.weight_map, 'lm_head.weight': 'model-00001-of-00002.safetensors' },
    }),
  );
  expectAha(
    () => findSafetensorsFiles(dir),
    /index puts tensor lm_head\.weight in .*model-00001-of-00002\.safetensors, which does not contain it/,
  );
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({
      weight_map: { ...index.weight_map, 'lm_head.weight': 'model-00003-of-00003.safetensors' },
    }),
  );
  expectAha(
    () => findSafetensorsFiles(dir),
    /model\.safetensors\.index\.json: shard .*model-00003-of-00003\.safetensors is missing/,
  );
  writeFileSync(join(dir, 'model.safetensors.index.json'), '{"weight_map": [');
  expectAha(() => findSafetensorsFiles(dir), /model\.safetensors\.index\.json: cannot read index/);
  // A tensor present in two shards is ambiguous.
  expectAha(
    () =>
      readSafetensorsInto(
        [join(dir, 'model-00001-of-00002.safetensors'), join(dir, 'model-00001-of-00002.safetensors')],
        layout,
        out,
        'm',
      ),
    /^m: tensor model\.embed_tokens\.weight appears in both/,
  );
  const empty = mkdtempSync(join(tmp, 'empty-'));
  writeFileSync(join(empty, 'pytorch_model.bin'), '');
  expectAha(
    () => findSafetensorsFiles(empty),
    /no model\.safetensors or model\.safetensors\.index\.json \(pytorch_model\.bin is not supported/,
  );
});

test('errors: truncated file, wrong shape, missing tensor, header garbage, unsupported dtype', () => {
  const layout = layoutOf([
    ['a', [2, 3]],
    ['b', [4]],
  ]);
  const params = Float32Array.from({ length: 10 }, (_, i) => i);
  const good = file();
  writeSafetensors(good, [
    { name: 'a', shape: [2, 3], data: params.subarray(0, 6) },
    { name: 'b', shape: [4], data: params.subarray(6) },
  ]);
  const out = new Float32Array(10);

  const cut = file('cut.safetensors');
  writeFileSync(cut, readFileSync(good).subarray(0, readFileSync(good).length - 3));
  expectAha(
    () => readSafetensorsInto([cut], layout, out, 'm'),
    /cut\.safetensors: truncated file \(tensor b data_offsets end 40 is past the end of the data section, 37 bytes\)/,
  );
  truncateSync(cut, 20);
  expectAha(
    () => readSafetensorsHeader(cut),
    /cut\.safetensors: truncated file \(header needs \d+ bytes, file has 12 after the length\)/,
  );
  truncateSync(cut, 5);
  expectAha(() => readSafetensorsHeader(cut), /cut\.safetensors: truncated file \(5 bytes/);
  expectAha(() => readSafetensorsHeader(join(tmp, 'nope.safetensors')), /nope\.safetensors: cannot open \(ENOENT\)/);

  expectAha(
    () =>
      readSafetensorsInto(
        [good],
        layoutOf([
          ['a', [3, 2]],
          ['b', [4]],
        ]),
        out,
        'm',
      ),
    /safetensors: tensor a has shape \[2, 3\], expected \[3, 2\]$/,
  );
  expectAha(
    () =>
      readSafetensorsInto(
        [good],
        layoutOf([
          ['a', [2, 3]],
          ['b', [4]],
          ['c', [1]],
          ['d', [1]],
        ]),
        new Float32Array(12),
        'm',
      ),
    /^m: missing tensor c, d$/,
  );
  expectAha(
    () => readSafetensorsInto([good], layoutOf([['a', [2, 3]]]), out, 'm'),
    /^m: unexpected tensor b \(not in the model layout/,
  );

  const garbage = file('garbage.safetensors');
  writeRaw(garbage, [], '{"a": {"dtype": "F32", ');
  expectAha(() => readSafetensorsHeader(garbage), /garbage\.safetensors: bad safetensors header JSON \(/);
  writeRaw(garbage, [], '[1, 2, 3]');
  expectAha(() => readSafetensorsHeader(garbage), /garbage\.safetensors: bad safetensors header \(not a JSON object\)/);
  writeFileSync(garbage, Buffer.from('GIF89a this is not a safetensors file at all'));
  expectAha(
    () => readSafetensorsHeader(garbage),
    /garbage\.safetensors: not a safetensors file \(header length \d+ exceeds/,
  );
  writeRaw(garbage, [], '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}');
  expectAha(() => readSafetensorsHeader(garbage), /tensor a: data_offsets span 4 bytes but F32 \[2\] needs 8/);
  writeRaw(garbage, [], '{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}');
  expectAha(() => readSafetensorsHeader(garbage), /tensor a: shape must be a list of non-negative integers/);
  writeRaw(garbage, [], '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}');
  expectAha(() => readSafetensorsHeader(garbage), /tensor a: data_offsets must be \[begin, end\]/);
  writeRaw(garbage, [], '{"__metadata__": {"format": 1}}');
  expectAha(() => readSafetensorsHeader(garbage), /__metadata__ must map strings to strings/);

  const ints = file('ints.safetensors');
  writeRaw(ints, [
    { name: 'a', dtype: 'I8', shape: [2, 3], bytes: new Uint8Array(6) },
    { name: 'b', dtype: 'F32', shape: [4], bytes: new Uint8Array(16) },
  ]);
  expectAha(
    () => readSafetensorsInto([ints], layout, out, 'm'),
    /ints\.safetensors: tensor a has unsupported dtype I8 \(supported: F32, BF16, F16, F64\)/,
  );
});

test('extra tensors: rotary inv_freq ignored, tied lm_head accepted only if identical', () => {
  const layout = layoutOf([
    ['model.embed_tokens.weight', [3, 2]],
    ['model.norm.weight', [2]],
  ]);
  const emb = Float32Array.from([1, 2, 3, 4, 5, -0]);
  const norm = Float32Array.from([1, 1]);
  const p = file();
  const write = (lm: Float32Array, dtype: 'F32' | 'BF16' = 'F32') =>
    writeSafetensors(
      p,
      [
        { name: 'model.embed_tokens.weight', shape: [3, 2], data: emb },
        { name: 'model.norm.weight', shape: [2], data: norm },
        { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', shape: [1], data: Float32Array.from([1]) },
        { name: 'lm_head.weight', shape: [3, 2], data: lm },
      ],
      { dtype },
    );
  const out = new Float32Array(8);
  write(emb.slice());
  readSafetensorsInto([p], layout, out, 'm');
  assert.deepEqual(Array.from(out), [1, 2, 3, 4, 5, -0, 1, 1]);
  write(emb.slice(), 'BF16');
  readSafetensorsInto([p], layout, out, 'm');
  write(Float32Array.from([1, 2, 3, 4, 5, 0])); // +0 vs -0: stored differently, so not the same tensor
  expectAha(
    () => readSafetensorsInto([p], layout, out, 'm'),
    /lm_head\.weight differs from model\.embed_tokens\.weight but config\.json ties them/,
  );
  write(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]).subarray(0, 6));
  expectAha(() => readSafetensorsInto([p], layout, out, 'm'), /lm_head\.weight differs/);
});

const PY = '/usr/bin/python3';
const hasNumpy = existsSync(PY) && spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

// A reader and a writer of the format in Python with json + struct + numpy only (the header rules of the spec).
const PY_LIB = `
import json, struct, sys, numpy as np
def read(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    assert (8 + n) % 8 == 0, 'header not 8-aligned'
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0] if kv[0] != '__metadata__' else -1):
        if name == '__metadata__':
            continue
        b, t = e['data_offsets']
        assert b == end, 'tensors must be contiguous'
        end = t
        dt = {'F32': '<u4', 'BF16': '<u2'}[e['dtype']]
        out[name] = (e['dtype'], e['shape'], np.frombuffer(data[b:t], dtype=dt).reshape(e['shape']))
    assert end == len(data), 'trailing bytes'
    return header.get('__metadata__'), out
def write(path, tensors):
    header, blobs, off = {'__metadata__': {'format': 'pt'}}, [], 0
    for name, dtype, arr in tensors:
        b = arr.tobytes()
        header[name] = {'dtype': dtype, 'shape': list(arr.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
`;

test(
  'interop: python reads the files we write, we read the files python writes',
  { skip: hasNumpy ? false : 'no numpy in /usr/bin/python3' },
  () => {
    const vals = edgeValues();
    const ours = file('ours.safetensors');
    const oursBf = file('ours-bf16.safetensors');
    const tensors = [
      { name: 'model.layers.0.mlp.up_proj.weight', shape: [10, 100], data: vals.subarray(0, 1000) },
      { name: 'model.norm.weight', shape: [16], data: vals.subarray(1000, 1016) },
    ];
    writeSafetensors(ours, tensors);
    writeSafetensors(oursBf, tensors, { dtype: 'BF16' });
    const theirs = file('theirs.safetensors');
    // Python re-emits what it read as bit patterns, and writes F32/F16/F64 tensors (BF16 too, via torch if present).
    const script = `${PY_LIB}
meta, t = read(sys.argv[1])
_, tb = read(sys.argv[2])
res = {'meta': meta, 'f32': {k: [v[0], v[1], v[2].ravel().tolist()] for k, v in t.items()},
       'bf16': {k: [v[0], v[1], v[2].ravel().tolist()] for k, v in tb.items()}}
x = (np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 11.5) / 3
out = [('x.f32', 'F32', x.astype('<f4')), ('x.f16', 'F16', x.astype('<f2')), ('x.f64', 'F64', x.astype('<f8'))]
try:
    import torch
except ImportError:
    torch = None
res['has_torch'] = torch is not None
if torch is not None:
    out.append(('x.bf16', 'BF16', torch.tensor(x, dtype=torch.float32).to(torch.bfloat16).view(torch.int16).numpy().astype('<i2')))
    # torch's own float32 -> bfloat16 rounding, as the reference for ours
    f = torch.tensor(np.frombuffer(np.array(t['model.layers.0.mlp.up_proj.weight'][2]).astype('<u4').tobytes(), dtype='<f4').copy())
    res['torch_bf16'] = f.to(torch.bfloat16).view(torch.int16).numpy().astype('<u2').tolist()
write(sys.argv[3], out)
res['expect'] = {'x.f32': x.astype('<f4').view('<u4').ravel().tolist(),
                 'x.f16': x.astype('<f2').astype('<f4').view('<u4').ravel().tolist(),
                 'x.f64': x.astype('<f4').view('<u4').ravel().tolist()}
if 'x.bf16' in dict((n, 1) for n, _, _ in out):
    res['expect']['x.bf16'] = (torch.tensor(x, dtype=torch.float32).to(torch.bfloat16).to(torch.float32).numpy().view('<u4').ravel().tolist())
print(json.dumps(res))
`;
    const r = spawnSync(PY, ['-c', script, ours, oursBf, theirs], { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.deepEqual(res.meta, { format: 'pt' });
    for (const t of tensors) {
      assert.deepEqual(res.f32[t.name].slice(0, 2), ['F32', t.shape]);
      assert.deepEqual(res.f32[t.name][2], bitsOf(t.data));
      assert.deepEqual(res.bf16[t.name].slice(0, 2), ['BF16', t.shape]);
      assert.deepEqual(res.bf16[t.name][2], Array.from(float32ToBfloat16Bits(t.data)));
    }
    if (res.has_torch) {
      // NaNs aside (torch's scalar path gives 0x7FC0, its AVX path 0xFFFF), our rounding is torch's.
      const isNan = (i: number) => Number.isNaN(tensors[0].data[i]);
      const mask = (xs: number[]) => xs.map((x, i) => (isNan(i) ? -1 : x));
      assert.deepEqual(mask(res.torch_bf16), mask(Array.from(float32ToBfloat16Bits(tensors[0].data))));
      assert.ok(res.torch_bf16.some((_: number, i: number) => !isNan(i) && i >= 16)); // random values compared
    }

    const names = Object.keys(res.expect);
    const layout = layoutOf(names.map((n) => [n, [2, 3, 4]]));
    const out = new Float32Array(total(layout));
    readSafetensorsInto([theirs], layout, out, 'python');
    names.forEach((n, k) => assert.deepEqual(bitsOf(out.subarray(24 * k, 24 * (k + 1))), res.expect[n], n));
  },
);
