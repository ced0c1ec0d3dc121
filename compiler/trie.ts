// Path tries for the file, exec and fromSource tables. Node ids are local to
// one compiled program (the slot in every key keeps programs apart) and are
// assigned in sorted order, so the same rules always give the same bytes.

import { pathComponents } from './paths.js';
import { Access, NAME_MAX_BYTES, Scope, SHORT_NAME_BYTES, SIZE } from './layout.js';
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
   * entry per node: to `entries` (sabpf_nodes) for a name of up to 31
   * bytes, else to `longEntries` (sabpf_long_nodes). Returns the root's id
   * and the next free id. Short entries are views into buffers allocated
   * once, because thousands of small allocations dominated compile time for
   * large policies.
   */
  emit(
    firstId: number,
    entries: { key: Buffer; value: Buffer }[],
    longEntries: { key: Buffer; value: Buffer }[],
  ): { rootId: number; nextId: number } {
    const keys = Buffer.alloc(this.size * SIZE.nodeKey);
    const values = Buffer.alloc(this.size * SIZE.node);
    let nextId = firstId;
    let index = 0;
    const rootId = firstId;

    const write = (node: BuildNode, id: number, parentId: number, name: string): void => {
      const valueOffset = index * SIZE.node;
      const nameBytes = Buffer.byteLength(name);
      const long = nameBytes >= SHORT_NAME_BYTES;
      const keyBuffer = long ? Buffer.alloc(SIZE.longNodeKey) : keys;
      const keyOffset = long ? 0 : index * SIZE.nodeKey;
      index++;
      keyBuffer.writeUInt32LE(parentId >>> 0, keyOffset + 4);
      const written = keyBuffer.write(name, keyOffset + 8, (long ? NAME_MAX_BYTES : SHORT_NAME_BYTES) - 1, 'utf8');
      if (written !== nameBytes) throw new Error(`path component "${name.slice(0, 40)}…" exceeds NAME_MAX (255 bytes)`);
      values.writeUInt32LE(id >>> 0, valueOffset);
      values.writeUInt32LE(node.sourceId >>> 0, valueOffset + 4);
      const rules = node.rules ?? [];
      for (let word = 0; word < rules.length; word++) {
        const mask = rules[word] ?? 0;
        if (mask !== 0) values.writeUInt32LE(mask, valueOffset + 8 + word * 4);
      }
      (long ? longEntries : entries).push({
        key: long ? keyBuffer : keys.subarray(keyOffset, keyOffset + SIZE.nodeKey),
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
