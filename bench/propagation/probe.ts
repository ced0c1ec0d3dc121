// The propagation benchmark's workload, run as a pod's command in the VM
// node: it opens FILE every INTERVAL_MS and writes one line to the serial
// console whenever the result changes. The host timestamps the flip with its
// own clock when the line arrives, so no clock is shared with the guest.
//
//   node dist/bench/propagation/probe.js FILE INTERVAL_MS
//
// Console lines: "SABPF-BENCH state allowed|denied|<errno code> attempts=N".
// It also answers the host's pings, for an upper bound on how long a line
// takes to reach the host: when /sabpf/bench-ping-<id> appears it writes
// "SABPF-BENCH pong <id>".

import { closeSync, existsSync, openSync, writeSync } from 'node:fs';

const PING_PREFIX = '/sabpf/bench-ping-';

function main(): void {
  const [file, intervalText] = process.argv.slice(2);
  const intervalMs = Number(intervalText);
  if (!file || !Number.isFinite(intervalMs) || intervalMs <= 0) {
    process.stderr.write('usage: probe.js FILE INTERVAL_MS\n');
    process.exit(2);
  }

  // Straight to the console device: the pod's stdout is a file in the VM
  // run's 9p share, which the host would have to poll.
  const consoleFd = openSync('/dev/console', 'w');
  const say = (text: string): void => {
    writeSync(consoleFd, `SABPF-BENCH ${text}\n`);
  };

  let state: string | undefined;
  let attempts = 0;
  let nextPing = 1;
  setInterval(() => {
    attempts += 1;
    let now: string;
    try {
      closeSync(openSync(file, 'r'));
      now = 'allowed';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      now = code === 'EPERM' ? 'denied' : code;
    }
    if (now !== state) {
      state = now;
      say(`state ${now} attempts=${attempts}`);
    }

    if (existsSync(`${PING_PREFIX}${nextPing}`)) {
      say(`pong ${nextPing}`);
      nextPing += 1;
    }
  }, intervalMs);

  process.once('SIGTERM', () => process.exit(0));
}

main();
