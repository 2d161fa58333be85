// The `judge` reward against a loopback OpenAI-compatible server the test starts: verdicts, ratings, malformed
// replies, timeouts, a server that goes down mid-run, bounded concurrency, the cache (in memory and on disk), the
// recipe options, aha r1's general rewards, and rejection sampling's judge for unreadable answers.
import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AhaError } from '../../src/errors.ts';
import { scoreCompletions, type ScoreItem } from '../../src/rewards/combine.ts';
import { LlmJudge, type LlmJudgeOptions } from '../../src/rewards/llmJudge.ts';
import { JUDGE_TEMPLATES, renderJudgePrompt } from '../../src/rewards/judgeTemplates.ts';
import type { Example } from '../../src/rewards/types.ts';
import { buildRewards, buildScopedRewardSpecs, disposeRewards } from '../../src/rl/rewardRegistry.ts';
import { parseGrpoOptions } from '../../src/rl/grpoOptions.ts';
import { buildFilters, verifierWithJudge } from '../../src/r1/filters.ts';

const tmp = mkdtempSync(join(tmpdir(), 'aha-llm-judge-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Reply = { status?: number; body?: unknown; delayMs?: number; destroy?: boolean };
type Handler = (prompt: string, body: Record<string, unknown>, count: number) => Reply;

interface Stub {
  url: string;
  /** Chat requests received (bodies), in arrival order. */
  requests: Record<string, unknown>[];
  modelRequests: number;
  authorization: (string | undefined)[];
  maxInFlight: number;
  close: () => Promise<void>;
}

/** A stub OpenAI-compatible server on 127.0.0.1: /v1/models lists `models`; `handler` answers chat requests. */
async function stubServer(handler: Handler, models: string[] = ['judge-m']): Promise<Stub> {
  let inFlight = 0;
  const stub = {
    url: '',
    requests: [] as Record<string, unknown>[],
    modelRequests: 0,
    authorization: [] as (string | undefined)[],
    maxInFlight: 0,
    close: async () => {},
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    stub.authorization.push(req.headers.authorization);
    if (req.method === 'GET' && req.url === '/v1/models') {
      stub.modelRequests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: models.map((id) => ({ id, object: 'model' })) }));
      return;
    }
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      assert.equal(req.url, '/v1/chat/completions');
      const body = JSON.parse(data) as Record<string, unknown>;
      stub.requests.push(body);
      inFlight++;
      stub.maxInFlight = Math.max(stub.maxInFlight, inFlight);
      const prompt = (body.messages as { content: string }[])[0].content;
      const r = handler(prompt, body, stub.requests.length);
      const send = () => {
        inFlight--;
        if (res.destroyed) return;
        if (r.destroy) {
          req.socket.destroy();
          return;
        }
        res.writeHead(r.status ?? 200, { 'content-type': 'application/json' });
        res.end(typeof r.body === 'string' ? r.body : JSON.stringify(r.body ?? {}));
      };
      if (r.delayMs) setTimeout(send, r.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return stub;
}

const chat = (content: string, finish = 'stop') => ({
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
  usage: { completion_tokens: 5 },
});

/** A judge that compares the last number of the response with the reference, as the equivalence template asks. */
function equivalenceJudge(prompt: string): Reply {
  const ref = /Reference answer:\n(.*)\n/.exec(prompt)![1];
  const response = /Response:\n([\s\S]*)\n\nExplain briefly/.exec(prompt)![1];
  const last = response.match(/-?\d+/g)?.at(-1);
  return {
    body: chat(`The response's final answer is ${last}.\n\nVerdict: ${last === ref ? 'correct' : 'incorrect'}`),
  };
}

const example = (question: string, answer?: string): Example => ({ question, ...(answer !== undefined && { answer }) });
const item = (completion: string, ex: Example): ScoreItem => ({
  completion,
  example: ex,
  prompt: `User: ${ex.question}`,
});
const promptOf = (r: Record<string, unknown>) => (r.messages as { content: string }[])[0].content;
const grpo = parseGrpoOptions({}, 'test');
const fast = { backoffMs: 5 } satisfies Partial<LlmJudgeOptions>;

describe('judge reward against a loopback server', () => {
  it('equivalence verdicts through buildRewards: scores, reasons, the request, the model from /v1/models', async () => {
    const srv = await stubServer(equivalenceJudge);
    try {
      const [judge] = await buildRewards([{ name: 'judge', options: { base_url: srv.url } }], {
        grpo,
        baseDir: tmp,
      });
      assert.deepEqual([judge.name, judge.kind, judge.weight], ['judge', 'judge', 1]);
      const items = [
        item('2+3 is 5', example('What is 2+3?', '5')),
        item('<think>2+3</think> The answer is 6', example('What is 2+3?', '5')),
        item('12', example('What is 3*4?', '12')),
      ];
      const r = await scoreCompletions([judge], items);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.perReward[0].scores, [1, 0, 1]);
      assert.deepEqual(r.perReward[0].reasons, ['correct', 'incorrect', 'correct']);
      assert.equal(srv.modelRequests, 1);
      assert.equal(srv.requests.length, 3);
      const first = srv.requests.find((q) => promptOf(q).includes('2+3 is 5'))!;
      assert.deepEqual(
        [first.model, first.temperature, first.max_tokens, first.top_p, first.n],
        ['judge-m', 0, 1024, 1, 1],
      );
      assert.equal(
        promptOf(first),
        renderJudgePrompt(JUDGE_TEMPLATES.equivalence.text, {
          question: 'What is 2+3?',
          reference: '5',
          response: '2+3 is 5',
        }),
      );
      await disposeRewards([judge]);
    } finally {
      await srv.close();
    }
  });

  it('rating on the summary: 1-10 mapped to [0, 1], reasoning not sent, no summary scores 0 without a request', async () => {
    const srv = await stubServer((prompt) => {
      const answer = /\[The Start of Assistant's Answer\]\n([\s\S]*)\n\[The End/.exec(prompt)![1];
      return { body: chat(`Clear and correct.\n\nRating: [[${answer.length > 20 ? 9 : 4}]]`) };
    });
    try {
      const judge = new LlmJudge({ baseUrl: `${srv.url}/v1/`, model: 'm', template: 'rating', on: 'summary', ...fast });
      const items = [
        item('<think>secret plan</think>\nA long, helpful answer here.', example('Explain tides')),
        item('<think>more</think> Short.', example('Explain tides')),
        item('<think>never closed, no summary', example('Explain tides')),
        item('<think>x</think>  \n', example('Explain tides')),
      ];
      const r = await scoreCompletions([{ name: 'judge', fn: judge.reward }], items);
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.perReward[0].scores, [8 / 9, 3 / 9, 0, 0]);
      assert.deepEqual(r.perReward[0].reasons, ['rating_9', 'rating_4', 'no_summary', 'empty_response']);
      assert.equal(srv.requests.length, 2);
      assert.equal(srv.modelRequests, 0);
      for (const q of srv.requests) assert.ok(!promptOf(q).includes('secret plan') && !promptOf(q).includes('<think>'));
      assert.ok(promptOf(srv.requests[0]).includes('[Question]\nExplain tides\n'));
      assert.deepEqual(judge.stats, { calls: 4, requests: 2, cacheHits: 0, failures: 0, malformed: 0 });
    } finally {
      await srv.close();
    }
  });

  it('malformed replies, a non-JSON body, a 400 and a missing reference fail: scored 0, counted, not cached', async () => {
    const srv = await stubServer((prompt) => {
      if (prompt.includes('say-maybe')) return { body: chat('Hard to say; it might be fine.') };
      if (prompt.includes('say-cut')) return { body: chat('Let me compare the two answers step by', 'length') };
      if (prompt.includes('say-garbage')) return { body: 'this is not json' };
      if (prompt.includes('say-400')) return { status: 400, body: { error: { message: 'bad request' } } };
      return equivalenceJudge(prompt);
    });
    try {
      const judge = new LlmJudge({ baseUrl: srv.url, model: 'm', ...fast, retries: 1 });
      const items = [
        item('say-maybe 5', example('q', '5')),
        item('say-cut 5', example('q', '5')),
        item('say-garbage 5', example('q', '5')),
        item('say-400 5', example('q', '5')),
        item('5', example('q without reference')),
        item('5', example('q', '5')),
      ];
      const r = await scoreCompletions([{ name: 'judge', fn: judge.reward }], items);
      assert.deepEqual(r.perReward[0].scores, [0, 0, 0, 0, 0, 1]);
      assert.deepEqual(
        r.errors.map((e) => [e.exampleIndex, e.kind]),
        [
          [0, 'throw'],
          [1, 'throw'],
          [2, 'throw'],
          [3, 'throw'],
          [4, 'throw'],
        ],
      );
      const msg = r.errors.map((e) => e.message);
      assert.equal(msg[0], 'unreadable judge reply (no verdict found): "Hard to say; it might be fine."');
      assert.match(msg[1], /^unreadable judge reply \(no verdict found; the reply hit max_tokens 1024\)/);
      assert.match(msg[2], /\/v1\/chat\/completions: problem judge-\w+: response is not JSON: this is not json$/);
      assert.match(msg[3], /HTTP 400: .*bad request/);
      assert.equal(msg[4], 'the example has no reference answer (the judge template uses {reference})');
      assert.deepEqual(judge.stats, { calls: 6, requests: 5, cacheHits: 0, failures: 5, malformed: 2 });
      // Nothing unreadable was cached: asking again asks the server again.
      await scoreCompletions([{ name: 'judge', fn: judge.reward }], items.slice(0, 1));
      assert.equal(judge.stats.requests, 6);
      assert.equal(judge.cache.size, 1);
    } finally {
      await srv.close();
    }
  });

  it('timeouts: a slow attempt is retried; one slow on every attempt fails after the retries', async () => {
    let attempts = 0;
    const srv = await stubServer((prompt) => {
      if (prompt.includes('always-slow')) return { delayMs: 2000, ...equivalenceJudge(prompt) };
      if (prompt.includes('slow-once') && ++attempts === 1) return { delayMs: 2000, ...equivalenceJudge(prompt) };
      return equivalenceJudge(prompt);
    });
    try {
      const judge = new LlmJudge({ baseUrl: srv.url, model: 'm', timeoutMs: 150, retries: 1, ...fast });
      const r = await scoreCompletions(
        [{ name: 'judge', fn: judge.reward }],
        [item('slow-once 5', example('q', '5')), item('always-slow 5', example('q', '5'))],
      );
      assert.deepEqual(r.perReward[0].scores, [1, 0]);
      assert.equal(r.errors.length, 1);
      assert.match(r.errors[0].message, /failed after 2 attempts; last error: no response within/);
      assert.equal(srv.requests.length, 4);
      assert.deepEqual([judge.stats.failures, judge.stats.malformed], [1, 0]);
    } finally {
      await srv.close();
    }
  });

  it("scoreCompletions' own timeout cancels the judge's request and frees its slot", async () => {
    const srv = await stubServer((prompt) =>
      prompt.includes('hang') ? { delayMs: 3000, ...equivalenceJudge(prompt) } : equivalenceJudge(prompt),
    );
    try {
      const judge = new LlmJudge({ baseUrl: srv.url, model: 'm', concurrency: 1, ...fast });
      const rw = [{ name: 'judge', fn: judge.reward }];
      const r = await scoreCompletions(rw, [item('hang 5', example('q', '5'))], { timeoutMs: 200 });
      assert.deepEqual(
        r.errors.map((e) => e.kind),
        ['timeout'],
      );
      // The one slot is free again: the next call is answered at once.
      const again = await scoreCompletions(rw, [item('5', example('q', '5'))], { timeoutMs: 2000 });
      assert.deepEqual([again.perReward[0].scores, again.errors], [[1], []]);
    } finally {
      await srv.close();
    }
  });

  it('a server that goes down mid-run: the remaining calls fail, are scored 0 and counted, and nothing hangs', async () => {
    let stub: Stub | null = null;
    let closing: Promise<void> | null = null;
    stub = await stubServer((prompt, _body, count) => {
      if (count <= 3) return equivalenceJudge(prompt);
      closing ??= stub!.close();
      return { destroy: true };
    });
    const judge = new LlmJudge({ baseUrl: stub.url, model: 'm', concurrency: 2, retries: 2, ...fast });
    const items = Array.from({ length: 8 }, (_, i) => item(`answer ${i}`, example(`q${i}`, String(i))));
    const r = await scoreCompletions([{ name: 'judge', fn: judge.reward }], items, { timeoutMs: 20_000 });
    await closing;
    assert.equal(r.perReward[0].scores.filter((s) => s === 1).length, 3);
    assert.equal(r.perReward[0].scores.filter((s) => s === 0).length, 5);
    assert.equal(r.errors.length, 5);
    for (const e of r.errors) {
      assert.equal(e.kind, 'throw');
      assert.match(e.message, /failed after 3 attempts; last error: request failed/);
    }
    assert.deepEqual([judge.stats.calls, judge.stats.failures], [8, 5]);
    // Still down: a later call fails at once too.
    const later = await scoreCompletions([{ name: 'judge', fn: judge.reward }], [item('9', example('q9', '9'))]);
    assert.deepEqual([later.perReward[0].scores, later.errors.length], [[0], 1]);
  });

  it('at most `concurrency` requests in flight', async () => {
    const srv = await stubServer((prompt) => ({ delayMs: 40, ...equivalenceJudge(prompt) }));
    try {
      const judge = new LlmJudge({ baseUrl: srv.url, model: 'm', concurrency: 2, ...fast });
      const items = Array.from({ length: 7 }, (_, i) => item(`${i}`, example(`q${i}`, String(i))));
      const r = await scoreCompletions([{ name: 'judge', fn: judge.reward }], items);
      assert.deepEqual(r.perReward[0].scores, [1, 1, 1, 1, 1, 1, 1]);
      assert.equal(srv.requests.length, 7);
      assert.ok(srv.maxInFlight <= 2, `max in flight ${srv.maxInFlight}`);
    } finally {
      await srv.close();
    }
  });

  it('the cache: identical completions share one request; a second call hits no server; other sampling asks again', async () => {
    const srv = await stubServer((prompt) => ({ delayMs: 20, ...equivalenceJudge(prompt) }));
    try {
      const judge = new LlmJudge({ baseUrl: srv.url, model: 'm', ...fast });
      const same = item('the answer is 5', example('q', '5'));
      const items = [same, same, same, item('6', example('q', '5')), same];
      const rw = [{ name: 'judge', fn: judge.reward }];
      const r1 = await scoreCompletions(rw, items);
      assert.deepEqual(r1.perReward[0].scores, [1, 1, 1, 0, 1]);
      assert.equal(srv.requests.length, 2);
      const r2 = await scoreCompletions(rw, items);
      assert.deepEqual(r2.perReward[0].scores, r1.perReward[0].scores);
      assert.deepEqual(r2.perReward[0].reasons, r1.perReward[0].reasons);
      assert.equal(srv.requests.length, 2);
      assert.deepEqual(judge.stats, { calls: 10, requests: 2, cacheHits: 8, failures: 0, malformed: 0 });
      // The key holds the model and the sampling settings: another temperature is another request.
      const warm = new LlmJudge({ baseUrl: srv.url, model: 'm', temperature: 0.7, ...fast });
      await scoreCompletions([{ name: 'judge', fn: warm.reward }], [same]);
      assert.equal(srv.requests.length, 3);
      assert.equal(srv.requests[2].temperature, 0.7);
    } finally {
      await srv.close();
    }
  });

  it('the disk cache survives a new instance (server down) and a torn last line', async () => {
    const path = join(tmp, 'judge-cache', 'replies.jsonl');
    const srv = await stubServer(equivalenceJudge);
    const items = [item('5', example('q', '5')), item('7', example('q', '5'))];
    const a = await buildRewards(
      [{ name: 'judge', options: { base_url: srv.url, model: 'm', cache: 'judge-cache/replies.jsonl' } }],
      {
        grpo,
        baseDir: tmp,
      },
    );
    const first = await scoreCompletions(a, items);
    assert.deepEqual(first.perReward[0].scores, [1, 0]);
    assert.equal(srv.requests.length, 2);
    assert.equal(readFileSync(path, 'utf8').trim().split('\n').length, 2);
    await srv.close();

    // A new instance (a restarted run) with the server gone: everything from the file.
    const b = new LlmJudge({ baseUrl: srv.url, model: 'm', cachePath: path, retries: 0, ...fast });
    assert.equal(b.cache.loaded, 2);
    const second = await scoreCompletions([{ name: 'judge', fn: b.reward }], items);
    assert.deepEqual([second.perReward[0].scores, second.errors], [[1, 0], []]);
    assert.equal(b.stats.requests, 0);

    // A kill mid-write left half a line: dropped on load, the rest served, new replies appended on their own line.
    appendFileSync(path, '{"key": "0123", "reply": "Verdict: cor');
    const srv2 = await stubServer(equivalenceJudge);
    try {
      const c = new LlmJudge({ baseUrl: srv2.url, model: 'm', cachePath: path, ...fast });
      assert.deepEqual([c.cache.loaded, c.cache.repaired], [2, true]);
      const third = await scoreCompletions(
        [{ name: 'judge', fn: c.reward }],
        [...items, item('the answer: 5', example('q', '5'))],
      );
      assert.deepEqual([third.perReward[0].scores, third.errors], [[1, 0, 1], []]);
      assert.equal(srv2.requests.length, 1);
      const lines = readFileSync(path, 'utf8').split('\n');
      assert.equal(lines.pop(), '');
      assert.equal(lines.length, 3);
      for (const l of lines) assert.deepEqual(Object.keys(JSON.parse(l)), ['key', 'reply']);
    } finally {
      await srv2.close();
    }
  });

  it('a server listing several models needs `model`: every call fails, saying so', async () => {
    const srv = await stubServer(equivalenceJudge, ['a', 'b']);
    try {
      const judge = new LlmJudge({ baseUrl: srv.url, ...fast });
      const r = await scoreCompletions([{ name: 'judge', fn: judge.reward }], [item('5', example('q', '5'))]);
      assert.equal(r.errors.length, 1);
      assert.equal(r.errors[0].message, `${srv.url}/v1/models lists 2 models (a, b): set the judge's \`model\``);
      assert.equal(srv.requests.length, 0);
    } finally {
      await srv.close();
    }
  });

  it('recipe options: API key from the environment, inline template, and one-line errors', async () => {
    const srv = await stubServer(() => ({ body: chat('{"score": 4}') }));
    process.env.AHA_TEST_JUDGE_KEY = 'sekret';
    try {
      const [judge] = await buildRewards(
        [
          {
            name: 'judge',
            label: 'helpful',
            options: {
              base_url: srv.url,
              model: 'm',
              api_key_env: 'AHA_TEST_JUDGE_KEY',
              template: 'Rate 1-5 as {"score": n}. Q: {question} A: {response}',
              parse: 'score',
              score_range: [1, 5],
              max_tokens: 32,
            },
          },
        ],
        { grpo, baseDir: tmp },
      );
      const r = await scoreCompletions([judge], [item('an answer', example('why?'))]);
      assert.deepEqual([r.perReward[0].scores, r.perReward[0].reasons], [[0.75], ['rating_4']]);
      assert.equal(promptOf(srv.requests[0]), 'Rate 1-5 as {"score": n}. Q: why? A: an answer');
      assert.equal(srv.requests[0].max_tokens, 32);
      assert.ok(srv.authorization.every((a) => a === 'Bearer sekret'));
    } finally {
      delete process.env.AHA_TEST_JUDGE_KEY;
      await srv.close();
    }
    const bad = async (options: Record<string, unknown>, message: string | RegExp) =>
      assert.rejects(
        buildRewards([{ name: 'judge', options }], { grpo, baseDir: tmp, source: 'r.yaml' }),
        (e: Error) => {
          assert.ok(e instanceof AhaError, String(e));
          if (typeof message === 'string') assert.equal(e.message, message);
          else assert.match(e.message, message);
          return true;
        },
      );
    await bad({}, 'r.yaml: rewards[0].options.base_url: required');
    await bad(
      { base_url: 'localhost:8000' },
      "r.yaml: rewards[0].options.base_url: 'localhost:8000' is not an http:// or https:// URL",
    );
    await bad({ base_url: 'http://h', temprature: 0 }, "r.yaml: rewards[0].options: unknown option 'temprature'");
    await bad(
      { base_url: 'http://h', api_key_env: 'AHA_TEST_UNSET_VAR' },
      'r.yaml: rewards[0].options.api_key_env: the environment variable AHA_TEST_UNSET_VAR is not set',
    );
    await bad(
      { base_url: 'http://h', template: 'Rate {response}' },
      "r.yaml: rewards[0].options.parse: an inline template needs 'parse: verdict' or 'parse: score'",
    );
    await bad({ base_url: 'http://h', on: 'reasoning' }, /^r\.yaml: rewards\[0\]\.options\.on: /);
  });

  it("aha r1's general rewards: `name: judge` builds, scoped to general prompts", async () => {
    const srv = await stubServer(() => ({ body: chat('Rating: [[10]]') }));
    try {
      const specs = await buildScopedRewardSpecs(
        [{ name: 'judge', options: { base_url: srv.url, model: 'm', template: 'rating', on: 'summary' } }],
        { grpo, baseDir: tmp, source: 'r1.yaml: stages.all_scenarios_rl.general_rewards' },
        (ex) => ex.kind === 'general',
      );
      const rewards = await buildRewards(specs, { grpo, baseDir: tmp });
      assert.deepEqual([rewards[0].name, rewards[0].kind], ['judge', 'judge']);
      const r = await scoreCompletions(rewards, [
        item('<think>a</think> Helpful.', { question: 'Write a haiku', kind: 'general' }),
        item('<think>a</think> 5', { question: '2+3', answer: '5', kind: 'reasoning' }),
      ]);
      assert.deepEqual([r.perReward[0].scores, r.errors], [[1, 0], []]);
      assert.equal(srv.requests.length, 1);
    } finally {
      await srv.close();
    }
  });
});

describe("rejection sampling's judge for answers the verifier cannot read", () => {
  const problem = { id: 'p', question: 'Name the capital of France.', answer: 'Paris', prompt: 'Q' };
  const readable = (c: string) => /\\boxed\{/.test(c);
  const verify = (c: string, p: typeof problem) => c.includes(`\\boxed{${p.answer}}`);

  it('readable answers go to the verifier; unreadable ones to the judge; a failure counts as incorrect', async () => {
    let down = false;
    const srv = await stubServer((prompt) => {
      if (down) return { status: 503, body: 'down' };
      const response = /Response:\n([\s\S]*)\n\nExplain briefly/.exec(prompt)![1];
      return { body: chat(`Verdict: ${/Paris/.test(response) ? 'correct' : 'incorrect'}`) };
    });
    const logs: string[] = [];
    try {
      const config = { judge_unreadable: { base_url: srv.url, model: 'm', on: 'summary' as const, retries: 0 } };
      const j = verifierWithJudge(verify, config, { readable, baseDir: tmp, log: (l) => logs.push(l) });
      assert.ok(j.judge);
      assert.equal(await j.verify('<think>x</think> \\boxed{Paris}', problem), true);
      assert.equal(await j.verify('<think>x</think> \\boxed{Lyon}', problem), false);
      assert.equal(srv.requests.length, 0);
      assert.equal(await j.verify('<think>x</think> It is Paris, on the Seine.', problem), true);
      assert.equal(await j.verify('<think>x</think> It is Lyon.', problem), false);
      assert.equal(srv.requests.length, 2);
      down = true;
      assert.equal(await j.verify('<think>x</think> Paris, I believe.', problem), false);
      assert.deepEqual(j.counts, { judged: 3, accepted: 1, failed: 1 });
      assert.equal(logs.length, 1);
      assert.match(logs[0], /^judge_unreadable: .*HTTP 503: down \(counted as incorrect\)$/);
      // Without judge_unreadable: the verifier as it is.
      const plain = verifierWithJudge(verify, {}, { readable });
      assert.equal(plain.judge, null);
      assert.equal(await plain.verify('It is Paris.', problem), false);
    } finally {
      await srv.close();
    }
  });

  it('with judge_unreadable, the missing-summary filter no longer asks for a readable answer', () => {
    const summaryOnly = { completion: '<think>reasoning</think>\nIt is Paris.' };
    const without = buildFilters({}).find((f) => f.name === 'missing_summary')!;
    assert.equal(without.test(summaryOnly).keep, false);
    const judged = buildFilters({ judge_unreadable: { base_url: 'http://127.0.0.1:1' } }).find(
      (f) => f.name === 'missing_summary',
    )!;
    assert.equal(judged.test(summaryOnly).keep, true);
    assert.equal(judged.test({ completion: '<think>reasoning never ends' }).keep, false);
  });
});
