/**
 * Runs one untrusted command in a bubblewrap sandbox: its own user, pid, network, ipc, uts and mount namespaces
 * (no network at all, not even loopback to the host), a read-only view of /usr (plus the /bin, /lib symlinks,
 * /etc/alternatives and /etc/ld.so.cache), a fresh size-capped tmpfs as /tmp and working directory, the run's own
 * directory at /sandbox, an environment of a few fixed variables, and rlimits (CPU seconds, address space,
 * processes, file size, no core files) set by prlimit inside the sandbox. Where the parent is root the sandbox runs
 * as a uid of its own per pool slot (setpriv), so the process limit is per run and nothing it does acts as root.
 * The wall-clock limit and the output cap kill the whole tree: bwrap dies with its parent's kill, and with it the
 * pid namespace and everything in it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { AhaError } from '../errors.ts';

/** `bwrap`: the sandbox above; `none`: the same limits without isolation (only when a recipe says so explicitly). */
export type SandboxMode = 'bwrap' | 'none';

/** Where the run's directory appears inside the sandbox. */
export const SANDBOX_DIR = '/sandbox';

/** One command to run. */
export interface SandboxRun {
  /** The command, given the run directory's path as the command sees it. */
  argv: (dir: string) => string[];
  /** Host directory shown at {@link SANDBOX_DIR} (read-only unless `writable`). */
  dir: string;
  writable?: boolean;
  stdin?: string;
  timeoutS: number;
  cpuS: number;
  /** Address-space limit in MiB. */
  addressSpaceMb: number;
  maxProcesses: number;
  /** Cap on each of stdout and stderr, in bytes. */
  maxOutputBytes: number;
  /** Size of the writable /tmp, in MiB (also the largest file the program may write). */
  tmpMb?: number;
  /** Pool slot of the run: where the parent is root, the sandbox's host uid is derived from it. */
  slot: number;
  mode: SandboxMode;
  /** Extra host paths bound read-only at the same place (a Node installed outside /usr). */
  roBinds?: readonly string[];
}

/** What a run did. */
export interface SandboxOutcome {
  /** Exit status (a death by signal N inside the sandbox reads as 128 + N, as bwrap reports it). */
  exitCode: number | null;
  /** Signal number the command died of (from 128 + N, or the signal itself without the sandbox). */
  signal: number | null;
  stdout: string;
  stderr: string;
  /** Killed at the wall-clock limit. */
  timedOut: boolean;
  /** Killed for writing more than maxOutputBytes to stdout or stderr. */
  outputExceeded: boolean;
  ms: number;
}

const ENV: Record<string, string> = {
  PATH: '/usr/bin:/bin',
  HOME: '/tmp',
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
  PYTHONDONTWRITEBYTECODE: '1',
  OPENBLAS_NUM_THREADS: '1',
  OMP_NUM_THREADS: '1',
};

function which(name: string): string | null {
  for (const d of ['/usr/bin', '/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(delimiter)]) {
    if (d === '') continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Host uid of a pool slot where the parent is root: a block of 256 per parent process, so two judging processes
 * rarely share one (they would only share the process-count limit, never files or signals).
 */
export function slotUid(slot: number): number {
  return 1_000_000 + (process.pid % 4096) * 256 + (slot % 256);
}

/** The root filesystem's top-level entries the runtimes need: symlinks into /usr stay symlinks, real dirs are bound. */
function rootfsArgs(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const top of ['/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32']) {
    if (!existsSync(top)) continue;
    const st = lstatSync(top);
    if (st.isSymbolicLink()) {
      const target = spawnSync('readlink', [top], { encoding: 'utf8' }).stdout.trim();
      if (target !== '') args.push('--symlink', target, top);
    } else args.push('--ro-bind', top, top);
  }
  args.push('--ro-bind-try', '/etc/alternatives', '/etc/alternatives');
  args.push('--ro-bind-try', '/etc/ld.so.cache', '/etc/ld.so.cache');
  return args;
}

let rootfs: string[] | null = null;

/** The full command line (program and arguments) that runs `run` on the host. */
export function sandboxCommand(run: SandboxRun, tools: SandboxTools): { cmd: string; args: string[]; cwd?: string } {
  const limits = [
    `--cpu=${run.cpuS}:${run.cpuS + 1}`,
    `--as=${run.addressSpaceMb * 1024 * 1024}`,
    `--nproc=${run.maxProcesses}`,
    `--fsize=${(run.tmpMb ?? 64) * 1024 * 1024}`,
    '--core=0',
    '--nofile=256',
  ];
  if (run.mode === 'none') {
    return { cmd: tools.prlimit, args: [...limits, '--', ...run.argv(run.dir)], cwd: run.dir };
  }
  rootfs ??= rootfsArgs();
  const bw = [
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--die-with-parent',
    '--new-session',
    '--json-status-fd',
    '3',
    '--cap-drop',
    'ALL',
    '--hostname',
    'sandbox',
    ...rootfs,
    ...(run.roBinds ?? []).flatMap((p) => ['--ro-bind', p, p]),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--size',
    String((run.tmpMb ?? 64) * 1024 * 1024),
    '--tmpfs',
    '/tmp',
    run.writable ? '--bind' : '--ro-bind',
    run.dir,
    SANDBOX_DIR,
    '--remount-ro',
    '/',
    '--chdir',
    '/tmp',
    '--clearenv',
    ...Object.entries(ENV).flatMap(([k, v]) => ['--setenv', k, v]),
    '--uid',
    '65534',
    '--gid',
    '65534',
    '--',
    tools.prlimit,
    ...limits,
    '--',
    ...run.argv(SANDBOX_DIR),
  ];
  if (tools.setpriv) {
    const uid = String(slotUid(run.slot));
    return {
      cmd: tools.setpriv,
      args: ['--reuid', uid, '--regid', uid, '--clear-groups', '--inh-caps=-all', '--', tools.bwrap!, ...bw],
    };
  }
  return { cmd: tools.bwrap!, args: bw };
}

/** The host programs a sandbox needs, found once. */
export interface SandboxTools {
  bwrap: string | null;
  prlimit: string;
  /** Used to drop to the slot's uid where the parent is root. */
  setpriv: string | null;
}

let probed: Promise<SandboxTools> | null = null;

/**
 * Checks once per process that sandboxed runs work (bwrap installed, user namespaces allowed, the drop to an
 * unprivileged uid possible); throws a one-line AhaError saying which is missing otherwise. With mode 'none' only
 * prlimit is required.
 */
export function sandboxTools(mode: SandboxMode): Promise<SandboxTools> {
  if (mode === 'none') {
    const prlimit = which('prlimit');
    if (!prlimit) return Promise.reject(new AhaError('the judge needs prlimit (util-linux), which is not installed'));
    return Promise.resolve({ bwrap: null, prlimit, setpriv: null });
  }
  probed ??= probeSandbox(which('bwrap'));
  return probed;
}

const REFUSE = "refusing to run model-written code (a recipe may set sandbox: 'none' to run it unsandboxed)";

/** Checks that `bwrap` (its path, or null when not installed) can run a sandbox here; see {@link sandboxTools}. */
export async function probeSandbox(bwrap: string | null): Promise<SandboxTools> {
  if (!bwrap)
    throw new AhaError(
      `the code sandbox needs bubblewrap, which is not installed (apt-get install bubblewrap); ${REFUSE}`,
    );
  const prlimit = which('prlimit');
  if (!prlimit) throw new AhaError(`the code sandbox needs prlimit (util-linux), which is not installed; ${REFUSE}`);
  let setpriv: string | null = null;
  if (isRoot()) {
    setpriv = which('setpriv');
    if (!setpriv)
      throw new AhaError(`the code sandbox needs setpriv (util-linux) to drop root, which is not installed; ${REFUSE}`);
  }
  const tools = { bwrap, prlimit, setpriv };
  const { cmd, args } = sandboxCommand(
    {
      argv: () => ['/usr/bin/true'],
      dir: '/usr/share',
      timeoutS: 10,
      cpuS: 5,
      addressSpaceMb: 256,
      maxProcesses: 8,
      maxOutputBytes: 4096,
      slot: 0,
      mode: 'bwrap',
    },
    tools,
  );
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: 15_000,
    env: {},
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0];
    throw new AhaError(`the code sandbox does not work here (user namespaces refused?): ${why}; ${REFUSE}`);
  }
  return tools;
}

/** Runs one command under the sandbox (or, with mode 'none', under the limits alone). Never throws for what it runs. */
export function runSandboxed(run: SandboxRun, tools: SandboxTools): Promise<SandboxOutcome> {
  const { cmd, args, cwd } = sandboxCommand(run, tools);
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: run.mode === 'none' ? ENV : {},
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    // bwrap reports the host pid of the sandbox's init on fd 3: killing it ends the pid namespace, and bwrap,
    // still alive, reaps it (killing bwrap instead would leave the init's zombie to whatever reaps orphans).
    let sandboxInit: number | null = null;
    let status = '';
    (child.stdio[3] as NodeJS.ReadableStream | null)?.on('data', (b: Buffer) => {
      status += b.toString('utf8');
      const m = /"child-pid"\s*:\s*(\d+)/.exec(status);
      if (m) sandboxInit = Number(m[1]);
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let outputExceeded = false;
    let dead = false;
    let fallback: NodeJS.Timeout | undefined;
    const killGroup = () => {
      if (dead || child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const killTree = () => {
      if (dead || fallback) return;
      if (sandboxInit === null) return killGroup();
      try {
        process.kill(sandboxInit, 'SIGKILL');
      } catch {
        // already gone
      }
      fallback = setTimeout(killGroup, 1000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
    }, run.timeoutS * 1000);
    const collect = (chunks: Buffer[], which: 'out' | 'err') => (b: Buffer) => {
      if (outputExceeded) return;
      const total = which === 'out' ? (outBytes += b.length) : (errBytes += b.length);
      if (total > run.maxOutputBytes) {
        outputExceeded = true;
        killTree();
        return;
      }
      chunks.push(b);
    };
    child.stdout.on('data', collect(out, 'out'));
    child.stderr.on('data', collect(err, 'err'));
    child.stdin.on('error', () => {}); // a program that never reads its input closes the pipe early
    child.stdin.end(run.stdin ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new AhaError(`cannot start the sandbox (${cmd}): ${e.message}`));
    });
    child.on('close', (code, sig) => {
      dead = true;
      clearTimeout(timer);
      clearTimeout(fallback);
      // The group may still hold stray processes when bwrap is not used; the sandbox's pid namespace has none.
      if (run.mode === 'none' && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // none left
        }
      }
      const outcome = (): SandboxOutcome => {
        let signal: number | null = null;
        if (sig) signal = (constantsSignals as Record<string, number>)[sig] ?? null;
        else if (code !== null && code > 128 && code <= 128 + 64) signal = code - 128;
        return {
          exitCode: code,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut,
          outputExceeded,
          ms: performance.now() - start,
        };
      };
      // bwrap may exit before its init has finished tearing the pid namespace down; the run is over when the init
      // is a zombie (every process of the namespace reaped) or gone.
      if (sandboxInit === null) resolve(outcome());
      else void namespaceGone(sandboxInit).then(() => resolve(outcome()));
    });
  });
}

const constantsSignals = osConstants.signals;

async function namespaceGone(initPid: number, maxMs = 5000): Promise<void> {
  const until = performance.now() + maxMs;
  for (;;) {
    let state: string;
    try {
      state = /\) (\S)/.exec(readFileSync(`/proc/${initPid}/stat`, 'utf8'))?.[1] ?? 'Z';
    } catch {
      return;
    }
    if (state === 'Z' || state === 'X' || performance.now() > until) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Where a runtime installed outside /usr lives (its prefix), to bind read-only into the sandbox; null under /usr. */
export function prefixOutsideUsr(executable: string): string | null {
  if (executable.startsWith('/usr/')) return null;
  return dirname(dirname(executable));
}
