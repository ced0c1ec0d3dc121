// One long-running control plane server (etcd or kube-apiserver) started as
// the leader of its own process group, with its output in a log file.

import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';

import { registerExitCleanup } from './exit-cleanup.js';

export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  name: string;
  pid: number;
  logPath: string;
  exited: Promise<ServerExit>;
  hasExited(): boolean;
  logTail(lines?: number): string;
  stop(graceMs?: number): Promise<void>;
}

// util-linux setpriv sets the parent-death signal to SIGKILL, so the server
// dies with this Node process even when a SIGKILL of the test runner skips
// every handler. Without setpriv the exit handlers still cover other exits.
const setprivPath = '/usr/bin/setpriv';

export function startServerProcess(name: string, command: string, args: readonly string[], logPath: string): ServerProcess {
  const logFd = openSync(logPath, 'a');
  const [file, fileArgs] = existsSync(setprivPath) ? [setprivPath, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, [...args]];

  // detached makes the server a process group leader, so stop() can signal
  // the whole group, including anything the server itself forks.
  const child = spawn(file, fileArgs, { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);

  const pid = child.pid;
  if (pid === undefined) {
    throw new Error(`failed to start ${name} from ${command}: spawn returned no pid`);
  }

  let exitInfo: ServerExit | undefined;
  const exited = new Promise<ServerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.once('error', (error) => {
      exitInfo = { code: null, signal: null };
      appendToLog(logPath, `failed to run ${command}: ${error.message}`);
      resolve(exitInfo);
    });
  });

  const unregister = registerExitCleanup(() => {
    if (exitInfo === undefined) killGroup(pid, 'SIGKILL');
  });
  void exited.then(unregister);

  const server: ServerProcess = {
    name,
    pid,
    logPath,
    exited,
    hasExited: () => exitInfo !== undefined,
    logTail: (lines = 40) => tailFile(logPath, lines),
    // Signals go to the group only while the leader is unreaped: once it is
    // reaped, its pid (and so the group id) may belong to another process.
    stop: async (graceMs = 10_000) => {
      if (exitInfo === undefined) {
        killGroup(pid, 'SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), delay(graceMs).then(() => true)]);
        if (timedOut && exitInfo === undefined) killGroup(pid, 'SIGKILL');
        await exited;
      }
      unregister();
    },
  };
  return server;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: the group is already empty, which is the goal.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function tailFile(path: string, lines: number): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(failed to read ${path}: ${(error as Error).message})`;
  }
}

// The spawn error (say, ENOENT for the binary) would otherwise appear only
// on stderr of the test runner, not in the log whose tail errors quote.
function appendToLog(path: string, line: string): void {
  try {
    appendFileSync(path, `${line}\n`);
  } catch {
    // The error still reaches the caller through the exit status.
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}
