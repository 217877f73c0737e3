import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { SandboxIdentity } from '../../domain/pool.js';

/**
 * A claimed pool container keeps who it belongs to in a record in its own file system, since its
 * labels were set before it had a user. Root in the sandbox can rewrite any file there, so the
 * record carries an HMAC keyed by a secret that only the container's labels hold (the engine
 * shows labels to whoever holds its socket, never to the container): a record that fails the
 * check is no record, and a sandbox cannot pass itself off as another user's.
 */
export const CLAIM_SECRET_LABEL = 'matrx.pool_secret';
export const RECORD_PATH = '/run/matrx/sandbox.json';
/** The same environment for shells: login shells source it through PROFILE_SCRIPT. */
export const ENV_FILE_PATH = '/run/matrx/sandbox.env';
const PROFILE_SCRIPT = 'etc/profile.d/zz-matrx-sandbox.sh';

export function newClaimSecret(): string {
  return randomBytes(32).toString('hex');
}

interface RecordBody {
  sandbox_id: string;
  user_id: string;
  created_at: string;
  template: string;
  ttl_seconds: number;
  idle_timeout_seconds: number;
  env: Record<string, string>;
}

function bodyOf(identity: SandboxIdentity): RecordBody {
  return {
    sandbox_id: identity.sandboxId,
    user_id: identity.userId,
    created_at: identity.createdAt.toISOString(),
    template: identity.template,
    ttl_seconds: identity.ttlSeconds,
    idle_timeout_seconds: identity.idleTimeoutSeconds,
    env: identity.env,
  };
}

function macOf(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** `'...'` with every `'` closed, escaped and reopened: bash reads the value back byte for byte. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

interface ClaimFiles {
  record: string;
  envFile: string;
  profile: string;
}

function claimFiles(identity: SandboxIdentity, secret: string): ClaimFiles {
  const body = JSON.stringify(bodyOf(identity));
  return {
    record: JSON.stringify({ body, mac: macOf(secret, body) }),
    envFile: Object.entries(identity.env)
      .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
      .join(''),
    profile: `[ -r ${ENV_FILE_PATH} ] && . ${ENV_FILE_PATH}\n`,
  };
}

/**
 * The same files as `claimArchive`, as a command for root's command channel (bash builtins only:
 * a fork-free write, where the engine's archive call costs a mount of the container's root).
 */
export function claimScript(identity: SandboxIdentity, secret: string): string {
  const { record, envFile, profile } = claimFiles(identity, secret);
  const write = (path: string, mode: string, text: string) =>
    `{ umask ${mode}; printf %s ${shellQuote(text)} > ${path}; }`;
  return [
    // /run/matrx is the command channel's; a missing /etc/profile.d fails it (then the archive).
    'set -e',
    write(ENV_FILE_PATH, '022', envFile),
    write(`/${PROFILE_SCRIPT}`, '022', profile),
    // Last: a record present means the files before it were written.
    write(RECORD_PATH, '077', record),
  ].join('\n');
}

/** The record, the env file and the profile script, as one archive to extract at `/`. */
export function claimArchive(identity: SandboxIdentity, secret: string): Readable {
  const { record, envFile, profile } = claimFiles(identity, secret);
  const pack = tar.pack();
  const root = { uid: 0, gid: 0 };
  pack.entry({ name: 'run/', type: 'directory', mode: 0o755, ...root });
  pack.entry({ name: 'run/matrx/', type: 'directory', mode: 0o755, ...root });
  // Readable by every user of the sandbox, as the container's environment is.
  pack.entry({ name: ENV_FILE_PATH.slice(1), mode: 0o644, ...root }, envFile);
  pack.entry({ name: PROFILE_SCRIPT, mode: 0o644, ...root }, profile);
  // Last: a record present means the files before it were written.
  pack.entry({ name: RECORD_PATH.slice(1), mode: 0o600, ...root }, record);
  pack.finalize();
  return Readable.from(pack);
}

/** The identity in a record's text, or null when it is malformed or its check fails. */
export function verifiedIdentity(text: string, secret: string): SandboxIdentity | null {
  try {
    const { body, mac } = JSON.parse(text) as { body: unknown; mac: unknown };
    if (typeof body !== 'string' || typeof mac !== 'string') return null;
    const expected = Buffer.from(macOf(secret, body), 'hex');
    const given = Buffer.from(mac, 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const parsed = JSON.parse(body) as RecordBody;
    const createdAt = new Date(parsed.created_at);
    if (Number.isNaN(createdAt.getTime())) return null;
    return {
      sandboxId: parsed.sandbox_id,
      userId: parsed.user_id,
      createdAt,
      template: parsed.template,
      ttlSeconds: parsed.ttl_seconds,
      idleTimeoutSeconds: parsed.idle_timeout_seconds,
      env: parsed.env,
    };
  } catch {
    return null;
  }
}
