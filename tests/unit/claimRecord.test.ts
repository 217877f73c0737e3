import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import tar from 'tar-stream';
import {
  claimArchive,
  claimScript,
  newClaimSecret,
  shellQuote,
  verifiedIdentity,
} from '../../lib/adapters/docker/claimRecord.js';
import type { SandboxIdentity } from '../../lib/domain/pool.js';

const identity = fc.record({
  sandboxId: fc.constant('sbx-0123456789ab'),
  userId: fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,40}$/),
  createdAt: fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }),
  template: fc.constant('default'),
  ttlSeconds: fc.integer({ min: 60, max: 7200 }),
  idleTimeoutSeconds: fc.integer({ min: 0, max: 7200 }),
  env: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), fc.string()),
});

async function filesOf(archive: Readable): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tar.extract();
  archive.pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    files.set(entry.header.name, Buffer.concat(chunks).toString('utf8'));
  }
  return files;
}

async function recordOf(value: SandboxIdentity, secret: string): Promise<string> {
  return (await filesOf(claimArchive(value, secret))).get('run/matrx/sandbox.json') ?? '';
}

describe('the claim record', () => {
  it('reads back what was written, with the secret it was written with', async () => {
    await fc.assert(
      fc.asyncProperty(identity, async (value) => {
        const secret = newClaimSecret();
        expect(verifiedIdentity(await recordOf(value, secret), secret)).toEqual(value);
      }),
      { numRuns: 50 },
    );
  });

  it('is no record when rewritten inside the sandbox or checked with another secret', async () => {
    const value: SandboxIdentity = {
      sandboxId: 'sbx-0123456789ab',
      userId: 'alice',
      createdAt: new Date(),
      template: 'default',
      ttlSeconds: 600,
      idleTimeoutSeconds: 0,
      env: {},
    };
    const secret = newClaimSecret();
    const record = await recordOf(value, secret);
    expect(verifiedIdentity(record.replace('alice', 'mallory'), secret)).toBeNull();
    expect(verifiedIdentity(record, newClaimSecret())).toBeNull();
    fc.assert(
      fc.property(fc.string(), (text) => expect(verifiedIdentity(text, secret)).toBeNull()),
    );
  });

  it('the env file gives a shell every value byte for byte', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme' }), { maxLength: 20 }), (values) => {
        const printable = values.map((value) => value.replaceAll('\0', ''));
        const script = printable.map((value) => `printf '%s\\0' ${shellQuote(value)}`).join('\n');
        const out = execFileSync('bash', ['-c', script]).toString('utf8');
        expect(out).toBe(printable.map((value) => `${value}\0`).join(''));
      }),
      { numRuns: 20 },
    );
  });

  it("root's channel writes the same files as the archive, byte for byte and with its modes", async () => {
    const root = mkdtempSync(join(tmpdir(), 'claim-'));
    try {
      await fc.assert(
        fc.asyncProperty(identity, async (value) => {
          const clean = { ...value, env: withoutNul(value.env) };
          const secret = newClaimSecret();
          const expected = await filesOf(claimArchive(clean, secret));
          rmSync(join(root, 'run'), { recursive: true, force: true });
          mkdirSync(join(root, 'run/matrx'), { recursive: true });
          mkdirSync(join(root, 'etc/profile.d'), { recursive: true });
          // Where the script writes (after `> `), under a scratch root.
          const script = claimScript(clean, secret).replace(/(?<=> )\/(?=run|etc)/g, `${root}/`);
          execFileSync('bash', ['-c', script]);
          for (const [name, text] of expected) {
            if (name.endsWith('/')) continue;
            expect(readFileSync(join(root, name), 'utf8')).toBe(text);
          }
          expect(statSync(join(root, 'run/matrx/sandbox.json')).mode & 0o777).toBe(0o600);
          expect(statSync(join(root, 'run/matrx/sandbox.env')).mode & 0o777).toBe(0o644);
        }),
        { numRuns: 25 },
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

/** NUL cannot be in an environment value (the API refuses it). */
function withoutNul(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replaceAll('\0', '')]));
}
