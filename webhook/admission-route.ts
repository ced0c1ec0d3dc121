// The express glue shared by the admission endpoints. It parses the
// AdmissionReview, checks its kind, runs the handler under a deadline, sends
// the response, and records one log line and one metric sample per request.

import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';

import {
  admissionResponse,
  BadRequestError,
  expectKind,
  parseAdmissionReview,
  type AdmissionRequest,
  type GroupVersionKind,
  type Verdict,
} from './admission-review.js';
import type { RequestResult, WebhookMetrics } from './metrics.js';
import { TimeoutError, withTimeout } from './timeout.js';

export type AdmissionHandler = (request: AdmissionRequest) => Verdict | Promise<Verdict>;

export interface AdmissionRouteOptions {
  /** The path, such as /validate/pod: the metrics label and log key. */
  endpoint: string;
  kind: GroupVersionKind;
  handler: AdmissionHandler;
  log: Logger;
  metrics: WebhookMetrics;
  /** Deadline for the handler. Keep it below the configuration's timeoutSeconds. */
  timeoutMs: number;
}

export function admissionRoute(options: AdmissionRouteOptions): RequestHandler {
  const { endpoint, log, metrics } = options;

  return async (req: Request, res: Response): Promise<void> => {
    const stopTimer = metrics.duration.startTimer({ endpoint });
    const finish = (result: RequestResult): void => {
      stopTimer();
      metrics.requests.inc({ endpoint, result });
    };

    // express.json() leaves the body undefined for any other content type.
    if (req.body === undefined) {
      sendError(
        res,
        400,
        `failed to read the AdmissionReview: expected a JSON body with Content-Type application/json, got ${req.get('content-type') ?? 'none'}`,
      );
      log.warn({ endpoint }, 'rejected a request without a JSON body');
      finish('bad_request');
      return;
    }

    let request: AdmissionRequest;
    try {
      request = parseAdmissionReview(req.body);
      expectKind(request, options.kind, endpoint);
    } catch (error) {
      if (!(error instanceof BadRequestError)) throw error;
      sendError(res, 400, error.message);
      log.warn({ endpoint, problem: error.message }, 'rejected a malformed AdmissionReview');
      finish('bad_request');
      return;
    }

    const fields = {
      endpoint,
      uid: request.uid,
      operation: request.operation,
      kind: request.kind.kind,
      namespace: request.namespace,
      name: request.name,
      dryRun: request.dryRun,
    };

    let verdict: Verdict;
    try {
      verdict = await withTimeout(
        Promise.resolve().then(() => options.handler(request)),
        options.timeoutMs,
        `admit ${request.kind.kind} ${request.uid}`,
      );
    } catch (error) {
      // Internal faults get HTTP 500, and the webhook configuration's
      // failurePolicy decides. The body never carries a stack trace.
      const reason = error instanceof TimeoutError ? error.message : 'internal error, see the webhook log';
      sendError(res, 500, `failed to admit ${request.kind.kind} ${request.namespace}/${request.name}: ${reason}`);
      log.error({ ...fields, err: error }, 'failed to admit the request');
      finish('error');
      return;
    }

    res.json(admissionResponse(request.uid, verdict));
    if (verdict.allowed) {
      log.debug(
        { ...fields, allowed: true, warnings: verdict.warnings?.length ?? 0, patched: (verdict.patch?.length ?? 0) > 0 },
        'admitted',
      );
      finish('allowed');
    } else {
      log.info({ ...fields, allowed: false, code: verdict.code, message: verdict.message }, 'denied');
      finish('denied');
    }
  };
}

export function sendError(res: Response, status: number, message: string): void {
  res.status(status).json({ error: message });
}
