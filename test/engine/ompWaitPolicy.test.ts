// The OpenMP waiting policy set before the engine loads: passive with a short spin unless the user chose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { configureOmpWaitPolicy, PASSIVE_SPIN_COUNT } from '../../src/engine/ompWaitPolicy.ts';

test('default passive; a user setting kept; AHA_OMP_WAIT_POLICY overrides', () => {
  const cases: [NodeJS.ProcessEnv, string, string | undefined, string | undefined][] = [
    [{}, 'passive', 'PASSIVE', PASSIVE_SPIN_COUNT],
    [{ OMP_WAIT_POLICY: 'ACTIVE' }, 'kept', 'ACTIVE', undefined],
    [{ GOMP_SPINCOUNT: '5' }, 'kept', undefined, '5'],
    [{ AHA_OMP_WAIT_POLICY: 'active', GOMP_SPINCOUNT: '5' }, 'active', 'ACTIVE', undefined],
    [{ AHA_OMP_WAIT_POLICY: 'Passive', OMP_WAIT_POLICY: 'ACTIVE' }, 'passive', 'PASSIVE', PASSIVE_SPIN_COUNT],
    [{ AHA_OMP_WAIT_POLICY: 'keep' }, 'kept', undefined, undefined],
  ];
  for (const [env, choice, policy, spin] of cases) {
    const before = JSON.stringify(env);
    assert.equal(configureOmpWaitPolicy(env), choice, before);
    assert.equal(env.OMP_WAIT_POLICY, policy, before);
    assert.equal(env.GOMP_SPINCOUNT, spin, before);
  }
});

test('loading the engine sets the policy in the process environment, before libgomp reads it', () => {
  const script =
    "const { loadAddon } = await import('./src/engine/native.ts'); loadAddon(); " +
    'console.log(JSON.stringify([process.env.OMP_WAIT_POLICY ?? null, process.env.GOMP_SPINCOUNT ?? null]));';
  const env = { ...process.env };
  delete env.OMP_WAIT_POLICY;
  delete env.GOMP_SPINCOUNT;
  delete env.AHA_OMP_WAIT_POLICY;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), ['PASSIVE', PASSIVE_SPIN_COUNT]);
});
