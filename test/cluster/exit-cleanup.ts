// Last-resort cleanup when the test process ends without calling stop():
// an uncaught error, process.exit(), Ctrl-C or a SIGTERM from CI. Only
// synchronous work runs at exit, so handlers kill with SIGKILL and remove
// directories with rmSync.

type CleanupHandler = () => void;

const handlers = new Set<CleanupHandler>();
const signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let installed = false;

export function registerExitCleanup(handler: CleanupHandler): () => void {
  install();
  handlers.add(handler);
  return () => {
    handlers.delete(handler);
  };
}

function runHandlers(): void {
  for (const handler of [...handlers]) {
    handlers.delete(handler);
    try {
      handler();
    } catch {
      // A failing handler must not stop the others from running.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runHandlers();

  // A listener on a signal replaces Node's default of exiting. Unless another
  // listener handles it, re-raise so the process still ends by that signal.
  process.removeListener(signal, onSignal);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runHandlers);
  for (const signal of signals) process.on(signal, onSignal);
}
