import assert from 'node:assert/strict';

import fc from 'fast-check';

import { canonicalJson } from '../../../enforcer/audit/canonical.js';
import { listTrailFiles } from '../../../enforcer/audit/files.js';
import type { DecisionEvent, OperationDetail } from '../../../enforcer/audit/record.js';
import { verify } from '../../../enforcer/audit/verify.js';
import { AuditWriter } from '../../../enforcer/audit/writer.js';
import { makeTempDir, readLines, removeTempDir, writeLines, writerOptions } from './helpers.js';

const RUNS = 150;

const name = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/);
// Any code points, lone surrogates included, to exercise JSON escaping.
const text = (maxLength: number) => fc.string({ unit: 'binary', maxLength });
const u32 = fc.integer({ min: 0, max: 4294967295 });

const operationDetail: fc.Arbitrary<OperationDetail> = fc.oneof(
  fc.record({
    operation: fc.constant('file-open' as const),
    access: fc.constantFrom('read' as const, 'write' as const),
    resource: fc.record({ path: text(64) }),
  }),
  fc.record({ operation: fc.constant('exec' as const), resource: fc.record({ path: text(64) }) }),
  fc.record({
    operation: fc.constantFrom('connect' as const, 'bind' as const),
    resource: fc.record({
      address: fc.oneof(fc.ipV4(), fc.ipV6()),
      port: fc.integer({ min: 0, max: 65535 }),
      protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    }),
  }),
  fc.record({
    operation: fc.constant('socket-create' as const),
    resource: fc.record({ family: fc.constantFrom('AF_INET', 'AF_INET6', 'AF_PACKET'), type: fc.constantFrom('SOCK_RAW', 'SOCK_PACKET') }),
  }),
);

const decisionEvent: fc.Arbitrary<DecisionEvent> = fc
  .record({
    namespace: name,
    pod: name,
    container: name,
    cgroupId: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
    pid: u32,
    ppid: u32,
    uid: u32,
    comm: text(15),
    executable: text(64),
    decision: fc.constantFrom('allow' as const, 'deny' as const),
    mode: fc.constantFrom('enforce' as const, 'audit' as const),
    policy: fc.tuple(name, name).map(([namespace, policy]) => `${namespace}/${policy}`),
    rule: fc.constantFrom('posture', 'spec.file.rules[0]', 'spec.network.rules[12]'),
    severity: fc.constantFrom('low' as const, 'medium' as const, 'high' as const, 'critical' as const),
    message: text(40),
    reason: fc.constantFrom('rule' as const, 'posture' as const, 'path-truncated' as const, 'rules-below' as const),
    detail: operationDetail,
  })
  .map(({ detail, ...context }) => ({
    ...context,
    ...detail,
    enforced: context.decision === 'deny' && context.mode === 'enforce',
  }));

/** A decision, or a dropped record with its count. */
const entry = fc.oneof({ weight: 5, arbitrary: decisionEvent }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 1_000_000 }) });

const trailShape = fc.record({
  entries: fc.array(entry, { minLength: 1, maxLength: 25 }),
  // Small files so that many runs rotate and some rotate files away.
  maxBytes: fc.integer({ min: 1500, max: 20_000 }),
  maxFiles: fc.integer({ min: 2, max: 4 }),
});

type TrailShape = { entries: (DecisionEvent | number)[]; maxBytes: number; maxFiles: number };

async function writeShape(directory: string, shape: TrailShape): Promise<void> {
  const writer = await AuditWriter.open(writerOptions(directory, { maxBytes: shape.maxBytes, maxFiles: shape.maxFiles }));
  for (const item of shape.entries) {
    if (typeof item === 'number') {
      await writer.appendDropped(item);
    } else {
      await writer.appendDecision(item);
    }
  }
  await writer.close();
}

/** Lists every line of the trail with its file, oldest first. */
async function trailLines(directory: string): Promise<{ file: string; index: number; text: string }[]> {
  const result: { file: string; index: number; text: string }[] = [];
  for (const file of await listTrailFiles(directory)) {
    (await readLines(file)).forEach((line, index) => result.push({ file, index, text: line }));
  }
  return result;
}

/** Paths of every leaf value of a JSON object, nested objects included. */
function leafPaths(value: Record<string, unknown>, prefix: string[] = []): string[][] {
  return Object.entries(value).flatMap(([key, member]) =>
    typeof member === 'object' && member !== null ? leafPaths(member as Record<string, unknown>, [...prefix, key]) : [[...prefix, key]],
  );
}

function setPath(target: Record<string, unknown>, path: string[], replacement: unknown): void {
  let current = target;
  for (const key of path.slice(0, -1)) {
    current = current[key] as Record<string, unknown>;
  }
  current[path.at(-1) ?? ''] = replacement;
}

function getPath(target: Record<string, unknown>, path: string[]): unknown {
  return path.reduce<unknown>((current, key) => (current as Record<string, unknown>)[key], target);
}

const replacementValue = fc.oneof(
  text(10),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
);

describe('audit trail properties', function () {
  // Each run writes and verifies a real trail in a temporary directory.
  this.timeout(120_000);

  describe('when a trail is left untouched', () => {
    it('verifies intact', async () => {
      await fc.assert(
        fc.asyncProperty(trailShape, async (shape) => {
          const directory = await makeTempDir();
          try {
            await writeShape(directory, shape);
            const result = await verify(directory);
            assert.equal(result.ok, true, JSON.stringify(result.problems));
          } finally {
            await removeTempDir(directory);
          }
        }),
        { numRuns: RUNS },
      );
    });
  });

  describe('when one field of one record is edited', () => {
    it('detects the edit', async () => {
      await fc.assert(
        fc.asyncProperty(trailShape, fc.nat(), fc.nat(), replacementValue, async (shape, lineChoice, fieldChoice, replacement) => {
          const directory = await makeTempDir();
          try {
            await writeShape(directory, shape);
            const lines = await trailLines(directory);
            const target = lines[lineChoice % lines.length];
            assert.ok(target !== undefined);

            const record = JSON.parse(target.text) as Record<string, unknown>;
            const paths = leafPaths(record);
            const path = paths[fieldChoice % paths.length] ?? [];
            fc.pre(canonicalJson(getPath(record, path)) !== canonicalJson(replacement));
            setPath(record, path, replacement);

            const fileLines = await readLines(target.file);
            fileLines[target.index] = JSON.stringify(record);
            await writeLines(target.file, fileLines);

            const result = await verify(directory);
            assert.equal(result.ok, false, `edit of ${path.join('.')} in ${target.file}:${target.index + 1} went undetected`);
          } finally {
            await removeTempDir(directory);
          }
        }),
        { numRuns: RUNS },
      );
    });
  });

  describe('when one line is deleted', () => {
    it('detects the deletion', async () => {
      await fc.assert(
        fc.asyncProperty(trailShape, fc.nat(), async (shape, lineChoice) => {
          const directory = await makeTempDir();
          try {
            await writeShape(directory, shape);
            const lines = await trailLines(directory);
            const target = lines[lineChoice % lines.length];
            assert.ok(target !== undefined);

            const fileLines = await readLines(target.file);
            fileLines.splice(target.index, 1);
            await writeLines(target.file, fileLines);

            const result = await verify(directory);
            assert.equal(result.ok, false, `deletion of ${target.file}:${target.index + 1} went undetected`);
          } finally {
            await removeTempDir(directory);
          }
        }),
        { numRuns: RUNS },
      );
    });
  });

  describe('when key order changes', () => {
    it('keeps the canonical form', () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (object) => {
          const reversed = Object.fromEntries(Object.entries(object).reverse());
          assert.equal(canonicalJson(reversed), canonicalJson(object));
        }),
      );
    });
  });
});
