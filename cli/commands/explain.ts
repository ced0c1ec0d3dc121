// sabpf explain: which policy and rule decide one operation, and why.

import { parseArgs } from 'node:util';
import { compileContainer } from '../../compiler/compile.js';
import { decide, type Decision, type Operation } from '../../compiler/decide.js';
import { hasErrors } from '../../compiler/diagnostics.js';
import { formatAddress } from '../../compiler/net.js';
import { parseOperation } from '../../compiler/operation.js';
import { selectPolicies } from '../../compiler/selector.js';
import { KernelModel } from '../../compiler/simulate.js';
import { checkDuplicates, loadFiles, printDiagnostics } from '../io.js';
import { UsageError } from '../usage.js';
import { readPod } from '../pod.js';

export const explainHelp = `Usage: sabpf explain --policies FILE... --pod POD.yaml --container NAME --op OPERATION [--exe PATH] [--json]

Shows the decision the kernel takes for one operation of a container, which
policy and rule decide it, and what every selecting policy says.

Options:
      --policies FILE   policy file; repeat for several (required)
      --pod FILE        Pod manifest: namespace, labels and containers (required)
      --container NAME  container of the pod (default: the first one)
      --op OPERATION    open:PATH[:read|write|readwrite], exec:PATH,
                        connect:tcp|udp:ADDRESS:PORT, bind:tcp|udp:ADDRESS:PORT,
                        raw-socket or packet-socket (required)
      --exe PATH        executable of the acting process, for fromSource rules
                        (for exec: the parent's executable)
      --json            print JSON
  -h, --help            show this help

Exit status: 0 when the operation is allowed, 3 when it is denied, 1 on
invalid policies, 2 on a usage error.`;

export function explainCommand(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      policies: { type: 'string', multiple: true },
      pod: { type: 'string' },
      container: { type: 'string' },
      op: { type: 'string' },
      exe: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${explainHelp}\n`);
    return 0;
  }
  if (!values.policies || values.policies.length === 0) throw new UsageError('missing --policies; give the policy files');
  if (!values.pod) throw new UsageError('missing --pod; give the Pod manifest');
  if (!values.op) throw new UsageError('missing --op; for example --op open:/etc/shadow:read');

  const result = loadFiles(values.policies, true);
  checkDuplicates(result);
  printDiagnostics(result.diagnostics);
  if (hasErrors(result.diagnostics)) return 1;

  const containers = readPod(values.pod);
  const container = values.container ? containers.find((c) => c.container === values.container) : containers[0];
  if (!container) {
    throw new UsageError(`container "${values.container}" not found in the pod; it has ${containers.map((c) => c.container).join(', ')}`);
  }
  const parsed = parseOperation(values.op, values.exe);
  if (!parsed.ok) throw new UsageError(parsed.problem);

  const selected = selectPolicies(result.policies, container);
  const program = compileContainer(result.policies, container);
  const model = program ? new KernelModel(program) : undefined;

  const reports = parsed.operations.map((operation) => {
    const decision = decide(selected, operation);
    const kernel = model?.decide(operation);
    const agrees = kernel
      ? kernel.allowed === !decision.enforced && kernel.recorded === decision.recorded
      : !decision.enforced && !decision.recorded;
    return { operation, decision, kernel, agrees };
  });

  if (values.json) {
    process.stdout.write(
      `${JSON.stringify(
        reports.map((r) => ({ operation: describeOperation(r.operation), ...r.decision, kernelAgrees: r.agrees })),
        null,
        2,
      )}\n`,
    );
  } else {
    const where = `${container.namespace}/${container.pod}/${container.container}`;
    for (const report of reports) printReport(where, report.operation, report.decision, selected.length);
  }

  if (reports.some((r) => !r.agrees)) {
    process.stderr.write(
      'internal error: the compiled tables decide differently from the policies; please report this with the policy files\n',
    );
    return 4;
  }
  return reports.some((r) => r.decision.enforced) ? 3 : 0;
}

function describeOperation(operation: Operation): string {
  switch (operation.kind) {
    case 'open':
      return `open ${operation.path} (${operation.access})${operation.executable ? ` by ${operation.executable}` : ''}`;
    case 'exec':
      return `exec ${operation.path}${operation.executable ? ` from ${operation.executable}` : ''}`;
    case 'connect':
    case 'bind':
      return `${operation.kind} ${operation.protocol} ${formatAddress(operation.address)} port ${operation.port}`;
    default:
      return operation.kind;
  }
}

function printReport(where: string, operation: Operation, decision: Decision, policyCount: number): void {
  const out: string[] = [];
  const verdict = decision.enforced
    ? 'DENIED (EPERM)'
    : decision.decision === 'deny'
      ? 'ALLOWED, would be denied (audit mode): recorded'
      : decision.recorded
        ? 'ALLOWED, recorded (audit)'
        : 'ALLOWED';
  out.push(`${describeOperation(operation)} in ${where}: ${verdict}`);
  if (policyCount === 0) {
    out.push('  no policy selects this container: it is unconfined');
  } else if (decision.policy) {
    const why = decision.reason === 'posture' ? 'no rule matched, so the section posture decided' : `rule ${decision.rule} matched`;
    out.push(`  decided by ${decision.policy} (${decision.mode} mode): ${why}`);
  } else {
    const allowing = decision.perPolicy.filter((p) => p.outcome === 'allow' && p.by !== 'posture');
    if (allowing.length > 0) out.push(`  allowed by ${allowing.map((p) => `${p.policy} rule ${p.by}`).join(', ')}`);
    else out.push('  no rule matched and every posture allows');
  }
  for (const p of decision.perPolicy) {
    const detail =
      p.outcome === 'none'
        ? 'no section for this operation'
        : p.by === 'posture'
          ? `posture ${p.outcome}`
          : `${p.outcome} by ${p.by} (${p.matched})`;
    out.push(`    ${p.policy}: ${detail}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
