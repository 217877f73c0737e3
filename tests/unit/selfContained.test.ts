import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

/**
 * Users clone this repository alone: nothing in it may point at a sibling checkout or at a folder
 * of the machine it was written on. The patterns are written so this file does not match them.
 */
const FORBIDDEN: readonly { pattern: RegExp; why: string; skip?: (path: string) => boolean }[] = [
  { pattern: /\.\.\/shared\b/, why: 'a sibling checkout' },
  // The wire contract is docs/API.md; the file's bare name meant the sibling checkout's copy.
  // Files in docs/ may name it relative to themselves.
  {
    pattern: /(?<![\w/.-])API\.md\b/,
    why: 'the contract is docs/API.md',
    skip: (path) => path.startsWith('docs/'),
  },
  // Not after a word character, dot or dash, so `https://host.example/work/` is not a hit.
  { pattern: /(?<![\w.-])\/work\//, why: 'a folder of this machine' },
  { pattern: /(?<![\w.-])\/root\//, why: 'a folder of this machine' },
];

/** Large, generated, and full of registry URLs that are none of our business. */
const SKIPPED = new Set(['package-lock.json']);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((path) => path !== '' && !SKIPPED.has(path));
}

/** Git's own test: a NUL byte in the first 8,000 bytes makes a file binary. */
function isBinary(content: Buffer): boolean {
  return content.subarray(0, 8000).includes(0);
}

describe('the repository is self-contained', () => {
  it('lists the files git tracks', () => {
    expect(trackedFiles()).toEqual(expect.arrayContaining(['package.json', 'README.md']));
  });

  it('no tracked file points outside the repository', () => {
    const hits: string[] = [];
    for (const path of trackedFiles()) {
      let content: Buffer;
      try {
        content = readFileSync(join(ROOT, path));
      } catch {
        continue; // deleted in the working tree but not yet in the index
      }
      if (isBinary(content)) continue;
      content
        .toString('utf8')
        .split('\n')
        .forEach((line, index) => {
          for (const { pattern, why, skip } of FORBIDDEN) {
            if (skip?.(path)) continue;
            if (pattern.test(line)) hits.push(`${path}:${index + 1} (${why}): ${line.trim()}`);
          }
        });
    }
    expect(hits).toEqual([]);
  });
});
