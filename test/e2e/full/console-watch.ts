// Reads the VM's serial console as lines, stamped with the host's clock when
// they arrive. The guest prints "SABPF-E2E <event>" markers (guest-node.sh)
// and the benchmark probe prints "SABPF-BENCH ..." lines. The host follows
// the guest by waiting for them, so it needs no clock shared with the guest.

import { performance } from 'node:perf_hooks';

export interface ConsoleLine {
  text: string;
  /** performance.now() on the host when the line's last chunk arrived. */
  at: number;
}

type Waiter = { pattern: RegExp; resolve: (line: ConsoleLine) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

export class ConsoleWatch {
  readonly lines: ConsoleLine[] = [];
  private partial = '';
  private waiters: Waiter[] = [];
  private listeners: ((line: ConsoleLine) => void)[] = [];
  private ended: string | undefined;

  /** Feed with runInVm's onConsole chunks. */
  push(chunk: string): void {
    const at = performance.now();
    const parts = (this.partial + chunk.replace(/\r/g, '')).split('\n');
    this.partial = parts.pop() ?? '';
    for (const text of parts) this.emit({ text, at });
  }

  /** Called when the VM has exited: pending and later waits fail with `reason`. */
  end(reason: string): void {
    if (this.partial !== '') this.emit({ text: this.partial, at: performance.now() });
    this.partial = '';
    this.ended = reason;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`failed to see a console line matching ${waiter.pattern}: ${reason}`));
    }
  }

  /** Calls listener for every line from now on; returns a function that removes it. */
  onLine(listener: (line: ConsoleLine) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Resolves with the first line from index `since` on that matches, seen already or arriving later. Rejects after timeoutMs or when the VM ends. */
  waitFor(pattern: RegExp, timeoutMs: number, since = 0): Promise<ConsoleLine> {
    const seen = this.lines.slice(since).find((line) => pattern.test(line.text));
    if (seen) return Promise.resolve(seen);
    if (this.ended !== undefined) return Promise.reject(new Error(`failed to see a console line matching ${pattern}: ${this.ended}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(`timed out after ${timeoutMs / 1000}s waiting for a console line matching ${pattern}; console tail:\n${this.tail()}`),
        );
      }, timeoutMs);
      const waiter: Waiter = { pattern, resolve, reject, timer };
      this.waiters.push(waiter);
    });
  }

  tail(count = 30): string {
    return this.lines
      .slice(-count)
      .map((line) => line.text)
      .join('\n');
  }

  private emit(line: ConsoleLine): void {
    this.lines.push(line);
    for (const listener of [...this.listeners]) listener(line);
    for (const waiter of [...this.waiters]) {
      if (!waiter.pattern.test(line.text)) continue;
      clearTimeout(waiter.timer);
      this.waiters = this.waiters.filter((w) => w !== waiter);
      waiter.resolve(line);
    }
  }
}
