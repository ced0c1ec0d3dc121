// Command-line flags and environment variables of the webhook. A flag wins
// over its environment variable, which wins over the default.

import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import type { LevelWithSilent } from 'pino';

export interface WebhookConfig {
  host: string;
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  signingKeyFile: string;
  rulesWasm: string;
  /** Absent: KUBECONFIG, ~/.kube/config, or the in-cluster service account, as @kubernetes/client-node's loadFromDefault finds them. */
  kubeconfig?: string;
  requestTimeoutMs: number;
  tlsReloadIntervalMs: number;
  logLevel: LevelWithSilent;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

// Compiled to dist/webhook/config.js; the rules are built into the source tree.
const DEFAULT_RULES_WASM = fileURLToPath(new URL('../../policies/admission/require_policy.wasm', import.meta.url));

const FLAGS = {
  host: { env: 'SABPF_WEBHOOK_HOST', help: 'address to listen on', fallback: '0.0.0.0' },
  port: { env: 'SABPF_WEBHOOK_PORT', help: 'HTTPS port; 0 picks a free one', fallback: '8443' },
  'tls-cert-file': { env: 'SABPF_WEBHOOK_TLS_CERT_FILE', help: 'PEM serving certificate (chain), re-read when it changes' },
  'tls-key-file': { env: 'SABPF_WEBHOOK_TLS_KEY_FILE', help: 'PEM private key of the serving certificate' },
  'signing-key-file': { env: 'SABPF_WEBHOOK_SIGNING_KEY_FILE', help: 'PEM EC P-256 private key that signs policies (ES256)' },
  'rules-wasm': {
    env: 'SABPF_WEBHOOK_RULES_WASM',
    help: 'admission rules compiled by policies/admission/build.sh',
    fallback: DEFAULT_RULES_WASM,
  },
  kubeconfig: { env: 'KUBECONFIG', help: 'kubeconfig file; default: ~/.kube/config, else the in-cluster service account' },
  'request-timeout-ms': {
    env: 'SABPF_WEBHOOK_REQUEST_TIMEOUT_MS',
    help: 'deadline of one admission in milliseconds; keep it below the smallest timeoutSeconds of the webhook configurations',
    fallback: '2500',
  },
  'tls-reload-interval-ms': {
    env: 'SABPF_WEBHOOK_TLS_RELOAD_INTERVAL_MS',
    help: 'how often the serving certificate is re-read, in milliseconds',
    fallback: '60000',
  },
  'log-level': { env: 'SABPF_WEBHOOK_LOG_LEVEL', help: 'fatal, error, warn, info, debug, trace or silent', fallback: 'info' },
} as const satisfies Record<string, { env: string; help: string; fallback?: string }>;

type FlagName = keyof typeof FLAGS;

const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, flag]) => {
    const fallback = 'fallback' in flag ? ` (default ${flag.fallback})` : '';
    return `  --${name.padEnd(24)} ${flag.help}${fallback}; env ${flag.env}`;
  });
  return ['usage: node dist/webhook/main.js [flags]', ...lines, '  --help                     print this help'].join('\n');
}

/** Reads the configuration. Throws UsageError naming the flag and its environment variable. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): WebhookConfig {
  const options = Object.fromEntries(Object.keys(FLAGS).map((name) => [name, { type: 'string' as const }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage()}`);
  }
  if (values.help === true) throw new UsageError(usage());

  const read = (name: FlagName): string | undefined => {
    const flag: { env: string; fallback?: string } = FLAGS[name];
    const value = values[name];
    if (typeof value === 'string' && value !== '') return value;
    const fromEnv = env[flag.env];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    return flag.fallback;
  };
  const required = (name: FlagName): string => {
    const value = read(name);
    if (value === undefined) throw new UsageError(`missing --${name}: set the flag or ${FLAGS[name].env}`);
    return value;
  };
  const integer = (name: FlagName, min: number, max: number): number => {
    const text = required(name);
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new UsageError(`invalid --${name} ${JSON.stringify(text)}: expected an integer from ${min} to ${max}`);
    }
    return value;
  };

  const logLevel = required('log-level');
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`invalid --log-level ${JSON.stringify(logLevel)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const kubeconfig = read('kubeconfig');

  return {
    host: required('host'),
    port: integer('port', 0, 65535),
    tlsCertFile: required('tls-cert-file'),
    tlsKeyFile: required('tls-key-file'),
    signingKeyFile: required('signing-key-file'),
    rulesWasm: required('rules-wasm'),
    ...(kubeconfig !== undefined ? { kubeconfig } : {}),
    requestTimeoutMs: integer('request-timeout-ms', 100, 30_000),
    tlsReloadIntervalMs: integer('tls-reload-interval-ms', 1_000, 86_400_000),
    logLevel: logLevel as LevelWithSilent,
  };
}
