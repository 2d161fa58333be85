import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { AhaError } from '../../src/errors.ts';
import type { Benchmark } from '../../src/eval/benchmarks.ts';
import { runEval } from '../../src/eval/evalRun.ts';
import {
  chooseServerModel,
  formatRetry,
  OpenAiGenerator,
  openAiBase,
  probeServer,
  sampleSeed,
  type RetryNotice,
} from '../../src/eval/generators.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-oai-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Reply = { status?: number; body?: unknown; delayMs?: number; headers?: Record<string, string> };
type Handler = (
  req: { url: string; body: Record<string, unknown>; headers: IncomingMessage['headers'] },
  count: number,
) => Reply;

/** A stub OpenAI-compatible server on 127.0.0.1 (random port); `handler` scripts each answer. */
async function stubServer(
  handler: Handler,
): Promise<{ url: string; requests: Record<string, unknown>[]; server: Server; close: () => Promise<void> }> {
  const requests: Record<string, unknown>[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const body = (data === '' ? {} : JSON.parse(data)) as Record<string, unknown>;
      requests.push(body);
      const r = handler({ url: req.url ?? '', body, headers: req.headers }, requests.length);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...r.headers });
        res.end(typeof r.body === 'string' ? r.body : JSON.stringify(r.body ?? {}));
      };
      if (r.delayMs) setTimeout(send, r.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The completion a correct server gives: "\boxed{a+b}" for a prompt "a+b". */
function solve(prompt: string): string {
  const m = /(\d+)\+(\d+)/.exec(prompt)!;
  return `\\boxed{${Number(m[1]) + Number(m[2])}}`;
}
const completion = (text: string, n = 1, tokens = 7) => ({
  choices: Array.from({ length: n }, (_, i) => ({ index: i, text, finish_reason: 'stop' })),
  usage: { completion_tokens: tokens * n },
});
const sampling = { n: 1, temperature: 0.6, topP: 0.95, maxNewTokens: 50, seed: 0 };

describe('OpenAI-compatible generator', () => {
  it('normalises the base URL', () => {
    assert.equal(openAiBase('http://127.0.0.1:8000'), 'http://127.0.0.1:8000/v1');
    assert.equal(openAiBase('http://127.0.0.1:8000/v1/'), 'http://127.0.0.1:8000/v1');
    assert.throws(() => openAiBase('localhost:8000'), AhaError);
  });

  it('retries 500s and timeouts with backoff, then returns the right samples in order', async () => {
    const attempts = new Map<string, number>();
    const srv = await stubServer(({ url, body }) => {
      assert.equal(url, '/v1/completions');
      const key = `${body.prompt}#${body.seed}`;
      const a = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, a);
      // First attempt of every request: HTTP 500. Second attempt for "1+1": too slow (past the timeout).
      if (a === 1) return { status: 500, body: { error: 'overloaded' } };
      if (a === 2 && String(body.prompt).includes('1+1')) return { delayMs: 1500, body: completion('late') };
      return { body: completion(solve(String(body.prompt))) };
    });
    try {
      const gen = new OpenAiGenerator({
        baseUrl: srv.url,
        model: 'm',
        endpoint: 'completions',
        concurrency: 3,
        timeoutMs: 300,
        backoffMs: 5,
        maxRetries: 3,
        apiKey: 'k',
      });
      const done: number[] = [];
      const out = await gen.generate(['1+1', '2+5', '3+4'], {
        ...sampling,
        n: 2,
        ids: ['a', 'b', 'c'],
        onPrompt: (i) => {
          done.push(i);
        },
      });
      assert.deepEqual(
        out.map((s) => s.map((x) => x.text)),
        [
          ['\\boxed{2}', '\\boxed{2}'],
          ['\\boxed{7}', '\\boxed{7}'],
          ['\\boxed{7}', '\\boxed{7}'],
        ],
      );
      assert.deepEqual(out[0][0], { text: '\\boxed{2}', tokens: 7, finishReason: 'stop' });
      assert.deepEqual([...done].sort(), [0, 1, 2]);
      // 6 requests (one per sample): 2 attempts each, 3 for the two "1+1" ones.
      assert.equal(srv.requests.length, 6 * 2 + 2);
      const first = srv.requests[0];
      assert.deepEqual(Object.keys(first).sort(), [
        'max_tokens',
        'model',
        'n',
        'prompt',
        'seed',
        'temperature',
        'top_p',
      ]);
      assert.deepEqual(
        [first.model, first.max_tokens, first.temperature, first.top_p, first.n],
        ['m', 50, 0.6, 0.95, 1],
      );
      const seeds = new Set(srv.requests.map((r) => `${r.prompt}#${r.seed}`));
      assert.ok(seeds.has(`1+1#${sampleSeed(0, 'a', 0)}`) && seeds.has(`1+1#${sampleSeed(0, 'a', 1)}`));
    } finally {
      await srv.close();
    }
  });

  it('chat endpoint: messages, n per request, 429 retried, reasoning_content rebuilt as <think>', async () => {
    let auth: string | undefined;
    const srv = await stubServer(({ url, body, headers }, count) => {
      assert.equal(url, '/v1/chat/completions');
      auth = headers.authorization;
      if (count === 1) return { status: 429, body: 'slow down' };
      const msgs = body.messages as { role: string; content: string }[];
      assert.deepEqual(
        msgs.map((m) => m.role),
        ['user'],
      );
      return {
        body: {
          choices: [
            {
              index: 1,
              message: { role: 'assistant', content: null, reasoning_content: 'still thinking' },
              finish_reason: 'length',
            },
            {
              index: 0,
              message: { role: 'assistant', content: solve(msgs[0].content), reasoning_content: 'easy' },
              finish_reason: 'stop',
            },
          ],
          usage: { completion_tokens: 30 },
        },
      };
    });
    try {
      const gen = new OpenAiGenerator({
        baseUrl: `${srv.url}/v1`,
        model: 'm',
        apiKey: 'sekret',
        nPerRequest: true,
        backoffMs: 5,
        countTokens: (t) => t.length,
      });
      const out = await gen.generate(['2+2'], { ...sampling, n: 2 });
      assert.equal(srv.requests.length, 2);
      assert.equal(srv.requests[1].n, 2);
      assert.equal(auth, 'Bearer sekret');
      assert.deepEqual(out[0], [
        {
          text: '<think>\neasy\n</think>\n\n\\boxed{4}',
          tokens: '<think>\neasy\n</think>\n\n\\boxed{4}'.length,
          finishReason: 'stop',
        },
        { text: '<think>\nstill thinking', tokens: '<think>\nstill thinking'.length, finishReason: 'length' },
      ]);
    } finally {
      await srv.close();
    }
  });

  it('a 4xx other than 429 fails at once, naming the server and the problem', async () => {
    const srv = await stubServer(() => ({ status: 400, body: { error: { message: 'max_tokens is too large' } } }));
    try {
      const gen = new OpenAiGenerator({ baseUrl: srv.url, model: 'm', endpoint: 'completions', backoffMs: 5 });
      await assert.rejects(gen.generate(['1+1'], { ...sampling, ids: ['prob-7'] }), (e: Error) => {
        assert.ok(e instanceof AhaError);
        assert.match(
          e.message,
          new RegExp(`^${srv.url}/v1/completions: problem prob-7: HTTP 400: .*max_tokens is too large`),
        );
        return true;
      });
      assert.equal(srv.requests.length, 1);
    } finally {
      await srv.close();
    }
  });
});

const bench: Benchmark = {
  name: 'adds',
  path: 'memory',
  examples: ['1+2', '2+2', '3+4', '5+5'].map((q, i) => ({
    id: `p${i}`,
    question: q,
    answer: String(eval(q)),
    meta: {},
    source: `t:${i}`,
  })),
};
const runOpts = {
  benchmark: bench,
  samples: 2,
  temperature: 0.6,
  topP: 0.95,
  maxNewTokens: 64,
  prompt: (q: string) => `Q: ${q}`,
};

describe('evaluation runs against a server', () => {
  it('a server that keeps failing: clear error after the retries, completed problems kept in the JSONL, resume asks only for the rest', async () => {
    let broken = true;
    const srv = await stubServer(({ body }) => {
      const prompt = String(body.prompt);
      if (broken && prompt.includes('3+4')) return { status: 503, body: 'down' };
      return { body: completion(solve(prompt)) };
    });
    const out = join(tmp, 'run1');
    const settings = { model: 'm', samples: 2 };
    try {
      const gen = new OpenAiGenerator({
        baseUrl: srv.url,
        model: 'm',
        endpoint: 'completions',
        concurrency: 1,
        backoffMs: 2,
        maxRetries: 2,
      });
      await assert.rejects(runEval({ ...runOpts, generator: gen, settings, out }), (e: Error) => {
        assert.ok(e instanceof AhaError);
        assert.equal(
          e.message,
          `${srv.url}/v1/completions: problem p2 sample 0: failed after 3 attempts; last error: HTTP 503: down`,
        );
        return true;
      });
      const file = join(out, 'adds.jsonl');
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        lines.map((l) => `${l.problem_id}/${l.sample}`),
        ['p0/0', 'p0/1', 'p1/0', 'p1/1'],
      );
      assert.deepEqual(Object.keys(lines[0]), [
        'problem_id',
        'sample',
        'prompt',
        'completion',
        'extracted',
        'rule',
        'equal',
        'reason',
        'tokens',
        'finish_reason',
      ]);
      assert.deepEqual(
        [
          lines[0].prompt,
          lines[0].completion,
          lines[0].extracted,
          lines[0].rule,
          lines[0].equal,
          lines[0].tokens,
          lines[0].finish_reason,
        ],
        ['Q: 1+2', '\\boxed{3}', '3', 'boxed', true, 7, 'stop'],
      );
      assert.equal(existsSync(join(out, 'adds.summary.json')), false);

      // The server recovers: the rerun asks only for p2 and p3 (2 samples each), and the summary covers all four.
      broken = false;
      const before = srv.requests.length;
      let resumed = -1;
      const s = await runEval({ ...runOpts, generator: gen, settings, out, onResume: (n) => (resumed = n) });
      assert.equal(resumed, 2);
      assert.equal(srv.requests.length - before, 4);
      assert.deepEqual(
        srv.requests.slice(before).map((r) => r.prompt),
        ['Q: 3+4', 'Q: 3+4', 'Q: 5+5', 'Q: 5+5'],
      );
      assert.deepEqual(
        [s.problems, s.pass_at_1, s.cons_at_k, s.format_rate, s.mean_length, s.resumed_problems, s.generated_problems],
        [4, 1, 1, 1, 7, 2, 2],
      );
      const summary = JSON.parse(readFileSync(join(out, 'adds.summary.json'), 'utf8'));
      assert.equal(summary.benchmark, 'adds');
      assert.equal(summary.pass_at_k, 1);
      assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 8);

      // Complete: no requests at all.
      const n = srv.requests.length;
      await runEval({ ...runOpts, generator: gen, settings, out });
      assert.equal(srv.requests.length, n);
      // Other settings are refused rather than mixed in.
      await assert.rejects(
        runEval({ ...runOpts, generator: gen, settings: { ...settings, samples: 3 }, out, samples: 3 }),
        /made with samples 2, not 3/,
      );
    } finally {
      await srv.close();
    }
  });

  it('resume: a torn last line is dropped and its problem generated again; a malformed line names file:line', async () => {
    const srv = await stubServer(({ body }) => ({ body: completion(solve(String(body.prompt))) }));
    try {
      const gen = new OpenAiGenerator({ baseUrl: srv.url, model: 'm', endpoint: 'completions', concurrency: 2 });
      const file = join(tmp, 'run2', 'out.jsonl');
      await runEval({ ...runOpts, generator: gen, settings: {}, out: file });
      assert.ok(existsSync(join(tmp, 'run2', 'out.summary.json')));
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      // Simulate a crash in the middle of writing p3's records: its second line cut short.
      const p3 = lines.filter((l) => JSON.parse(l).problem_id === 'p3');
      writeFileSync(
        file,
        lines.filter((l) => JSON.parse(l).problem_id !== 'p3').join('\n') + '\n' + p3[0] + '\n' + p3[1].slice(0, 20),
      );
      const before = srv.requests.length;
      let repaired = false;
      const s = await runEval({
        ...runOpts,
        generator: gen,
        settings: {},
        out: file,
        onResume: (_n, r) => (repaired = r),
      });
      assert.equal(repaired, true);
      assert.deepEqual(
        srv.requests.slice(before).map((r) => r.prompt),
        ['Q: 5+5', 'Q: 5+5'],
      );
      assert.equal(s.pass_at_1, 1);
      const after = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      // The unfinished p3's first row was dropped before p3 ran again: one row per problem and sample.
      assert.deepEqual(after.map((l) => `${l.problem_id}/${l.sample}`).sort(), [
        'p0/0',
        'p0/1',
        'p1/0',
        'p1/1',
        'p2/0',
        'p2/1',
        'p3/0',
        'p3/1',
      ]);

      appendFileSync(file, '{"problem_id": "p0"}\n');
      const bad = after.length + 1;
      await assert.rejects(
        runEval({ ...runOpts, generator: gen, settings: {}, out: file }),
        new RegExp(`${file}:${bad}: field 'sample'`),
      );
      writeFileSync(file, 'not json\n' + readFileSync(file, 'utf8'));
      await assert.rejects(
        runEval({ ...runOpts, generator: gen, settings: {}, out: file }),
        new RegExp(`${file}:1: malformed JSON`),
      );
    } finally {
      await srv.close();
    }
  });
});

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const models = (...ids: string[]) => ({ object: 'list', data: ids.map((id) => ({ id, object: 'model' })) });

describe('before the first request: the server is checked once, and the model name comes from it', () => {
  it('a server that is down is a one-line error from the check, not a run of retries', async () => {
    const port = await closedPort();
    await assert.rejects(probeServer(`http://127.0.0.1:${port}`), (e: Error) => {
      assert.ok(e instanceof AhaError);
      assert.equal(
        e.message,
        `http://127.0.0.1:${port}/v1/models: cannot reach the server (ECONNREFUSED): is it running?`,
      );
      return true;
    });
  });

  it('lists the served models; no list (404) is null; a refused key is an error', async () => {
    let status = 200;
    const srv = await stubServer(({ url, headers }) => {
      assert.equal(url, '/v1/models');
      assert.equal(headers.authorization, 'Bearer k');
      if (status !== 200) return { status, body: { error: 'no' } };
      return { body: { object: 'list', data: [{ id: 'qwen', object: 'model', max_model_len: 8192 }] } };
    });
    try {
      assert.deepEqual(await probeServer(`${srv.url}/v1`, { apiKey: 'k' }), [{ id: 'qwen', maxModelLen: 8192 }]);
      status = 404;
      assert.equal(await probeServer(srv.url, { apiKey: 'k' }), null);
      status = 401;
      await assert.rejects(
        probeServer(srv.url, { apiKey: 'k' }),
        /v1\/models: HTTP 401: the server refused the API key/,
      );
    } finally {
      await srv.close();
    }
  });

  it('the model name: as given, else the only one listed; several or none is an error naming what to do', () => {
    const url = 'http://127.0.0.1:1';
    assert.equal(chooseServerModel(url, [{ id: 'a' }, { id: 'b' }], 'b'), 'b');
    assert.equal(chooseServerModel(url, [{ id: 'only' }], undefined), 'only');
    assert.throws(
      () => chooseServerModel(url, [{ id: 'a' }, { id: 'b' }], undefined),
      /^AhaError: the server serves 2 models: give --model-name \(one of a, b\)$/,
    );
    assert.throws(() => chooseServerModel(url, null, undefined), /v1\/models lists no models: give --model-name/);
  });

  it('each retry is reported as it happens, before the request is tried again', async () => {
    const srv = await stubServer(() => ({ status: 503, body: 'down' }));
    const notices: RetryNotice[] = [];
    try {
      const gen = new OpenAiGenerator({
        baseUrl: srv.url,
        model: 'm',
        endpoint: 'completions',
        backoffMs: 2,
        maxRetries: 2,
        onRetry: (r) => {
          // The notice comes before the retry's request.
          assert.equal(srv.requests.length, notices.length + 1);
          notices.push(r);
        },
      });
      await assert.rejects(gen.generate(['1+1'], { ...sampling, ids: ['p'] }), /failed after 3 attempts/);
      assert.deepEqual(
        notices.map((n) => [n.what, n.retry, n.maxRetries, n.error]),
        [
          ['problem p', 1, 2, 'HTTP 503: down'],
          ['problem p', 2, 2, 'HTTP 503: down'],
        ],
      );
      assert.match(formatRetry(notices[0]), /^problem p: HTTP 503: down; retry 1 of 2 in \d+\.\d s$/);
    } finally {
      await srv.close();
    }
  });
});

describe('aha eval against a server (the command)', () => {
  const root = resolve(import.meta.dirname, '../..');
  const benchFile = join(tmp, 'adds-cli.jsonl');
  writeFileSync(benchFile, ['1+2', '3+4'].map((q) => JSON.stringify({ question: q, answer: eval(q) })).join('\n'));
  /** Runs the CLI without blocking this process's event loop (the stub server lives here). */
  const ahaEval = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, [join(root, 'bin/aha.js'), 'eval', '--benchmark', benchFile, ...args], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, OPENAI_API_KEY: '' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => done({ code, stdout, stderr }));
    });

  it('a server that is down: exit 1 with one line', async () => {
    const port = await closedPort();
    const r = await ahaEval(['--openai-base-url', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `aha: http://127.0.0.1:${port}/v1/models: cannot reach the server (ECONNREFUSED): is it running?\n`,
    );
  });

  it('the model the server lists, 4096 new tokens by default, template variables sent, retries shown as they happen', async () => {
    let failedOnce = false;
    const srv = await stubServer(({ url, body }) => {
      if (url === '/v1/models') return { body: models('tiny-r1') };
      const content = (body.messages as { content: string }[])[0].content;
      if (!failedOnce && content.includes('3+4')) {
        failedOnce = true;
        return { status: 503, body: 'warming up' };
      }
      return {
        body: {
          choices: [{ index: 0, message: { role: 'assistant', content: solve(content) }, finish_reason: 'stop' }],
          usage: { completion_tokens: 5 },
        },
      };
    });
    try {
      const r = await ahaEval([
        '--openai-base-url',
        srv.url,
        '--samples',
        '1',
        '--json',
        '--chat-template-kwargs',
        '{"enable_thinking": false}',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const gens = srv.requests.filter((q) => q.messages !== undefined);
      assert.equal(gens.length, 3);
      for (const q of gens)
        assert.deepEqual(
          [q.model, q.max_tokens, q.chat_template_kwargs],
          ['tiny-r1', 4096, { enable_thinking: false }],
        );
      assert.match(r.stderr, /model tiny-r1 \(the one the server lists\)/);
      assert.match(r.stderr, /problem \S+: HTTP 503: warming up; retry 1 of 5 in \d+\.\d s/);
      const line = JSON.parse(r.stdout.trim()) as { pass_at_1: number; problems: number };
      assert.deepEqual([line.pass_at_1, line.problems], [1, 2]);
    } finally {
      await srv.close();
    }
  });

  it('several models and no --model-name: exit 1 naming them', async () => {
    const srv = await stubServer(() => ({ body: models('a-7b', 'b-1b') }));
    try {
      const r = await ahaEval(['--openai-base-url', srv.url]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'aha: the server serves 2 models: give --model-name (one of a-7b, b-1b)\n');
      assert.equal(srv.requests.length, 1);
    } finally {
      await srv.close();
    }
  });
});
