// The Rego admission rules of policies/admission/, compiled to WebAssembly by
// policies/admission/build.sh and evaluated in-process with the OPA wasm SDK.
// The TypeScript side computes which policies select each container and
// passes that as input, so the rules stay small and never re-parse policies.

import { readFile } from 'node:fs/promises';

import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';

/** The Rego rule evaluated: a set of violation messages. */
export const RULES_ENTRYPOINT = 'sabpf/admission/deny';

export interface RulesInput {
  pod: { name: string; namespace: string; labels: Record<string, string> };
  namespace: { name: string; labels: Record<string, string> };
  containers: { name: string; init: boolean; policies: { name: string; mode: string }[] }[];
}

export interface AdmissionRules {
  /** Returns the violation messages for a pod, sorted; empty admits it. Throws when evaluation fails. */
  evaluate(input: RulesInput): string[];
}

export class WasmAdmissionRules implements AdmissionRules {
  readonly #policy: LoadedPolicy;

  private constructor(policy: LoadedPolicy) {
    this.#policy = policy;
  }

  /** Loads the compiled rules. Throws if the file is missing, not OPA wasm, or lacks the entrypoint. */
  static async load(path: string): Promise<WasmAdmissionRules> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new Error(
        `failed to read the admission rules ${path}: ${error instanceof Error ? error.message : String(error)}; ` +
          'build them with policies/admission/build.sh',
        { cause: error },
      );
    }

    let policy: LoadedPolicy;
    try {
      policy = await loadPolicy(bytes);
    } catch (error) {
      throw new Error(`failed to load the admission rules ${path} as OPA wasm: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    const entrypoints = (policy.entrypoints ?? {}) as Record<string, number>;
    if (!(RULES_ENTRYPOINT in entrypoints)) {
      throw new Error(
        `failed to load the admission rules ${path}: no entrypoint ${RULES_ENTRYPOINT} (found ${Object.keys(entrypoints).join(', ') || 'none'}); ` +
          `build with opa build -t wasm -e ${RULES_ENTRYPOINT}`,
      );
    }
    return new WasmAdmissionRules(policy);
  }

  evaluate(input: RulesInput): string[] {
    // Synchronous: the module shares one linear memory, and nothing else can
    // run on this thread while it evaluates.
    const resultSet: unknown = this.#policy.evaluate(input, RULES_ENTRYPOINT);

    // An undefined deny (no rule body matched at all) gives an empty result set.
    if (!Array.isArray(resultSet) || resultSet.length === 0) return [];
    const result = (resultSet[0] as { result?: unknown }).result;
    if (!Array.isArray(result) || !result.every((message) => typeof message === 'string')) {
      throw new Error(
        `failed to evaluate the admission rules: ${RULES_ENTRYPOINT} returned ${JSON.stringify(result)}, expected a set of strings`,
      );
    }
    return [...(result as string[])].sort();
  }
}
