/**
 * The TypeScript client of the matrx sandbox API: no dependency beyond Node's fetch, its types
 * from the schemas the server validates with.
 */
export { Sandboxes, Storage } from './sandboxes.js';
export { Sandbox, type ExecOptions } from './sandbox.js';
export { Files, type FileOptions, type Progress, type TransferOptions } from './files.js';
export { Processes, ProcessHandle, type OutputRead, type ProcessResult } from './processes.js';
export type { CallOptions, ClientOptions } from './http.js';
export {
  ApiError,
  AuthError,
  ConflictError,
  ConnectionError,
  MatrxError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
  ValidationError,
} from './errors.js';
export type * from './types.js';
