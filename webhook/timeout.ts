// Deadlines for work the webhook waits on.

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * Resolves or rejects as the promise does, or rejects with TimeoutError after
 * timeoutMs. The work itself goes on: JavaScript cannot cancel a promise, and
 * callers that can stop the work (an HTTP request) must do so themselves.
 */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, action: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${timeoutMs} ms waiting to ${action}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
