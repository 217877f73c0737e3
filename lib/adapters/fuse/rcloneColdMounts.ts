import { execFile, spawn } from 'node:child_process';
import { constants, openSync, closeSync } from 'node:fs';
import { access, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { userKey } from '../../domain/storage.js';
import { S3, UnavailableError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ColdMounts, ColdSweep } from '../../ports.js';
import { mountAt, parseMountInfo, type MountEntry } from './mountTable.js';
import { MountRunner } from './mountRunner.js';

const run = promisify(execFile);

export interface ColdMountSettings {
  /** Where the mounts live on the host: `bucket`, `users/<id>`, `slots/<slot>`. */
  root: string;
  bucket: string;
  region: string;
  /** An S3-compatible server; unset: AWS S3. */
  endpoint?: string;
  /** How long a listing is trusted before S3 is asked again (another host's writes). */
  dirCacheSeconds: number;
  /** Owner of every file and directory as the sandbox sees them (the image's `agent`). */
  uid: number;
  gid: number;
}

const FUSE_TYPE = 'fuse.rclone';
/** How a mount shows in a sandbox's mount list: no bucket, endpoint or key in it. */
const DEVICE_NAME = 'matrx-cold';
const MOUNT_WAIT_MS = 20_000;
/** An empty slot is removed this long after it was made at the earliest. */
const EMPTY_SLOT_KEPT_MS = 120_000;
/** What rclone gets of the service's environment: how to reach S3 and nothing else. */
const PASSED_ENV = /^(PATH|HOME|TMPDIR|AWS_(?!CA_BUNDLE$|ENDPOINT_URL)[A-Z0-9_]+)$/;

/**
 * The cold tier on this host, with Debian's rclone: ONE FUSE mount of the bucket's `users/` prefix
 * (`<root>/bucket`, never seen by a sandbox), a bind of `users/<id>/cold` per user
 * (`<root>/users/<id>`, gone with that user's last sandbox here) and a bind of that per container
 * (`<root>/slots/<slot>`). A container binds its empty slot at /data/cold with `rslave`
 * propagation when it is created, so the user's bind made later (a pool container claimed)
 * appears inside it. No credential, device or capability goes into the sandbox.
 *
 * rclone runs with no write cache: a file goes to S3 as it is written and its close returns once
 * S3 has it (or fails with EIO), so a stopped sandbox has nothing left to upload.
 * All state is the host's mount table and one rclone process: it outlives a restart of the API,
 * and the reconciler's process sees what the API's made.
 */
export class RcloneColdMounts implements ColdMounts {
  #prepared: Promise<string | null> | undefined;
  #mounting: Promise<MountEntry> | undefined;
  /** The bucket mount whose identity file was found to be this service's. */
  #verifiedMount: string | undefined;
  readonly #mounter = new MountRunner();
  /** One attach or detach at a time per user in this process. */
  readonly #userLocks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly settings: ColdMountSettings,
    private readonly logger: Logger,
  ) {}

  get #bucketDir(): string {
    return join(this.settings.root, 'bucket');
  }

  #userDir(userId: string): string {
    return join(this.settings.root, 'users', userId);
  }

  slotPath(slot: string): string {
    return join(this.settings.root, 'slots', slot);
  }

  unavailableReason(): Promise<string | null> {
    this.#prepared ??= this.#prepare();
    return this.#prepared;
  }

  async #prepare(): Promise<string | null> {
    if (process.getuid?.() !== 0) return 'the service does not run as root (mounts need it)';
    try {
      await access('/dev/fuse', constants.R_OK | constants.W_OK);
    } catch {
      return '/dev/fuse is missing (FUSE)';
    }
    try {
      await run('rclone', ['version'], { env: this.#env() });
    } catch {
      return 'rclone is not installed (Debian: apt-get install rclone fuse3)';
    }
    try {
      const { root } = this.settings;
      await mkdir(root, { recursive: true, mode: 0o700 });
      // Binds made under the root must reach the containers: the root is a shared mount.
      let here = mountAt(await this.#table(), root);
      if (!here) await this.#mounter.run(['mount', '--bind', root, root]);
      here = mountAt(await this.#table(), root);
      if (!here?.shared) await this.#mounter.run(['mount', '--make-shared', root]);
      const table = await this.#table();
      for (const dir of ['bucket', 'users', 'slots']) {
        const path = join(root, dir);
        // A mount point is there already. One left dead by a crash (every call on it fails with
        // ENOTCONN) is replaced by the bucket's mount as it is next needed.
        if (!mountAt(table, path)) await mkdir(path, { recursive: true, mode: 0o700 });
      }
    } catch (error) {
      return `cannot prepare ${this.settings.root}: ${(error as Error).message}`;
    }
    return null;
  }

  async attach(userId: string, slot: string): Promise<void> {
    await this.#withUser(userId, async () => {
      const { bucket, table } = await this.#bucketMount();
      const slotDir = this.slotPath(slot);
      if (mountAt(table, slotDir)) await this.#unmount(slotDir);
      const userBound = mountAt(table, this.#userDir(userId))?.device === bucket.device;
      // Through the mount: the prefix exists for rclone from now on, files or not.
      const prefix = join(this.#bucketDir, this.#prefixOf(userId));
      if (!userBound) await mkdir(prefix, { recursive: true });
      await mkdir(slotDir, { recursive: true, mode: 0o755 });
      // The slot straight from the prefix, beside the user's bind (the same mount): a claim
      // waits for one mount, not two in a row.
      await Promise.all([
        userBound ? undefined : this.#bindUser(userId, table, prefix),
        this.#mounter.run(['mount', '--bind', prefix, slotDir]),
      ]);
    });
  }

  async detach(slot: string): Promise<void> {
    const slotDir = this.slotPath(slot);
    const entry = mountAt(await this.#table(), slotDir);
    const userId = entry && this.#userOf(entry);
    if (!userId) {
      await rmdir(slotDir).catch(() => undefined);
      return;
    }
    await this.#withUser(userId, async () => {
      await this.#unmountIfMounted(slotDir);
      await rmdir(slotDir).catch(() => undefined);
      await this.#releaseUserIfUnused(userId);
    });
  }

  async refresh(): Promise<void> {
    // rclone reads every directory from S3 afresh after a SIGHUP.
    const pid = await this.#rclonePid();
    if (pid) process.kill(pid, 'SIGHUP');
  }

  async mountedUsers(): Promise<number> {
    const prefix = join(this.settings.root, 'users') + '/';
    return (await this.#table()).filter((entry) => entry.mountPoint.startsWith(prefix)).length;
  }

  /**
   * Slots no container binds any more (a crash between a stop and its detach), user binds with
   * no slot, and binds of a bucket mount whose rclone died (bound again where a container still
   * uses them, so its /data/cold comes back).
   */
  async sweep(slotsInUse: () => Promise<ReadonlySet<string>>): Promise<ColdSweep> {
    const swept: ColdSweep = { slots: 0, users: 0, repaired: 0 };
    if (await this.unavailableReason()) return swept;
    const slotsRoot = join(this.settings.root, 'slots');
    // The mounts first, the containers after: a slot bound by now belongs to a container that
    // existed before the listing (a create binds its slot after making the container).
    const table = await this.#table();
    const names = await readdir(slotsRoot).catch(() => []);
    const inUse = await slotsInUse();
    const live = await this.#liveBucket(table);
    for (const name of names) {
      const slotDir = join(slotsRoot, name);
      const entry = mountAt(table, slotDir);
      if (!inUse.has(slotDir)) {
        if (entry) {
          swept.slots += 1;
          await this.detach(name);
        } else if (await olderThan(slotDir, EMPTY_SLOT_KEPT_MS)) {
          // A young one may belong to a container made since the listing; a bound one stays.
          await rmdir(slotDir).catch(() => undefined);
        }
        continue;
      }
      const userId = entry && this.#userOf(entry);
      if (entry && userId && entry.device !== live?.device) {
        this.logger.warn('cold tier: binding a sandbox again after its mount died', {
          slot: name,
        });
        await this.#unmountIfMounted(slotDir);
        await this.attach(userId, name);
        swept.repaired += 1;
      }
    }
    const usersRoot = join(this.settings.root, 'users');
    for (const userId of await readdir(usersRoot).catch(() => [])) {
      const released = await this.#withUser(userId, () => this.#releaseUserIfUnused(userId));
      if (released) swept.users += 1;
    }
    return swept;
  }

  /**
   * The service stopping: with no sandbox of this host using the cold tier, the bucket's mount
   * goes; with some, it stays for them and the next start. The root's own bind (shared) always
   * stays: another process of the service (the reconciler, the API) may be creating sandboxes.
   */
  async close(): Promise<void> {
    try {
      await this.#unmountBucketIfUnused();
    } finally {
      this.#mounter.close();
    }
  }

  async #unmountBucketIfUnused(): Promise<void> {
    if (!this.#prepared || (await this.#prepared)) return;
    const { root } = this.settings;
    const held = (await this.#table()).some(
      (entry) =>
        entry.mountPoint.startsWith(join(root, 'slots') + '/') ||
        entry.mountPoint.startsWith(join(root, 'users') + '/'),
    );
    if (held) return;
    try {
      await this.#unmountIfMounted(this.#bucketDir);
    } catch (error) {
      this.logger.warn('cold tier: mounts left at stop', { error });
    }
  }

  async #withUser<T>(userId: string, work: () => Promise<T>): Promise<T> {
    const before = this.#userLocks.get(userId) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(work);
    this.#userLocks.set(userId, mine);
    try {
      return await mine;
    } finally {
      if (this.#userLocks.get(userId) === mine) this.#userLocks.delete(userId);
    }
  }

  /** The user's bind of their prefix, in place of one of a dead mount. */
  async #bindUser(userId: string, table: MountEntry[], prefix: string): Promise<void> {
    const userDir = this.#userDir(userId);
    if (mountAt(table, userDir)) await this.#unmount(userDir);
    await mkdir(userDir, { recursive: true, mode: 0o700 });
    await this.#mounter.run(['mount', '--bind', prefix, userDir]);
  }

  /** True when it unmounted the user's bind: no slot shows that user's prefix any more. */
  async #releaseUserIfUnused(userId: string): Promise<boolean> {
    const userDir = this.#userDir(userId);
    const table = await this.#table();
    const mine = mountAt(table, userDir);
    const slotsRoot = join(this.settings.root, 'slots') + '/';
    const used = table.some(
      (entry) =>
        entry.mountPoint.startsWith(slotsRoot) &&
        mine !== undefined &&
        entry.device === mine.device &&
        entry.root === mine.root,
    );
    if (used) return false;
    if (mine) await this.#unmountIfMounted(userDir);
    await rmdir(userDir).catch(() => undefined);
    return mine !== undefined;
  }

  /** `users/<id>/cold` as a path under the bucket mount (of `users/`), from the one key builder. */
  #prefixOf(userId: string): string {
    return userKey(userId, 'cold')
      .replace(/^users\//, '')
      .replace(/\/$/, '');
  }

  /** The user whose prefix a bind of the bucket mount shows. */
  #userOf(entry: MountEntry): string | null {
    if (entry.fsType !== FUSE_TYPE) return null;
    return /^\/([^/]+)\/cold$/.exec(entry.root)?.[1] ?? null;
  }

  async #unmountIfMounted(path: string): Promise<void> {
    if (mountAt(await this.#table(), path)) await this.#unmount(path);
  }

  async #unmount(path: string): Promise<void> {
    try {
      await this.#mounter.run(['umount', path]);
    } catch {
      // Busy (a container still going away): detached now, gone once nothing holds it.
      await this.#mounter.run(['umount', '--lazy', path]);
    }
  }

  async #table(): Promise<MountEntry[]> {
    return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
  }

  /** The bucket mount, if it is there and its rclone answers. */
  async #liveBucket(table: MountEntry[]): Promise<MountEntry | undefined> {
    const entry = mountAt(table, this.#bucketDir);
    if (entry?.fsType !== FUSE_TYPE) return undefined;
    try {
      await stat(this.#bucketDir);
    } catch {
      return undefined;
    }
    // A mount keeps the bucket it was made for: read once per mount.
    if (entry.mountId === this.#verifiedMount) return entry;
    const madeFor = await readFile(this.#identityFile, 'utf8').catch(() => '');
    if (madeFor !== this.#identity) {
      // Never another bucket's files at a user's /data/cold.
      throw new UnavailableError(
        S3,
        `${this.settings.root} holds a mount of another bucket or S3 server (${madeFor || 'unknown'}): give this service its own MATRX_COLD_ROOT`,
      );
    }
    this.#verifiedMount = entry.mountId;
    return entry;
  }

  get #identityFile(): string {
    return join(this.settings.root, 'bucket.json');
  }

  /** What the bucket mount shows: it is used only by a service of the same bucket. */
  get #identity(): string {
    const { bucket, endpoint, region } = this.settings;
    return JSON.stringify({ bucket, endpoint: endpoint ?? 'aws', region });
  }

  /** The bucket mount (started once for the host and again if its rclone died), and the table. */
  async #bucketMount(): Promise<{ bucket: MountEntry; table: MountEntry[] }> {
    const reason = await this.unavailableReason();
    if (reason) throw new UnavailableError(S3, `The cold tier is unavailable: ${reason}`);
    const table = await this.#table();
    const live = await this.#liveBucket(table);
    if (live) return { bucket: live, table };
    this.#mounting ??= this.#mountBucket(table).finally(() => (this.#mounting = undefined));
    const bucket = await this.#mounting;
    return { bucket, table: await this.#table() };
  }

  async #mountBucket(table: MountEntry[]): Promise<MountEntry> {
    if (mountAt(table, this.#bucketDir))
      await this.#mounter.run(['umount', '--lazy', this.#bucketDir]);
    const { root, bucket } = this.settings;
    await writeFile(this.#identityFile, this.#identity);
    const log = join(root, 'rclone.log');
    const output = openSync(log, 'a', 0o600);
    const child = spawn(
      'rclone',
      ['mount', `:s3:${bucket}/users`, this.#bucketDir, ...this.#flags()],
      {
        detached: true,
        stdio: ['ignore', output, output],
        env: this.#env(),
      },
    );
    closeSync(output);
    child.unref();
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = `rclone exited (${code ?? signal})`));
    child.once('error', (error) => (exited = error.message));
    const deadline = Date.now() + MOUNT_WAIT_MS;
    while (Date.now() < deadline && !exited) {
      const entry = mountAt(await this.#table(), this.#bucketDir);
      if (entry?.fsType === FUSE_TYPE) {
        if (child.pid) await writeFile(join(root, 'rclone.pid'), String(child.pid));
        this.logger.info('cold tier: bucket mounted', { pid: child.pid, log });
        return entry;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (!exited) child.kill();
    const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-3);
    throw new UnavailableError(
      S3,
      `The cold tier could not mount the bucket: ${exited ?? 'no mount within 20 s'} ${tail.join(' | ')}`,
    );
  }

  #flags(): string[] {
    const { endpoint, region, dirCacheSeconds, uid, gid } = this.settings;
    return [
      '--config',
      join(this.settings.root, 'rclone.conf'),
      '--devname',
      DEVICE_NAME,
      '--allow-other',
      '--uid',
      String(uid),
      '--gid',
      String(gid),
      '--dir-perms',
      '0755',
      '--file-perms',
      '0644',
      '--vfs-cache-mode',
      'off',
      '--dir-cache-time',
      `${dirCacheSeconds}s`,
      '--s3-env-auth',
      '--s3-no-check-bucket',
      '--s3-region',
      region,
      ...(endpoint
        ? ['--s3-provider', 'Other', '--s3-endpoint', endpoint, '--s3-force-path-style=true']
        : ['--s3-provider', 'AWS']),
      ...(process.env.AWS_CA_BUNDLE ? ['--ca-cert', process.env.AWS_CA_BUNDLE] : []),
      // An outage is an error the writer sees in seconds, not a retry that hangs its close.
      '--low-level-retries',
      '3',
      '--contimeout',
      '5s',
      '--timeout',
      '30s',
      '--log-level',
      'NOTICE',
    ];
  }

  #env(): NodeJS.ProcessEnv {
    return Object.fromEntries(
      Object.entries(process.env).filter(([name]) => PASSED_ENV.test(name)),
    );
  }

  async #rclonePid(): Promise<number | null> {
    const pid = Number(
      await readFile(join(this.settings.root, 'rclone.pid'), 'utf8').catch(() => ''),
    );
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    return command.startsWith('rclone\0mount\0') ? pid : null;
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  const made = await stat(path).catch(() => null);
  return made !== null && Date.now() - made.mtimeMs > ms;
}
