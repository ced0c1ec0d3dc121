// Path tries for the file, exec and fromSource tables. Node ids are local to
// one compiled program (the slot in every key keeps programs apart) and are
// assigned in sorted order, so the same rules always give the same bytes.

import { pathComponents } from './paths.js';
import { Access, NAME_MAX_BYTES, Scope, SIZE } from './layout.js';
import type { Action, PathPattern } from './types.js';

const ACTION_INDEX: Record<Action, number> = { deny: 0, audit: 1, allow: 2 };
/** u32 words of struct sabpf_node's rules: [scope][access][deny, audit, allow]. */
const RULE_WORDS = 3 * 2 * 3;

// Children and rules are allocated on first use: most nodes of a large
// policy are leaves, or directories without rules of their own.
interface BuildNode {
  children: Map<string, BuildNode> | undefined;
  rules: number[] | undefined;
  sourceId: number;
}

const newNode = (): BuildNode => ({ children: undefined, rules: undefined, sourceId: 0 });

export class PathTrie {
  private readonly root = newNode();
  private size = 1;

  /** Adds a rule of policy `bit` on `pattern` for the given accesses. */
  add(pattern: PathPattern, accesses: readonly ('read' | 'write')[], action: Action, bit: number): void {
    const target = this.nodeFor(pattern.path);
    const rules = (target.rules ??= new Array<number>(RULE_WORDS).fill(0));
    for (const access of accesses) {
      const word = (Scope[pattern.scope] * 2 + Access[access]) * 3 + ACTION_INDEX[action];
      rules[word] = ((rules[word] ?? 0) | (1 << bit)) >>> 0;
    }
  }

  /** Marks the exact node of `path` as executable `sourceId` (fromSource table). */
  markSource(path: string, sourceId: number): void {
    this.nodeFor(path).sourceId = sourceId;
  }

  private nodeFor(path: string): BuildNode {
    let current = this.root;
    for (const component of pathComponents(path)) {
      current.children ??= new Map();
      let next = current.children.get(component);
      if (!next) {
        next = newNode();
        current.children.set(component, next);
        this.size++;
      }
      current = next;
    }
    return current;
  }

  /**
   * Assigns ids from `firstId` in depth-first sorted order and appends one
   * sabpf_nodes entry per node. Returns the root's id and the next free id.
   * Entries are views into two buffers allocated once, because thousands of
   * small allocations dominated compile time for large policies.
   */
  emit(firstId: number, entries: { key: Buffer; value: Buffer }[]): { rootId: number; nextId: number } {
    const keys = Buffer.alloc(this.size * SIZE.nodeKey);
    const values = Buffer.alloc(this.size * SIZE.node);
    let nextId = firstId;
    let index = 0;
    const rootId = firstId;

    const write = (node: BuildNode, id: number, parentId: number, name: string): void => {
      const keyOffset = index * SIZE.nodeKey;
      const valueOffset = index * SIZE.node;
      index++;
      keys.writeUInt32LE(parentId >>> 0, keyOffset + 4);
      const written = keys.write(name, keyOffset + 8, NAME_MAX_BYTES - 1, 'utf8');
      if (written !== Buffer.byteLength(name)) throw new Error(`path component "${name.slice(0, 40)}…" exceeds NAME_MAX (255 bytes)`);
      values.writeUInt32LE(id >>> 0, valueOffset);
      values.writeUInt32LE(node.sourceId >>> 0, valueOffset + 4);
      const rules = node.rules ?? [];
      for (let word = 0; word < rules.length; word++) {
        const mask = rules[word] ?? 0;
        if (mask !== 0) values.writeUInt32LE(mask, valueOffset + 8 + word * 4);
      }
      entries.push({
        key: keys.subarray(keyOffset, keyOffset + SIZE.nodeKey),
        value: values.subarray(valueOffset, valueOffset + SIZE.node),
      });
    };

    // The root's own entry is keyed by its id and the empty name, which no real component has.
    const visit = (node: BuildNode, id: number): void => {
      if (!node.children) return;
      const names = [...node.children.keys()].sort();
      for (const name of names) {
        const child = node.children.get(name) as BuildNode;
        const childId = nextId++;
        write(child, childId, id, name);
        visit(child, childId);
      }
    };
    nextId++;
    write(this.root, rootId, rootId, '');
    visit(this.root, rootId);
    return { rootId, nextId };
  }
}
