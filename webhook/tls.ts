// The serving certificate and key. Both are re-read periodically so a
// certificate rotated by cert-manager (or any writer of the mounted Secret)
// is served without a restart.

import { readFile } from 'node:fs/promises';
import type { Server } from 'node:https';

import type { Logger } from 'pino';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

export async function readTlsFiles(certPath: string, keyPath: string): Promise<TlsFiles> {
  const read = async (path: string, kind: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new Error(`failed to read the TLS ${kind} ${path}: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
  };
  return { cert: await read(certPath, 'certificate'), key: await read(keyPath, 'private key') };
}

/**
 * Re-reads the files every intervalMs and installs them when they changed.
 * A failed read or a bad pair keeps the previous certificate and is logged.
 * Returns a function that stops the reloads.
 */
export function reloadTlsPeriodically(
  server: Server,
  paths: { certPath: string; keyPath: string },
  current: TlsFiles,
  log: Logger,
  intervalMs: number,
): () => void {
  let installed = current;
  const timer = setInterval(() => {
    void (async () => {
      try {
        const next = await readTlsFiles(paths.certPath, paths.keyPath);
        if (next.cert.equals(installed.cert) && next.key.equals(installed.key)) return;
        server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
        installed = next;
        log.info({ certPath: paths.certPath }, 'installed a new serving certificate');
      } catch (error) {
        log.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'failed to reload the serving certificate; keeping the previous one',
        );
      }
    })();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
