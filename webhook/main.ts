// Entry point of the sabpf admission webhook: node dist/webhook/main.js --help

import { pino } from 'pino';

import { parseConfig, UsageError } from './config.js';
import { createLogger } from './log.js';
import { startWebhook } from './webhook.js';

/** How long in-flight admissions may take to finish after SIGTERM. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const help = process.argv.includes('--help');
    (help ? process.stdout : process.stderr).write(`${error.message}\n`);
    process.exitCode = help ? 0 : 2;
    return;
  }

  const log = createLogger(config.logLevel);
  let webhook;
  try {
    webhook = await startWebhook(config, log);
  } catch (error) {
    log.fatal({ err: error instanceof Error ? error.message : String(error) }, 'failed to start the webhook');
    process.exitCode = 1;
    return;
  }

  const shutdown = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stopping');
    setTimeout(() => {
      log.warn({ graceMs: SHUTDOWN_GRACE_MS }, 'in-flight requests did not finish in time; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS).unref();
    void webhook.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  pino({ name: 'sabpf-webhook' }).fatal({ err: error }, 'unexpected failure');
  process.exit(1);
});
