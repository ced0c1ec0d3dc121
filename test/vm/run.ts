// Run one shell script as root inside a throw-away QEMU VM (Debian 6.1 kernel
// by default, or 5.10 or 6.12; BPF LSM on) and report the script's own exit status.
//
// Inside the guest (busybox ash):
//   network               loopback only; with `network`, also one forward to the host API server
//   cwd and $SABPF_SHARE  shareDir, mounted read-only at the same path as on the host
//   $SABPF_OUT            /sabpf/out, writable; it is `outputs` on the host
//   mounted               proc, sys, devtmpfs, cgroup2 at /sys/fs/cgroup, bpffs at
//                         /sys/fs/bpf, securityfs, tracefs, debugfs
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { join, resolve } from 'node:path';

import { prepareVmImages, type KernelLine } from './images.js';
import { projectRoot, vmOutDir } from './paths.js';
import { qemuArgs, type VmNetwork } from './qemu.js';

export { KERNEL_LINES, type KernelLine } from './images.js';
export { GUEST_API_SERVER_ADDRESS, GUEST_API_SERVER_PORT, type VmNetwork } from './qemu.js';

export interface VmRunOptions {
  /** POSIX shell script (busybox ash) run as root in the guest. */
  script: string;
  /** Host directory shared read-only into the guest. Default: the project root. */
  shareDir?: string;
  /** Host directory for this run's files. Default: a new test/vm/out/runs/<id>/. */
  runDir?: string;
  /** Kill QEMU and reject after this long. Default: 300 000 ms. */
  timeoutMs?: number;
  /** Guest memory. Default: 2048 MiB. */
  memoryMb?: number;
  /** Guest vCPUs. Default: 2, or 1 with icount. */
  cpus?: number;
  /** Called with each chunk of console output as it arrives (for live logs). */
  onConsole?: (chunk: string) => void;
  /**
   * Opt-in: a virtio NIC whose only reachable destination is
   * 10.0.2.100:6443, forwarded to 127.0.0.1:apiServerPort on the host.
   * The guest script brings the interface up (eth0, 10.0.2.15/24).
   * Default: no network device.
   */
  network?: VmNetwork;
  /** Debian kernel to boot. Default: '6.1'. */
  kernel?: KernelLine;
  /** Count instructions instead of time (QEMU -icount, see qemu.ts). Default: false. */
  icount?: boolean;
  /** Run every vCPU in one host thread (see qemu.ts). Default: false, one thread per vCPU. */
  singleThread?: boolean;
  /** Extra kernel command-line parameters, such as preempt=full. Default: none. */
  kernelParams?: string[];
  /** Aborting kills QEMU; runInVm then rejects. For callers that end a long-running guest early. */
  signal?: AbortSignal;
}

export interface VmRunResult {
  /** Exit status of the guest script (not of QEMU). */
  exitCode: number;
  /** Whole serial console: boot messages and the script's stdout and stderr. */
  console: string;
  /** Host path of the guest's $SABPF_OUT. */
  outputs: string;
  /** Host path of the raw console log. */
  consoleLog: string;
  /** Wall time from QEMU start to QEMU exit. */
  durationMs: number;
}

/** Error thrown when the guest outlives timeoutMs, after QEMU has been killed. */
export class VmTimeoutError extends Error {
  constructor(
    readonly timeoutMs: number,
    readonly consoleTail: string,
  ) {
    super(
      `failed to finish the VM run within ${timeoutMs} ms: QEMU was killed; raise timeoutMs if the script is slow under TCG. Console tail:\n${consoleTail}`,
    );
    this.name = 'VmTimeoutError';
  }
}

const exitMarker = /^SABPF-EXIT (\d+)\s*$/m;
const tailLines = 40;

export async function runInVm(options: VmRunOptions): Promise<VmRunResult> {
  const shareDir = checkShareDir(resolve(options.shareDir ?? projectRoot));
  const runDir = resolve(options.runDir ?? (await newRunDir()));
  const outputs = join(runDir, 'out');
  const consoleLog = join(runDir, 'console.log');
  const timeoutMs = options.timeoutMs ?? 300_000;

  // A reused runDir must not hand back the previous run's status.
  await rm(join(runDir, 'exit-code'), { force: true });
  await mkdir(outputs, { recursive: true });
  await writeFile(join(runDir, 'script.sh'), options.script, { mode: 0o755 });

  const images = await prepareVmImages(options.kernel);
  const args = qemuArgs({
    images,
    runDir,
    shareDir,
    memoryMb: options.memoryMb ?? 2048,
    cpus: options.cpus ?? (options.icount === true ? 1 : 2),
    ...(options.network ? { network: options.network } : {}),
    icount: options.icount === true,
    singleThread: options.singleThread === true,
    ...(options.kernelParams ? { kernelParams: options.kernelParams } : {}),
  });

  // Kept beside the console, so a run's files show how QEMU ran it (one TCG thread or one per vCPU).
  await writeFile(join(runDir, 'qemu-args'), `${args.join('\n')}\n`);
  const started = Date.now();
  const consoleText = await runQemu(args, consoleLog, timeoutMs, options.onConsole, options.signal);
  const durationMs = Date.now() - started;

  const exitCode = await readExitCode(runDir, consoleText);
  return { exitCode, console: consoleText, outputs, consoleLog, durationMs };
}

// The share is mounted at its own host path inside the guest, so it must not
// land on a directory that init.sh or the guest's tools own.
function checkShareDir(dir: string): string {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(dir)) {
    throw new Error(
      `failed to share ${JSON.stringify(dir)} into the VM: the path goes on the kernel command line, so use only letters, digits and . _ - /`,
    );
  }
  const reserved = ['/proc', '/sys', '/dev', '/run', '/sabpf', '/usr', '/etc', '/bin', '/sbin', '/lib', '/lib64'];
  if (dir === '/' || reserved.some((r) => dir === r || dir.startsWith(`${r}/`))) {
    throw new Error(
      `failed to share ${dir} into the VM: it would hide the guest's own ${dir}; share a directory outside ${reserved.join(' ')}`,
    );
  }
  return dir;
}

// Run directories are named by start time, so name order is age order. Only
// the newest are kept because each contains a console log and whatever the
// guest wrote.
const keptRuns = 30;

/** Creates test/vm/out/runs/<time>-<id>/ and prunes the oldest runs; for callers that put input files in a run before it starts. */
export async function newRunDir(): Promise<string> {
  const runsDir = join(vmOutDir, 'runs');
  await mkdir(runsDir, { recursive: true });
  const old = (await readdir(runsDir)).sort().slice(0, -(keptRuns - 1));
  await Promise.all(old.map((name) => rm(join(runsDir, name), { recursive: true, force: true })));

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const suffix = Math.random().toString(36).slice(2, 8);
  const dir = join(runsDir, `${stamp}-${suffix}`);
  await mkdir(dir);
  return dir;
}

function runQemu(
  args: string[],
  consoleLog: string,
  timeoutMs: number,
  onConsole: ((chunk: string) => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const log = createWriteStream(consoleLog);
    const chunks: string[] = [];
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });

    // The cores are shared with builds, so a VM may run slower but must not
    // starve them.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, 10);
      } catch {
        // Lowering priority is a courtesy. A run is still valid without it.
      }
    }

    const killOnExit = (): void => {
      child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      child.kill('SIGKILL');
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    const onData = (data: Buffer): void => {
      const text = data.toString('utf8');
      chunks.push(text);
      log.write(data);
      onConsole?.(text);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);

    child.on('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      process.removeListener('exit', killOnExit);
      log.end();
      reject(new Error(`failed to start qemu-system-x86_64: ${err.message}; run test/vm/deps.sh`));
    });

    child.on('close', (code, exitSignal) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      process.removeListener('exit', killOnExit);
      log.end();
      const text = cleanConsole(chunks.join(''));
      if (timedOut) {
        reject(new VmTimeoutError(timeoutMs, tail(text)));
      } else if (aborted) {
        reject(new Error(`failed to finish the VM run: the caller aborted it and QEMU was killed. Console tail:\n${tail(text)}`));
      } else if (code !== 0) {
        reject(new Error(`failed to run the VM: qemu-system-x86_64 exited with ${code ?? exitSignal}. Console tail:\n${tail(text)}`));
      } else {
        resolvePromise(text);
      }
    });
  });
}

// SeaBIOS and the serial line add terminal escapes and carriage returns that
// only get in the way of matching script output.
function cleanConsole(text: string): string {
  return text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/\x1bc/g, '')
    .replace(/\r/g, '');
}

function tail(text: string): string {
  return text.split('\n').slice(-tailLines).join('\n');
}

// The exit-code file is authoritative, and the console marker covers a run
// share that failed to mount. Neither means the guest died before the script
// ended.
async function readExitCode(runDir: string, consoleText: string): Promise<number> {
  try {
    const text = (await readFile(join(runDir, 'exit-code'), 'utf8')).trim();
    if (/^\d+$/.test(text)) {
      return Number(text);
    }
  } catch {
    // Fall through to the console marker.
  }
  const marker = exitMarker.exec(consoleText);
  if (marker?.[1] !== undefined) {
    return Number(marker[1]);
  }
  throw new Error(
    `failed to get the script's exit status from the VM: the guest stopped without writing ${join(runDir, 'exit-code')} or printing "SABPF-EXIT"; it may have panicked. Console tail:\n${tail(consoleText)}`,
  );
}
