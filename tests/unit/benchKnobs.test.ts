import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { PROJECT_ROOT } from '../../lib/projectRoot.js';

const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');

/** Every BENCH_* variable (and MATRX_BENCH_*) the bench's scripts read. */
const knobs = readdirSync(join(PROJECT_ROOT, 'scripts'))
  .filter((name) => /^bench\w*\.ts$/.test(name))
  .flatMap((name) => [...read(`scripts/${name}`).matchAll(/\b(?:MATRX_)?BENCH_[A-Z0-9_]+/g)])
  .map((match) => match[0]);

describe('npm run bench', () => {
  it('reads knobs', () => {
    expect(knobs).toContain('BENCH_CREATES');
  });

  it('has each knob listed in .env.example', () => {
    const listed = new Set([...read('.env.example').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect([...new Set(knobs)].filter((knob) => !listed.has(knob))).toEqual([]);
  });

  it('has each knob documented in docs/benchmarks.md', () => {
    const docs = read('docs/benchmarks.md');
    expect([...new Set(knobs)].filter((knob) => !docs.includes(`\`${knob}\``))).toEqual([]);
  });
});
