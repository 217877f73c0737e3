/**
 * The wire types, taken from the zod schemas the server validates with and generates /openapi.json
 * from (lib/http/schemas.ts). Type-only imports: the client carries no zod at runtime.
 */
import type { z } from 'zod';
import type * as f from '../lib/http/fileSchemas.js';
import type * as s from '../lib/http/schemas.js';

/** What a request sends: the schema's input (defaults may be left out). */
type In<F extends (...args: never[]) => z.ZodType> = z.input<ReturnType<F>>;

export type SandboxInfo = z.output<typeof s.sandboxResponse>;
export type SandboxStatus = SandboxInfo['status'];
export type SandboxList = z.output<typeof s.sandboxListResponse>;
export type CreateSandboxRequest = In<typeof s.createSandboxBody>;
export type SandboxConfig = NonNullable<CreateSandboxRequest['config']>;

export type ExecRequest = In<typeof s.execBody>;
export type ExecResult = z.output<typeof s.execResponse>;

export type StartProcessRequest = In<typeof s.startProcessBody>;
export type ProcessInfo = z.output<typeof s.processResponse>;
export type ProcessStatus = ProcessInfo['status'];
export type ProcessList = z.output<typeof s.processListResponse>;
export type ProcessOutput = z.output<typeof s.processOutputResponse>;
export type StdinRequest = In<typeof s.stdinBody>;
export type KillSignal = z.output<typeof s.killQuery>['signal'];

export type HeartbeatResult = z.output<typeof s.heartbeatResponse>;
export type CompleteRequest = z.input<typeof s.completeBody>;
export type CompleteResult = z.output<typeof s.completeResponse>;
export type ErrorReportRequest = z.input<typeof s.errorBody>;
export type ErrorReportResult = z.output<typeof s.errorReportResponse>;
export type ExtendRequest = In<typeof s.extendBody>;

export type Health = z.output<typeof s.healthResponse>;
export type StorageTier = z.output<typeof s.tierQuery>['tier'];
export type StorageUsage = z.output<typeof s.storageUsageResponse>;
export type StorageDeleted = z.output<typeof s.storageDeletedResponse>;

export type FileEntry = z.output<typeof f.fileEntryResponse>;
export type FileList = z.output<typeof f.fileListResponse>;
export type EditRequest = z.input<typeof f.editBody>;
export type EditResult = z.output<typeof f.editResponse>;
export type SearchRequest = z.input<typeof f.searchBody>;
export type SearchResult = z.output<typeof f.searchResponse>;
export type ArchiveResult = z.output<typeof f.archiveInResponse>;

export type ValidationIssue = z.output<typeof s.validationErrorResponse>['detail'][number];

/** What each route answers on success (tests/unit/clientRoutes.test.ts checks it by route). */
export interface RouteResponses {
  health: Health;
  createSandbox: SandboxInfo;
  listSandboxes: SandboxList;
  getSandbox: SandboxInfo;
  execCommand: ExecResult;
  startProcess: ProcessInfo;
  listProcesses: ProcessList;
  getProcess: ProcessInfo;
  readProcessOutput: ProcessOutput;
  writeProcessStdin: ProcessInfo;
  killProcess: ProcessInfo;
  /** Bytes, not JSON: read through Transport.send. */
  readFile: undefined;
  writeFile: FileEntry;
  listFiles: FileList;
  statFile: FileEntry;
  deleteFile: undefined;
  makeDir: FileEntry;
  moveFile: FileEntry;
  editFile: EditResult;
  searchFiles: SearchResult;
  /** A tar stream, not JSON: read through Transport.send. */
  readArchive: undefined;
  writeArchive: ArchiveResult;
  extendSandbox: SandboxInfo;
  deleteSandbox: undefined;
  heartbeat: HeartbeatResult;
  completeSandbox: CompleteResult;
  reportError: ErrorReportResult;
  getStorage: StorageUsage;
  deleteStorage: StorageDeleted;
}
