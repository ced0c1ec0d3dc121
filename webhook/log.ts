// Structured logs: one JSON object per line. Admission lines carry uid,
// endpoint, operation, kind, namespace and name (docs/webhook.md lists them),
// so a query for one request or one object finds all of its lines.

import { pino, type Logger, type LevelWithSilent } from 'pino';

export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({
    name: 'sabpf-webhook',
    level,
    // Defence in depth: no module logs keys or tokens, and these paths stay
    // censored if one ever passes such an object to the logger.
    redact: {
      paths: ['key', 'token', 'privateKey', '*.key', '*.token', '*.privateKey', 'annotations', '*.annotations'],
      censor: '[redacted]',
    },
  });
}
