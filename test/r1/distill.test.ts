/**
 * Distillation from a stub OpenAI-compatible teacher on 127.0.0.1 into a tiny student: a server that errors and
 * then answers is retried; one that keeps failing is reported, and the traces gathered before are kept and reused.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { adaptTrace, runDistill, type DistillReport } from '../../src/r1/distill.ts';
import { AhaError } from '../../src/errors.ts';
import { FakeGenerator } from './fakeGenerator.ts';
import { freshTinyModel } from './tinyBase.ts';

const root = mkdtempSync(join(tmpdir(), 'aha-distill-'));
after(() => rmSync(root, { recursive: true, force: true }));

type Handler = (
  body: { messages: { content: string }[]; seed: number },
  attempt: number,
) => { status: number; body: unknown };

/** A stub chat-completions server; `handler` gets the request and its attempt number (per prompt and seed). */
async function stubServer(handler: Handler) {
  const attempts = new Map<string, number>();
  const questions: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data);
      const key = `${body.messages[0].content}#${body.seed}`;
      const a = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, a);
      questions.push(body.messages[0].content.split('\n')[0]);
      const r = handler(body, a);
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    questions,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** An R1-style answer to "a+b" (reasoning apart, as vLLM's reasoning parser returns it). */
function solve(content: string) {
  const m = /(\d+)\+(\d+)/.exec(content)!;
  const sum = Number(m[1]) + Number(m[2]);
  return {
    status: 200,
    body: {
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            reasoning_content: `${m[1]}+${m[2]}\n=${sum}`,
            content: `The answer is ${sum}.`,
          },
          finish_reason: 'stop',
        },
      ],
      usage: { completion_tokens: 12 },
    },
  };
}
const overloaded = { status: 503, body: { error: 'overloaded' } };

const questions = ['1+2', '3+4', '2+5', '6+1', '4+4', '2+2', '5+3', '1+1'];
const dataFile = join(root, 'data.jsonl');
writeFileSync(
  dataFile,
  questions.map((q) => JSON.stringify({ question: q, answer: String(eval(q)) })).join('\n') + '\n',
);
const student = freshTinyModel(join(root, 'student'));

const common = {
  student,
  data: { path: dataFile },
  evalProblems: 2,
  prompt: 'r1-zero-short',
  samples: 2,
  maxNewTokens: 20,
  temperature: 0.6,
  teacherModel: 'r1',
  teacherBackoffMs: 1,
  teacherConcurrency: 1,
  teacherMaxRetries: 2,
  sft: { max_steps: 3, per_device_train_batch_size: 4, learning_rate: 1e-3, save_steps: 1 },
  eval: { samples: 1, maxNewTokens: 20 },
  log: () => {},
};

test('traces are adapted to the student prompt', () => {
  assert.equal(
    adaptTrace('<think>\nx\n</think>\n\nThe answer is 1.', 'User: 1. Assistant:'),
    ' <think>\nx\n</think>\n\nThe answer is 1.',
  );
  assert.equal(adaptTrace('<think>\nx\n</think>\nok', '<|Assistant|><think>\n'), 'x\n</think>\nok');
  assert.equal(adaptTrace('<think>x</think>', [{ role: 'user', content: 'q' }]), '<think>x</think>');
});

test('a teacher server that errors then answers is retried; the student is fine-tuned on its verified traces and evaluated before and after', async () => {
  const srv = await stubServer((body, attempt) => (attempt === 1 ? overloaded : solve(body.messages[0].content)));
  try {
    const out = join(root, 'ok');
    const r = await runDistill({ ...common, out, teacherBaseUrl: srv.url });
    assert.equal(r.status, 'complete');
    assert.equal(r.teacher_error, null);
    // 6 training prompts x 2 samples, each retried once; then the teacher's evaluation (2 problems x 1).
    assert.equal(srv.questions.length, 2 * (6 * 2) + 2 * 2);
    assert.ok(
      srv.questions.every((q) => /^\d\+\d$/.test(q)),
      'the teacher is asked the bare question (and the math instruction)',
    );
    // Both samples of a prompt are the same text: one kept per prompt, one duplicate.
    assert.deepEqual(
      { samples: r.data!.samples, kept: r.data!.kept, duplicates: r.data!.duplicates, incorrect: r.data!.incorrect },
      { samples: 12, kept: 6, duplicates: 6, incorrect: 0 },
    );
    const line = JSON.parse(readFileSync(join(out, 'teacher', 'data.jsonl'), 'utf8').split('\n')[0]);
    assert.match(line.prompt, /^User: \d\+\d\. Assistant:$/);
    assert.match(line.completion, /^ <think>\n\d\+\d\n=\d+\n<\/think>\n\nThe answer is \d+\.$/);
    assert.equal(line.source, 'distillation');
    assert.match(line.checkpoint, /^r1 at http:\/\/127\.0\.0\.1:\d+\/v1$/);
    assert.equal(r.evals.teacher!.pass_at_1, 1);
    assert.equal(r.evals.teacher!.format_rate, 1);
    assert.ok(r.evals.student_before && r.evals.student_after);
    assert.equal(r.distilled, join(out, 'sft', 'final'));
    assert.equal(r.sft!.sft_steps, 3);
    const saved = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as DistillReport;
    assert.equal(saved.status, 'complete');

    // Rerunning the finished run asks the teacher nothing new and trains nothing.
    const before = srv.questions.length;
    const again = await runDistill({ ...common, out, teacherBaseUrl: srv.url });
    assert.equal(srv.questions.length, before);
    assert.deepEqual(again.evals.student_after, r.evals.student_after);
    assert.equal(line.teacher_settings.temperature, 0.6);
    assert.match(line.teacher, /^r1 at /);

    // Other sampling settings do not continue (and relabel) the old traces: refused, naming the setting ...
    await assert.rejects(
      runDistill({ ...common, out, teacherBaseUrl: srv.url, temperature: 0.9 }),
      (e: unknown) =>
        e instanceof AhaError &&
        /other settings: --temperature 0\.6 \(now 0\.9\): .*--fresh/.test(e.message) &&
        !e.message.includes('\n'),
    );
    await assert.rejects(
      runDistill({ ...common, out, teacherBaseUrl: srv.url, teacherModel: 'r2' }),
      /--teacher\/--teacher-model "server r1 \(chat\)" \(now "server r2 \(chat\)"\)/,
    );
    assert.equal(srv.questions.length, before, 'nothing asked');
    // ... and with fresh the traces are sampled again, with the new settings recorded on each.
    const fresh = await runDistill({ ...common, out, teacherBaseUrl: srv.url, temperature: 0.9, fresh: true });
    assert.equal(fresh.status, 'complete');
    assert.equal(srv.questions.length, before + 6 * 2 + 2, "6 prompts x 2 traces, then the teacher's evaluation");
    const relined = JSON.parse(readFileSync(join(out, 'teacher', 'data.jsonl'), 'utf8').split('\n')[0]);
    assert.equal(relined.teacher_settings.temperature, 0.9);
    assert.equal(JSON.parse(readFileSync(join(out, 'teacher', 'settings.json'), 'utf8')).temperature, 0.9);
  } finally {
    await srv.close();
  }
});

test('a teacher that keeps failing is reported, the traces gathered are kept, and a rerun asks only for the rest', async () => {
  // 4+4 is the 5th question; with concurrency 1 the prompts before it are done when it fails for good.
  const dead = await stubServer((body) =>
    body.messages[0].content.startsWith('4+4') ? overloaded : solve(body.messages[0].content),
  );
  const out = join(root, 'failing');
  let done = 0;
  try {
    await assert.rejects(
      runDistill({ ...common, out, teacherBaseUrl: dead.url, data: { path: dataFile }, evalProblems: 1 }),
      (e: unknown) => {
        const m =
          e instanceof AhaError
            ? /sampling failed after (\d+) of 7 prompts \((\d+) samples kept/.exec(e.message)
            : null;
        if (!m || !/failed after 3 attempts; last error: HTTP 503/.test((e as Error).message)) return false;
        done = Number(m[1]);
        return Number(m[2]) === 2 * done;
      },
    );
    assert.ok(done >= 3, `${done} prompts were done before 4+4`);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as DistillReport;
    assert.equal(report.status, 'teacher_failed');
    assert.match(report.teacher_error!, /HTTP 503/);
    assert.equal(report.data!.samples, 2 * done);
    const kept = readFileSync(join(out, 'teacher', 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(kept.length, 2 * done);
    assert.equal(existsSync(join(out, 'sft')), false, 'no training on a failed teacher');
  } finally {
    await dead.close();
  }
  const healthy = await stubServer((body) => solve(body.messages[0].content));
  try {
    const r = await runDistill({
      ...common,
      out,
      teacherBaseUrl: healthy.url,
      data: { path: dataFile },
      evalProblems: 1,
      evalTeacher: false,
    });
    assert.equal(r.status, 'complete');
    // Only the prompts still missing were asked (2 samples each).
    assert.equal(healthy.questions.length, 2 * (7 - done));
    assert.equal(r.data!.samples, 14);
  } finally {
    await healthy.close();
  }
});

test('bad invocations fail before anything is asked', async () => {
  await assert.rejects(runDistill({ ...common, out: join(root, 'x') } as never), /give exactly one teacher/);
  await assert.rejects(
    runDistill({ ...common, out: join(root, 'x'), teacherBaseUrl: 'http://127.0.0.1:1', teacherModel: undefined }),
    /needs --teacher-model/,
  );
  await assert.rejects(
    runDistill({ ...common, out: join(root, 'x'), teacher: join(root, 'nope') }),
    /--teacher .*nope: no config\.json/,
  );
  assert.equal(existsSync(join(root, 'x')), false);
});

test('a run stopped by an error says failed, with the error, in report.json (not interrupted)', async () => {
  // No trace is correct: the run fails after sampling.
  const out = join(root, 'all-wrong');
  const wrong = new FakeGenerator(() => ' <think>\nguess\n</think>\nThe answer is 99.', { name: 'wrong teacher' });
  await assert.rejects(
    runDistill({ ...common, out, teacherGenerator: wrong }),
    /^AhaError: distill: no trace of 12 was correct and readable/,
  );
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as DistillReport;
  assert.equal(rep.status, 'failed');
  assert.match(rep.error!, /^distill: no trace of 12 was correct and readable \(see .*report\.json\)$/);
  assert.deepEqual([rep.data!.samples, rep.data!.incorrect, rep.data!.kept], [12, 12, 0]);

  // The student's SFT options are wrong: the traces and the evaluation are done, then the run fails there.
  const right = new FakeGenerator((id) => ` <think>\n${id}\n</think>\nThe answer is ${eval(id)}.`, { name: 'right' });
  const out2 = join(root, 'bad-sft');
  const problems = {
    train: ['1+2', '3+4', '2+5'].map((q) => ({ id: q, question: q, answer: String(eval(q)) })),
    eval: [{ id: '1+1', question: '1+1', answer: '2' }],
  };
  await assert.rejects(
    runDistill({
      ...common,
      out: out2,
      problems,
      teacherGenerator: right,
      evalTeacher: false,
      sft: { learning_rate: 'high' },
    }),
    /learning_rate/,
  );
  const rep2 = JSON.parse(readFileSync(join(out2, 'report.json'), 'utf8')) as DistillReport;
  assert.equal(rep2.status, 'failed');
  assert.match(rep2.error!, /learning_rate/);
  assert.equal(rep2.data!.kept, 3);
  assert.ok(rep2.evals.student_before, 'the work before the failure is reported');
});

test('a bad --prompt, --teacher-prompt or --teacher-base-url fails before --out is made, naming the flag given', async () => {
  const out = join(root, 'bad-flags');
  const expectErr = async (extra: Record<string, unknown>, message: string) => {
    await assert.rejects(
      runDistill({ ...common, out, teacherBaseUrl: 'http://127.0.0.1:1', ...extra }),
      (e: unknown) => e instanceof AhaError && e.message === message,
      message,
    );
    assert.equal(existsSync(out), false, `${message}: no --out left behind`);
  };
  await expectErr(
    { prompt: 'Solve it' },
    "--prompt 'Solve it': expected r1-zero, r1-zero-short, chat, or a template with {question}",
  );
  await expectErr(
    { teacherPrompt: 'no slot' },
    "--teacher-prompt 'no slot': expected r1-zero, r1-zero-short, chat, or a template with {question}",
  );
  await expectErr(
    { teacherBaseUrl: 'ftp://teacher' },
    '--teacher-base-url ftp://teacher: expected http:// or https://',
  );
  await expectErr({ teacherBaseUrl: 'teacher:8000' }, '--teacher-base-url teacher:8000: expected http:// or https://');
  await expectErr({ teacherBaseUrl: 'not a url' }, '--teacher-base-url not a url: not a URL');
});
