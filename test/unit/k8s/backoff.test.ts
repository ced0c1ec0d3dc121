import { strict as assert } from 'node:assert';

import { Backoff } from '../../../enforcer/k8s/backoff.js';
import { TokenBucket } from '../../../enforcer/k8s/token-bucket.js';

describe('k8s backoff', function () {
  it('doubles up to the ceiling without jitter', function () {
    const backoff = new Backoff({ initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2, random: () => 0 });
    const delays = Array.from({ length: 9 }, () => backoff.next());
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    assert.equal(backoff.attempts, 9);
  });

  it('subtracts up to jitter of each delay', function () {
    const high = new Backoff({ initialMs: 1000, jitter: 0.2, random: () => 0.999999 });
    assert.deepEqual([high.next(), high.next(), high.next()], [800, 1600, 3200]);
    const half = new Backoff({ initialMs: 1000, jitter: 0.2, random: () => 0.5 });
    assert.deepEqual([half.next(), half.next()], [900, 1800]);
  });

  it('stays within [(1 - jitter) d, d] with real randomness', function () {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.3 });
    const expected = [100, 200, 400, 800, 1000, 1000];
    for (const ceiling of expected) {
      const delay = backoff.next();
      assert.ok(delay <= ceiling, `delay ${delay} above ${ceiling}`);
      assert.ok(delay >= Math.floor(ceiling * 0.7), `delay ${delay} below ${ceiling * 0.7}`);
    }
  });

  it('starts over after reset', function () {
    const backoff = new Backoff({ random: () => 0 });
    backoff.next();
    backoff.next();
    backoff.reset();
    assert.equal(backoff.next(), 500);
  });

  it('rejects settings that never back off', function () {
    assert.throws(() => new Backoff({ initialMs: 0 }), /failed to configure backoff: need initialMs > 0/);
    assert.throws(() => new Backoff({ jitter: 1 }), /0 <= jitter < 1/);
    assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), /maxMs >= initialMs/);
  });
});

describe('k8s token bucket', function () {
  it('allows a burst, then one token per refill interval', function () {
    const bucket = new TokenBucket({ burst: 3, refillMs: 1000 }, 0);
    assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)], [true, true, true, false]);
    assert.equal(bucket.waitMs(0), 1000);
    assert.equal(bucket.waitMs(400), 600);
    assert.equal(bucket.take(999), false);
    assert.equal(bucket.take(1000), true);
    assert.equal(bucket.take(1000), false);
    assert.equal(bucket.available(10_000), 3, 'refill stops at the burst');
  });

  it('does not drain when the clock steps back', function () {
    const bucket = new TokenBucket({ burst: 2, refillMs: 1000 }, 5000);
    assert.equal(bucket.take(5000), true);
    assert.equal(bucket.available(1000), 1);
    assert.equal(bucket.available(6000), 2);
  });
});
