// Free TCP ports on 127.0.0.1 for the control plane to listen on.

import { createServer, type Server } from 'node:net';

const loopback = '127.0.0.1';

// Keeps every listener open until all ports are chosen, so one call never
// returns the same port twice.
// NOTE: another process may still take a port before the server binds it.
// The start then fails with "address already in use" in the server log.
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let index = 0; index < count; index += 1) {
      const server = createServer();
      servers.push(server);
      ports.push(await listenOnAnyPort(server));
    }
    return ports;
  } finally {
    await Promise.all(servers.map(closeServer));
  }
}

function listenOnAnyPort(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, loopback, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error(`failed to read the port of a listener on ${loopback}: got ${String(address)}`));
        return;
      }
      resolve(address.port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
