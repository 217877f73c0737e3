import { Transport, type CallOptions, type ClientOptions } from './http.js';
import { Sandbox } from './sandbox.js';
import type {
  Health,
  SandboxConfig,
  SandboxList,
  StorageDeleted,
  StorageTier,
  StorageUsage,
} from './types.js';

/** A create answers once the sandbox is ready: its image starting and its home restored. */
const CREATE_TIMEOUT_MS = 180_000;

/** Users' stored files (the admin endpoints). */
export class Storage {
  constructor(private readonly transport: Transport) {}

  /** Sizes and object counts of a user's stored files, per tier. */
  usage(userId: string, options: CallOptions = {}): Promise<StorageUsage> {
    return this.transport.json('getStorage', { params: { user_id: userId }, ...options });
  }

  /** Empties one tier of a user's stored files. */
  delete(userId: string, tier: StorageTier, options: CallOptions = {}): Promise<StorageDeleted> {
    return this.transport.json('deleteStorage', {
      params: { user_id: userId },
      query: { tier },
      ...options,
    });
  }
}

/**
 * The entry point: `new Sandboxes({ url, apiKey })` (or MATRX_URL and MATRX_API_KEY), then
 * `create`, `get`, `list`.
 */
export class Sandboxes {
  readonly storage: Storage;
  private readonly transport: Transport;

  constructor(options: ClientOptions = {}) {
    this.transport = new Transport(options);
    this.storage = new Storage(this.transport);
  }

  /** The base URL calls go to. */
  get url(): string {
    return this.transport.url;
  }

  /** Creates a sandbox for `userId`; answers once it is ready. */
  async create(
    userId: string,
    config: SandboxConfig = {},
    options: CallOptions = {},
  ): Promise<Sandbox> {
    const info = await this.transport.json(
      'createSandbox',
      { body: { user_id: userId, config }, ...options },
      CREATE_TIMEOUT_MS,
    );
    return new Sandbox(this.transport, info);
  }

  /** Sandboxes, of one user when `userId` is given. */
  list(options: { userId?: string } & CallOptions = {}): Promise<SandboxList> {
    const { userId, ...call } = options;
    return this.transport.json('listSandboxes', { query: { user_id: userId }, ...call });
  }

  /** One sandbox, fetched (a NotFoundError when there is none). */
  async get(sandboxId: string, options: CallOptions = {}): Promise<Sandbox> {
    const sandbox = this.connect(sandboxId);
    await sandbox.refresh(options);
    return sandbox;
  }

  /** A handle on a sandbox, without a call. */
  connect(sandboxId: string): Sandbox {
    return new Sandbox(this.transport, undefined, sandboxId);
  }

  /** The service's health; needs no key. */
  health(options: CallOptions = {}): Promise<Health> {
    return this.transport.json('health', options);
  }
}
