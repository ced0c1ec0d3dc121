import assert from 'node:assert/strict';

import { admissionResponse, BadRequestError, expectKind, parseAdmissionReview } from '../../../webhook/admission-review.js';
import { POD_GVK, POLICY_GVK } from './helpers.js';

function review(request: Record<string, unknown>, envelope: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request, ...envelope };
}

const podRequest = {
  uid: 'u-1',
  kind: { group: '', version: 'v1', kind: 'Pod' },
  operation: 'CREATE',
  namespace: 'shop',
  name: 'web-1',
  object: { metadata: { name: 'web-1' } },
  dryRun: true,
  userInfo: { username: 'alice' },
};

describe('AdmissionReview parsing', () => {
  describe('when the review is well formed', () => {
    const request = parseAdmissionReview(review(podRequest));

    it('reads uid, operation and kind', () => {
      assert.equal(request.uid, 'u-1');
      assert.equal(request.operation, 'CREATE');
      assert.deepEqual(request.kind, POD_GVK);
    });

    it('reads namespace, name, dryRun and user', () => {
      assert.equal(request.namespace, 'shop');
      assert.equal(request.name, 'web-1');
      assert.equal(request.dryRun, true);
      assert.equal(request.userName, 'alice');
    });

    it('accepts DELETE without an object', () => {
      const deleted = parseAdmissionReview(review({ ...podRequest, operation: 'DELETE', object: null, oldObject: { metadata: {} } }));
      assert.equal(deleted.object, null);
      assert.deepEqual(deleted.oldObject, { metadata: {} });
    });
  });

  describe('when the review is malformed', () => {
    const cases: [string, unknown, RegExp][] = [
      ['a string body', 'hello', /the body is a string, not a JSON object/],
      ['an array body', [], /the body is an array/],
      [
        'apiVersion v1beta1',
        review(podRequest, { apiVersion: 'admission.k8s.io/v1beta1' }),
        /unsupported AdmissionReview apiVersion "admission.k8s.io\/v1beta1".*admissionReviewVersions/,
      ],
      ['kind Pod', review(podRequest, { kind: 'Pod' }), /kind is "Pod", expected AdmissionReview/],
      ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /missing request/],
      ['empty uid', review({ ...podRequest, uid: '' }), /request.uid is missing or empty/],
      ['unknown operation', review({ ...podRequest, operation: 'PATCH' }), /request.operation is "PATCH"/],
      ['kind as a string', review({ ...podRequest, kind: 'Pod' }), /request.kind must be an object/],
      ['CREATE without object', review({ ...podRequest, object: null }), /request.object is missing for operation CREATE/],
      ['object as an array', review({ ...podRequest, object: [] }), /request.object is an array, not an object/],
    ];
    for (const [name, body, message] of cases) {
      it(`rejects ${name}`, () => {
        assert.throws(
          () => parseAdmissionReview(body),
          (error: Error) => error instanceof BadRequestError && message.test(error.message),
        );
      });
    }
  });

  describe('when the kind does not fit the endpoint', () => {
    it('rejects a Pod at the policy endpoint', () => {
      const request = parseAdmissionReview(review(podRequest));
      assert.throws(
        () => expectKind(request, POLICY_GVK, '/validate/csp'),
        /failed to admit Pod: \/validate\/csp admits ContainerSecurityPolicy.sabpf.io only/,
      );
    });

    it('accepts the expected kind', () => {
      assert.doesNotThrow(() => expectKind(parseAdmissionReview(review(podRequest)), POD_GVK, '/validate/pod'));
    });
  });
});

describe('AdmissionReview response', () => {
  it('allows with warnings', () => {
    assert.deepEqual(admissionResponse('u-1', { allowed: true, warnings: ['careful'] }), {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u-1', allowed: true, warnings: ['careful'] },
    });
  });

  it('denies with code, reason and message', () => {
    const { response } = admissionResponse('u-2', { allowed: false, code: 422, message: 'line 1\nline 2' }) as {
      response: Record<string, unknown>;
    };
    assert.equal(response.allowed, false);
    assert.deepEqual(response.status, { code: 422, reason: 'Invalid', message: 'line 1\nline 2' });
  });

  it('encodes a patch as base64 JSONPatch', () => {
    const patch = [{ op: 'add' as const, path: '/metadata/annotations', value: { a: 'b' } }];
    const { response } = admissionResponse('u-3', { allowed: true, patch }) as { response: Record<string, unknown> };
    assert.equal(response.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(response.patch as string, 'base64').toString()), patch);
  });

  it('omits empty warnings and patch', () => {
    const { response } = admissionResponse('u-4', { allowed: true, warnings: [], patch: [] }) as { response: Record<string, unknown> };
    assert.deepEqual(response, { uid: 'u-4', allowed: true });
  });
});
