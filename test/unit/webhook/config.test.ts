import assert from 'node:assert/strict';

import { parseConfig, UsageError } from '../../../webhook/config.js';

const required = ['--tls-cert-file', '/tls/tls.crt', '--tls-key-file', '/tls/tls.key', '--signing-key-file', '/keys/signing-key.pem'];

describe('webhook configuration', () => {
  describe('when only the required flags are given', () => {
    const config = parseConfig(required, {});

    it('uses the defaults', () => {
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.port, 8443);
      assert.equal(config.requestTimeoutMs, 2500);
      assert.equal(config.logLevel, 'info');
      assert.equal(config.kubeconfig, undefined);
    });

    it('finds the rules beside the build', () => {
      assert.match(config.rulesWasm, /\/policies\/admission\/require_policy\.wasm$/);
      assert.doesNotMatch(config.rulesWasm, /\/dist\//);
    });
  });

  describe('when flags and environment both set a value', () => {
    it('prefers the flag', () => {
      const config = parseConfig([...required, '--port', '9443'], { SABPF_WEBHOOK_PORT: '7443' });
      assert.equal(config.port, 9443);
    });

    it('falls back to the environment', () => {
      const config = parseConfig(required, { SABPF_WEBHOOK_PORT: '7443', SABPF_WEBHOOK_LOG_LEVEL: 'debug', KUBECONFIG: '/kc' });
      assert.equal(config.port, 7443);
      assert.equal(config.logLevel, 'debug');
      assert.equal(config.kubeconfig, '/kc');
    });

    it('reads required files from the environment', () => {
      const config = parseConfig([], {
        SABPF_WEBHOOK_TLS_CERT_FILE: '/c',
        SABPF_WEBHOOK_TLS_KEY_FILE: '/k',
        SABPF_WEBHOOK_SIGNING_KEY_FILE: '/s',
      });
      assert.deepEqual([config.tlsCertFile, config.tlsKeyFile, config.signingKeyFile], ['/c', '/k', '/s']);
    });
  });

  describe('when a value is wrong', () => {
    const cases: [string, string[], RegExp][] = [
      ['a missing signing key', required.slice(0, 4), /missing --signing-key-file: set the flag or SABPF_WEBHOOK_SIGNING_KEY_FILE/],
      ['a port above 65535', [...required, '--port', '70000'], /invalid --port "70000": expected an integer from 0 to 65535/],
      ['a port that is not a number', [...required, '--port', 'https'], /invalid --port "https"/],
      ['a tiny timeout', [...required, '--request-timeout-ms', '5'], /invalid --request-timeout-ms "5"/],
      ['an unknown log level', [...required, '--log-level', 'loud'], /invalid --log-level "loud": expected one of/],
      ['an unknown flag', [...required, '--colour'], /Unknown option '--colour'/],
    ];
    for (const [name, argv, message] of cases) {
      it(`rejects ${name}`, () => {
        assert.throws(
          () => parseConfig(argv, {}),
          (error: Error) => error instanceof UsageError && message.test(error.message),
        );
      });
    }
  });

  describe('when help is requested', () => {
    it('lists every flag with its variable', () => {
      assert.throws(
        () => parseConfig(['--help'], {}),
        (error: Error) => error instanceof UsageError && /--signing-key-file .*SABPF_WEBHOOK_SIGNING_KEY_FILE/.test(error.message),
      );
    });
  });
});
