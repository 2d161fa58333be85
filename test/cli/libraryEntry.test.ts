/**
 * `import ... from 'aha'`: the package's own name, resolved through package.json "exports" (a package can import
 * itself by name) in a separate Node process as a user's script would: the TypeScript sources under tsx (the
 * "aha-source" condition), and the compiled dist/ with plain Node when `npm run build` made it from these sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { RewardFn, VerifyAnswerResult } from 'aha';
import { freshDist } from '../../bin/freshDist.js';

const root = resolve(import.meta.dirname, '../..');

// A user's script: a built-in reward, the verifier, pass@k and the majority vote, by the package's name.
const script = `
import { accuracyReward, verifyAnswer, passAtK, majorityVote, AhaError, grpoTrain, loadPretrained } from 'aha';
const reward = accuracyReward();
const out = {
  reward: [await reward('so <answer>1/2</answer>', { answer: '0.5' }, { prompt: '' }),
           await reward('<answer>3</answer>', { answer: '4' }, { prompt: '' })],
  verify: verifyAnswer('\\\\frac{1}{2}', '0.5'),
  passAt2: passAtK(4, 1, 2),
  vote: majorityVote(['2', '2.0', '3']).answer,
  kinds: [typeof AhaError, typeof grpoTrain, typeof loadPretrained],
};
process.stdout.write(JSON.stringify(out));
`;

function check(args: string[]): void {
  const r = spawnSync(process.execPath, [...args, '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    reward: number[];
    verify: VerifyAnswerResult;
    passAt2: number;
    vote: string;
    kinds: string[];
  };
  assert.deepEqual(out.reward, [1, 0]);
  assert.equal(out.verify.equal, true);
  // pass@2 with 1 correct of 4: 1 - C(3,2)/C(4,2) = 1 - 3/6.
  assert.equal(out.passAt2, 0.5);
  assert.equal(out.vote, '2');
  assert.deepEqual(out.kinds, ['function', 'function', 'function']);
}

test("import from 'aha': the TypeScript sources, under tsx", () => {
  check(['--conditions=aha-source', '--import', 'tsx']);
});

test("import from 'aha': the compiled dist/ with plain Node", (t) => {
  if (!freshDist(root, 'index.js')) return t.skip('dist/ is not built from these sources (npm run build)');
  check([]);
});

test('the entry is typed: a reward written against its types', async () => {
  const { accuracyReward } = await import('../../src/index.ts');
  const halfCredit: RewardFn = async (c, e, ctx) => 0.5 * (await accuracyReward()(c, e, ctx));
  assert.equal(await halfCredit('<answer>7</answer>', { answer: '7' }, { prompt: '' }), 0.5);
});
