/**
 * Hostile programs: each is contained and gets the right verdict, the test process carries on, and nothing of a
 * run is left (no process, no file).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { judge } from '../../src/judge/judge.ts';
import { JudgePool } from '../../src/judge/pool.ts';
import { probeSandbox, slotUid } from '../../src/judge/sandbox.ts';
import type { Language, Limits, TestCase } from '../../src/judge/types.ts';
import { AhaError } from '../../src/errors.ts';
import { processesOfUids, processesWith, workRoot } from './support.ts';

const root = workRoot();
const planted = mkdtempSync(join(tmpdir(), 'aha-planted-'));
after(() => {
  assert.deepEqual(readdirSync(root), [], 'every run directory is deleted');
  rmSync(root, { recursive: true, force: true });
  rmSync(planted, { recursive: true, force: true });
});
const pool = new JudgePool(2);
const sealed: TestCase[] = [{ kind: 'io', stdin: '', stdout: 'sealed' }];
const run = (language: Language, program: string, limits: Partial<Limits> = {}, tests = sealed) =>
  judge({ language, program, tests }, { pool, workRoot: root, limits });
const noSandboxProcesses = () => assert.deepEqual(processesOfUids(slotUid(0), slotUid(255)), []);

test('an infinite loop is a time_limit (Python, JavaScript, C++)', async () => {
  assert.equal((await run('python', 'while True: pass', { timeoutS: 1 })).verdict, 'time_limit');
  assert.equal((await run('javascript', 'for (;;) {}', { timeoutS: 1 })).verdict, 'time_limit');
  assert.equal(
    (await run('cpp', 'int main() { volatile int x = 0; for (;;) x++; }', { timeoutS: 1 })).verdict,
    'time_limit',
  );
  noSandboxProcesses();
});

test('a fork bomb hits the process limit, is killed at the time limit, and leaves no process', async () => {
  const marker = `aha-forkbomb-${process.pid}`;
  const bomb = `import os, sys\nsys.argv.append('${marker}')\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass`;
  const r = await run('python', bomb, { timeoutS: 2 });
  assert.equal(r.verdict, 'time_limit');
  noSandboxProcesses();
  assert.deepEqual(processesWith(marker), []);
  const bash = await run('python', "import os\nos.execv('/bin/sh', ['sh', '-c', ':(){ :|:& };:'])", { timeoutS: 2 });
  assert.notEqual(bash.verdict, 'accepted');
  noSandboxProcesses();
});

test('memory bombs are memory_limit (Python, JavaScript, C++)', async () => {
  const limits = { memoryMb: 256, timeoutS: 10 };
  assert.equal(
    (await run('python', 'a = []\nwhile True: a.append(bytearray(1 << 26))', limits)).verdict,
    'memory_limit',
  );
  const js = await run('javascript', 'const a = [];\nfor (;;) a.push(new Array(1e6).fill(1.5));', limits);
  assert.equal(js.verdict, 'memory_limit');
  const cpp =
    '#include <vector>\nint main() { std::vector<std::vector<char>> v; for (;;) v.emplace_back(1 << 26, 1); }';
  assert.equal((await run('cpp', cpp, limits)).verdict, 'memory_limit');
});

test('printing 1 GB is cut at the output cap: output_limit, quickly', async () => {
  const r = await run('python', "import sys\nb = 'x' * (1 << 20)\nfor _ in range(1024): sys.stdout.write(b)", {
    maxOutputBytes: 1 << 20,
    timeoutS: 20,
  });
  assert.equal(r.verdict, 'output_limit');
  const err = await run('python', "import sys\nb = 'x' * (1 << 20)\nfor _ in range(1024): sys.stderr.write(b)", {
    maxOutputBytes: 1 << 20,
    timeoutS: 20,
  });
  assert.equal(err.verdict, 'output_limit');
  noSandboxProcesses();
});

test('no network: a server listening on 127.0.0.1 cannot be reached', async () => {
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    s.end('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const program = [
      'import socket',
      'try:',
      `    s = socket.create_connection(('127.0.0.1', ${port}), timeout=2)`,
      "    print('connected', s.recv(10))",
      'except OSError:',
      "    print('sealed')",
    ].join('\n');
    assert.equal((await run('python', program)).verdict, 'accepted');
    const js = `const s = require('net').connect(${port}, '127.0.0.1', () => console.log('connected'));\ns.on('error', () => console.log('sealed'));`;
    assert.equal((await run('javascript', js)).verdict, 'accepted');
    assert.equal(connections, 0);
  } finally {
    server.close();
  }
});

test('files outside the sandbox cannot be read: a planted file, the project, /root, /etc/shadow', async () => {
  const secret = join(planted, 'secret.txt');
  writeFileSync(secret, 'planted-secret');
  chmodSync(planted, 0o755);
  chmodSync(secret, 0o644);
  const paths = [secret, resolve('package.json'), '/root/.bashrc', '/etc/shadow', '/etc/passwd', '/work', '/home'];
  const program = [
    'import os',
    `paths = ${JSON.stringify(paths)}`,
    'seen = []',
    'for p in paths:',
    '    try:',
    '        seen.append(p + ": " + (open(p).read(20) if os.path.isfile(p) else str(os.listdir(p))))',
    '    except OSError:',
    '        pass',
    "print('\\n'.join(seen) if seen else 'sealed')",
  ].join('\n');
  const r = await run('python', program);
  assert.equal(r.verdict, 'accepted', 'no path was readable');
});

test("the parent's environment does not leak", async () => {
  process.env.AHA_PLANTED_SECRET = 'env-secret-31337';
  try {
    const program = [
      'import os, glob',
      'blobs = [repr(dict(os.environ))]',
      "for p in glob.glob('/proc/*/environ'):",
      '    try:',
      "        blobs.append(open(p, 'rb').read().decode(errors='replace'))",
      '    except OSError:',
      '        pass',
      "print('leak' if any('env-secret-31337' in b or 'AHA_PLANTED' in b for b in blobs) else 'sealed')",
    ].join('\n');
    assert.equal((await run('python', program)).verdict, 'accepted');
    const js = "console.log(JSON.stringify(process.env).includes('env-secret-31337') ? 'leak' : 'sealed')";
    assert.equal((await run('javascript', js)).verdict, 'accepted');
  } finally {
    delete process.env.AHA_PLANTED_SECRET;
  }
});

test('writes outside its own directory fail, and the run leaves no file behind', async () => {
  const targets = [
    join(planted, 'written'),
    resolve('written-by-sandbox'),
    '/usr/written',
    '/written',
    '/sandbox/written',
  ];
  const program = [
    `targets = ${JSON.stringify(targets)}`,
    'ok = []',
    'for t in targets:',
    '    try:',
    "        open(t, 'w').write('x')",
    '        ok.append(t)',
    '    except OSError:',
    '        pass',
    "open('/tmp/mine', 'w').write('own scratch space is writable')",
    "print(ok if ok else 'sealed')",
  ].join('\n');
  assert.equal((await run('python', program)).verdict, 'accepted');
  for (const t of targets) assert.equal(existsSync(t), false, t);
  assert.deepEqual(readdirSync(root), []);
});

test('a background child left running is gone when the run ends', async () => {
  const marker = `aha-orphan-${process.pid}`;
  const program = [
    'import subprocess, os',
    `subprocess.Popen(['/usr/bin/python3', '-c', 'import time; time.sleep(300)', '${marker}'], start_new_session=True)`,
    'if os.fork() == 0:',
    '    os.setsid()',
    `    os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(300)', '${marker}-2'])`,
    "print('sealed')",
  ].join('\n');
  assert.equal((await run('python', program)).verdict, 'accepted');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(processesWith(marker), []);
  noSandboxProcesses();
});

test('signals to the parent, its group and every process reach nothing outside the sandbox', async () => {
  const program = [
    'import os, signal',
    `for target in [${process.pid}, ${process.ppid}, os.getppid(), 1, -1, -${process.pid}]:`,
    '    for sig in [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]:',
    '        try:',
    '            os.kill(target, sig)',
    '        except OSError:',
    '            pass',
    "print('sealed')",
  ].join('\n');
  const r = await run('python', program);
  assert.ok(['accepted', 'runtime_error'].includes(r.verdict), r.verdict);
  const after = await run('python', "print('sealed')");
  assert.equal(after.verdict, 'accepted', 'this process and the pool carry on');
});

test('without bubblewrap, or when it cannot create namespaces, the judge refuses in one line', async () => {
  await assert.rejects(probeSandbox(null), (e: unknown) => {
    assert.ok(e instanceof AhaError);
    assert.match(e.message, /needs bubblewrap, which is not installed.*refusing to run model-written code/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  const fake = join(planted, 'bwrap');
  writeFileSync(fake, '#!/bin/sh\necho "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n');
  chmodSync(fake, 0o755);
  await assert.rejects(probeSandbox(fake), /does not work here .*uid map: Permission denied; refusing/);
});
