/**
 * `aha` imports only the command it runs (src/cli/registry.ts): the list `aha --help` shows must say what each
 * command's own module says, and a command's help must be its full one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { COMMANDS, invokedCommand } from '../../src/cli/registry.ts';

const root = resolve(import.meta.dirname, '../..');
const aha = (args: string[]) =>
  spawnSync(process.execPath, [resolve(root, 'bin/aha.js'), ...args], { cwd: root, encoding: 'utf8' });

test('each listed command has the name and description its module registers', async () => {
  for (const entry of COMMANDS) {
    const program = new Command();
    (await entry.load())(program);
    assert.equal(program.commands.length, 1, entry.name);
    const cmd = program.commands[0];
    assert.equal(cmd.name(), entry.name);
    assert.equal(cmd.description(), entry.description, `${entry.name}: description differs from its module's`);
  }
  assert.equal(new Set(COMMANDS.map((c) => c.name)).size, COMMANDS.length);
});

test('the command an argument list runs or asks help for', () => {
  assert.equal(invokedCommand(['grpo', '--config', 'r.yaml']), 'grpo');
  assert.equal(invokedCommand(['help', 'eval']), 'eval');
  assert.equal(invokedCommand(['--help']), undefined);
  assert.equal(invokedCommand(['-V']), undefined);
  assert.equal(invokedCommand(['help']), undefined);
  assert.equal(invokedCommand(['verify', '--input', '-']), 'verify');
});

test('aha --help lists every command; a command help is its full one; --version', async () => {
  const top = aha(['--help']);
  assert.equal(top.status, 0, top.stderr);
  for (const c of COMMANDS) assert.match(top.stdout, new RegExp(`^  ${c.name} \\[options\\] `, 'm'), c.name);
  assert.match(top.stdout, /^ {2}help \[command\]/m);

  // The help of grpo as grpo's module defines it, whichever way it is asked for.
  const program = new Command().name('aha');
  const grpo = COMMANDS.find((c) => c.name === 'grpo')!;
  (await grpo.load())(program);
  // The help as printed, with any text the module adds around it.
  let expected = '';
  program.commands[0].configureOutput({ writeOut: (s) => (expected += s) }).outputHelp();
  for (const args of [
    ['grpo', '--help'],
    ['help', 'grpo'],
  ]) {
    const r = aha(args);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected, args.join(' '));
    assert.match(r.stdout, /--config <file>/);
  }
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string };
  const v = aha(['--version']);
  assert.equal(v.stdout.trim(), pkg.version);
  const bad = aha(['grpoo']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown command 'grpoo'/);
});
