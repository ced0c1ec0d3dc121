// Normalization of policy paths. The kernel reports resolved absolute paths
// (symlinks followed, no "." or ".."), so a policy path must be in that same
// form to ever match. Paths up to PATH_MAX and of any depth are accepted.

import type { PathPattern } from './types.js';

/** PATH_MAX (4096) includes the terminating NUL byte. */
export const PATH_MAX = 4096;
/** NAME_MAX: the longest single path component, in bytes. */
export const NAME_MAX = 255;

export type PathResult = { ok: true; pattern: PathPattern } | { ok: false; problem: string; fix: string };

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/u;

/**
 * Normalizes a path pattern: collapses "//" and "/./", keeps a final "/*" or
 * "/**" as the scope. Rejects relative paths, "..", a trailing slash,
 * wildcards elsewhere, control characters and paths over PATH_MAX or
 * components over NAME_MAX bytes.
 */
export function normalizePattern(raw: string, allowWildcards = true): PathResult {
  if (CONTROL_CHARACTER.test(raw)) {
    const at = raw.search(CONTROL_CHARACTER);
    const code = raw.charCodeAt(at).toString(16).padStart(2, '0');
    return {
      ok: false,
      problem: `path contains control character U+00${code.toUpperCase()} at offset ${at}`,
      fix: 'remove control characters (including NUL, tab and newline) from the path',
    };
  }
  if (!raw.startsWith('/')) {
    return {
      ok: false,
      problem: 'path is relative',
      fix: 'write an absolute path as the container sees it, starting with "/"',
    };
  }

  let scope: PathPattern['scope'] = 'exact';
  let body = raw;
  if (allowWildcards && (body === '/**' || body.endsWith('/**'))) {
    scope = 'subtree';
    body = body.slice(0, -3);
  } else if (allowWildcards && (body === '/*' || body.endsWith('/*'))) {
    scope = 'children';
    body = body.slice(0, -2);
  }

  if (body.includes('*')) {
    return {
      ok: false,
      problem: allowWildcards
        ? 'wildcard "*" is only supported as a final "/*" (direct entries) or "/**" (whole tree)'
        : 'wildcards are not supported here',
      fix: allowWildcards ? 'list the paths, or use a directory pattern such as /etc/** ' : 'write the exact path of the executable',
    };
  }
  if (scope === 'exact' && body.length > 1 && body.endsWith('/')) {
    return {
      ok: false,
      problem: 'trailing slash is ambiguous',
      fix: `write ${body.replace(/\/+$/u, '') || '/'} for the path itself, ${body.replace(/\/+$/u, '')}/* for its direct entries or ${body.replace(/\/+$/u, '')}/** for the whole tree`,
    };
  }

  const components: string[] = [];
  for (const component of body.split('/')) {
    if (component === '' || component === '.') continue;
    if (component === '..') {
      return {
        ok: false,
        problem: 'path contains ".."',
        fix: 'write the resolved path without ".." (the kernel checks resolved paths, so ".." can never match)',
      };
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes, so short components skip the byte count.
    if (component.length * 3 > NAME_MAX && Buffer.byteLength(component, 'utf8') > NAME_MAX) {
      return {
        ok: false,
        problem: `path component of ${Buffer.byteLength(component, 'utf8')} bytes is longer than NAME_MAX (${NAME_MAX})`,
        fix: 'no file can have this name; check the path',
      };
    }
    components.push(component);
  }

  const path = `/${components.join('/')}`;
  if (path.length * 3 > PATH_MAX - 1 && Buffer.byteLength(path, 'utf8') > PATH_MAX - 1) {
    return {
      ok: false,
      problem: `path is ${Buffer.byteLength(path, 'utf8')} bytes, longer than PATH_MAX - 1 (${PATH_MAX - 1})`,
      fix: 'the kernel cannot open a path this long in one call; shorten it or use a directory pattern',
    };
  }
  return { ok: true, pattern: { path, scope } };
}

/** Splits a normalized path into components; "/" has none. */
export function pathComponents(path: string): string[] {
  return path.split('/').filter((c) => c !== '');
}

/** Renders a pattern back to its policy form. */
export function formatPattern(pattern: PathPattern): string {
  const base = pattern.path === '/' ? '' : pattern.path;
  if (pattern.scope === 'subtree') return `${base}/**`;
  if (pattern.scope === 'children') return `${base}/*`;
  return pattern.path;
}

/** Tells whether a pattern matches a normalized absolute path. */
export function patternMatches(pattern: PathPattern, path: string): boolean {
  if (pattern.scope === 'exact') return pattern.path === path;
  const prefix = pattern.path === '/' ? '/' : `${pattern.path}/`;
  if (pattern.scope === 'subtree') return path === pattern.path || path.startsWith(prefix);
  if (!path.startsWith(prefix)) return false;
  const rest = path.slice(prefix.length);
  return rest.length > 0 && !rest.includes('/');
}
