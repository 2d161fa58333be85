// The parts of data-parallel training that need no MPI: rank detection, thread shares, the missing-addon message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { bucketFloats, configureRankThreads, worldSize } from '../../src/parallel/dataParallel.ts';
import { repo } from './mpiRun.ts';

test('the world size comes from Open MPI environment, 1 without mpirun', () => {
  assert.equal(worldSize({}), 1);
  assert.equal(worldSize({ OMPI_COMM_WORLD_SIZE: '4' }), 4);
  assert.equal(worldSize({ OMPI_COMM_WORLD_SIZE: 'x' }), 1);
});

test('each rank gets its share of the cores unless told otherwise', () => {
  const env: NodeJS.ProcessEnv = { OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_SIZE: '2' };
  configureRankThreads(env, 16);
  assert.equal(env.OMP_NUM_THREADS, '8', '16 cores, 2 ranks on this node');
  const set: NodeJS.ProcessEnv = { OMPI_COMM_WORLD_SIZE: '2', OMP_NUM_THREADS: '3' };
  configureRankThreads(set, 16);
  assert.equal(set.OMP_NUM_THREADS, '3');
  const over: NodeJS.ProcessEnv = { OMPI_COMM_WORLD_SIZE: '2', OMP_NUM_THREADS: '3', AHA_THREADS_PER_RANK: '5' };
  configureRankThreads(over, 16);
  assert.equal(over.OMP_NUM_THREADS, '5');
  const one: NodeJS.ProcessEnv = {};
  configureRankThreads(one, 16);
  assert.equal(one.OMP_NUM_THREADS, undefined, 'one process: left alone');
  const tiny: NodeJS.ProcessEnv = { OMPI_COMM_WORLD_SIZE: '8' };
  configureRankThreads(tiny, 2);
  assert.equal(tiny.OMP_NUM_THREADS, '1');
});

test('ranks asked for without the MPI addon: one line saying how to get it', () => {
  const r = spawnSync(
    'node',
    [
      '--import',
      'tsx',
      '-e',
      "import('./src/parallel/dataParallel.ts').then((m) => m.dataParallel()).catch((e) => { console.error(e.message); process.exit(1); })",
    ],
    {
      cwd: repo,
      env: { ...process.env, OMPI_COMM_WORLD_SIZE: '2', AHA_MPI_ADDON: '/nonexistent/aha_mpi.node' },
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 1);
  assert.equal(
    r.stderr.trim(),
    '2 ranks asked for, but aha was built without MPI: install libopenmpi-dev and rebuild (npm run build:native)',
  );
});

test('all-reduce buckets: AHA_ALLREDUCE_BUCKET_MB in MiB of float32, else the whole buffer in one call', () => {
  assert.equal(bucketFloats({}), Number.MAX_SAFE_INTEGER);
  assert.equal(bucketFloats({ AHA_ALLREDUCE_BUCKET_MB: '1' }), 262144);
  assert.equal(bucketFloats({ AHA_ALLREDUCE_BUCKET_MB: '0.5' }), 131072);
  assert.equal(bucketFloats({ AHA_ALLREDUCE_BUCKET_MB: '0' }), Number.MAX_SAFE_INTEGER);
  assert.equal(bucketFloats({ AHA_ALLREDUCE_BUCKET_MB: 'x' }), Number.MAX_SAFE_INTEGER);
});
