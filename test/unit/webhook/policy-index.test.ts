import assert from 'node:assert/strict';

import { PolicyIndex } from '../../../webhook/cache/policy-index.js';
import { policyObject } from './helpers.js';

const exec = { exec: { posture: 'allow', rules: [{ paths: ['/usr/bin/apt-get'], action: 'deny' }] } };

describe('PolicyIndex', () => {
  describe('when valid policies arrive', () => {
    const index = new PolicyIndex();
    index.upsert(policyObject('a', exec));
    index.upsert(policyObject('b', exec));
    index.upsert(policyObject('c', exec, { namespace: 'bank' }));

    it('lists them per namespace', () => {
      assert.deepEqual(
        index
          .policiesIn('shop')
          .map((p) => p.name)
          .sort(),
        ['a', 'b'],
      );
      assert.deepEqual(
        index.policiesIn('bank').map((p) => p.name),
        ['c'],
      );
      assert.deepEqual(index.policiesIn('other'), []);
    });

    it('counts them', () => {
      assert.equal(index.validCount, 3);
      assert.equal(index.invalidCount, 0);
    });
  });

  describe('when a policy is updated to an invalid spec', () => {
    const index = new PolicyIndex();
    index.upsert(policyObject('a', exec));
    const result = index.upsert(policyObject('a', { exec: { posture: 'allow', rules: [{ paths: ['relative'], action: 'deny' }] } }));

    it('drops the old valid version', () => {
      assert.deepEqual(index.policiesIn('shop'), []);
    });

    it('reports the problem', () => {
      assert.equal(result.ok, false);
      assert.match((result as { problems: string[] }).problems.join('\n'), /\[shop\/a\] spec.exec.rules\[0\].paths\[0\]: path is relative/);
    });

    it('counts it as invalid', () => {
      assert.equal(index.invalidCount, 1);
      assert.equal(index.validCount, 0);
    });
  });

  describe('when a policy is deleted', () => {
    const index = new PolicyIndex();
    index.upsert(policyObject('a', exec));
    const before = index.policiesIn('shop');
    index.remove(policyObject('a', exec));

    it('removes it', () => {
      assert.deepEqual(index.policiesIn('shop'), []);
      assert.equal(index.validCount, 0);
    });

    it('leaves lists handed out unchanged', () => {
      assert.equal(before.length, 1);
    });
  });

  describe('when the cached object is validated', () => {
    it('leaves the object unmodified', () => {
      const object = policyObject('a', { file: { posture: 'allow', rules: [{ paths: ['/etc/shadow'], action: 'deny' }] } });
      const copy = structuredClone(object);
      new PolicyIndex().upsert(object);
      assert.deepEqual(object, copy);
    });
  });
});
