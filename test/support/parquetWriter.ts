import { writeFileSync } from 'node:fs';

/**
 * A minimal Parquet writer (hyparquet-writer is not a dependency): one row group, one uncompressed PLAIN data page
 * per column, REQUIRED columns of UTF-8 strings or INT64, metadata in Thrift's compact protocol. Just enough of the
 * format (github.com/apache/parquet-format, parquet.thrift) to give the reader a real file.
 */
class Compact {
  bytes: number[] = [];
  private last: number[] = [0];
  varint(n: bigint | number): void {
    let v = BigInt(n);
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  zigzag(n: number | bigint): void {
    const v = BigInt(n);
    this.varint(v >= 0n ? v * 2n : -v * 2n - 1n);
  }
  field(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1];
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.last[this.last.length - 1] = id;
  }
  i32(id: number, v: number): void {
    this.field(id, 5);
    this.zigzag(v);
  }
  i64(id: number, v: number): void {
    this.field(id, 6);
    this.zigzag(v);
  }
  binary(id: number, s: string): void {
    this.field(id, 8);
    this.rawString(s);
  }
  rawString(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.varint(b.length);
    this.bytes.push(...b);
  }
  list(id: number, elemType: number, n: number): void {
    this.field(id, 9);
    if (n < 15) this.bytes.push((n << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(n);
    }
  }
  begin(id?: number): void {
    if (id !== undefined) this.field(id, 12);
    this.last.push(0);
  }
  end(): void {
    this.bytes.push(0);
    this.last.pop();
  }
}

export type Column = { name: string; values: string[] } | { name: string; values: number[]; int64: true };

export function writeParquet(path: string, columns: Column[]): void {
  const numRows = columns[0].values.length;
  const chunks: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const metas: { name: string; type: number; pageOffset: number; size: number }[] = [];
  for (const col of columns) {
    const int64 = 'int64' in col;
    const data = int64
      ? Buffer.concat(
          (col.values as number[]).map((v) => {
            const b = Buffer.alloc(8);
            b.writeBigInt64LE(BigInt(v));
            return b;
          }),
        )
      : Buffer.concat(
          (col.values as string[]).map((s) => {
            const b = Buffer.from(s, 'utf8');
            const l = Buffer.alloc(4);
            l.writeUInt32LE(b.length);
            return Buffer.concat([l, b]);
          }),
        );
    const h = new Compact();
    h.begin();
    h.i32(1, 0); // DATA_PAGE
    h.i32(2, data.length);
    h.i32(3, data.length);
    h.begin(5); // DataPageHeader
    h.i32(1, numRows);
    h.i32(2, 0); // PLAIN
    h.i32(3, 3); // RLE
    h.i32(4, 3);
    h.end();
    h.end();
    const page = Buffer.concat([Buffer.from(h.bytes), data]);
    metas.push({ name: col.name, type: int64 ? 2 : 6, pageOffset: offset, size: page.length });
    chunks.push(page);
    offset += page.length;
  }
  const m = new Compact();
  m.begin();
  m.i32(1, 1);
  m.list(2, 12, columns.length + 1);
  m.begin(); // root
  m.binary(4, 'schema');
  m.i32(5, columns.length);
  m.end();
  for (const c of metas) {
    m.begin();
    m.i32(1, c.type);
    m.i32(3, 0); // REQUIRED
    m.binary(4, c.name);
    if (c.type === 6) m.i32(6, 0); // UTF8
    m.end();
  }
  m.i64(3, numRows);
  m.list(4, 12, 1);
  m.begin(); // RowGroup
  m.list(1, 12, metas.length);
  for (const c of metas) {
    m.begin(); // ColumnChunk
    m.i64(2, c.pageOffset);
    m.begin(3); // ColumnMetaData
    m.i32(1, c.type);
    m.list(2, 5, 1);
    m.zigzag(0);
    m.list(3, 8, 1);
    m.rawString(c.name);
    m.i32(4, 0); // UNCOMPRESSED
    m.i64(5, numRows);
    m.i64(6, c.size);
    m.i64(7, c.size);
    m.i64(9, c.pageOffset);
    m.end();
    m.end();
  }
  m.i64(
    2,
    metas.reduce((a, c) => a + c.size, 0),
  );
  m.i64(3, numRows);
  m.end();
  m.end();
  const meta = Buffer.from(m.bytes);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(meta.length);
  chunks.push(meta, len, Buffer.from('PAR1'));
  writeFileSync(path, Buffer.concat(chunks));
}
