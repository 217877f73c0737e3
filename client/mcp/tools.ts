import { z } from 'zod';
import { MAX_OUTPUT_WAIT_SECONDS } from '../../lib/domain/process.js';
import type { ConfigCaps } from '../../lib/http/configSchema.js';
import { sandboxConfig } from '../../lib/http/configSchema.js';
import * as f from '../../lib/http/fileSchemas.js';
import * as s from '../../lib/http/schemas.js';

/**
 * The MCP tools' input schemas, made of the API's own (lib/http/schemas.ts). The limits that depend
 * on the server's settings are the widest those settings allow, and templates any name: the
 * server checks its own and its 422 comes back as the tool's error.
 */
const WIDEST_CAPS: ConfigCaps = {
  templates: [],
  cpuLimit: 1024,
  memoryLimitBytes: 1024 ** 4,
  maxSessionSeconds: 7 * 24 * 3600,
  allowedNetworks: ['none', 'internet'],
};
const LONGEST_COMMAND = 1_000_000;

const sandboxId = s.sandboxIdPath.shape;
const processId = s.processPath.shape;

/** A byte offset or a wait as a number, or as the query's string. */
const numberOr = <Q extends z.ZodType<number>>(query: Q, number: z.ZodNumber) =>
  z.union([number, query]);

export const TOOL_SHAPES = {
  create_sandbox: {
    user_id: s.userId.meta({ description: 'Whose sandbox it is; their home follows them' }),
    config: sandboxConfig(WIDEST_CAPS)
      .safeExtend({ template: z.string().optional() })
      .optional()
      .meta({ description: 'cpu, memory, ttl_seconds, env, network, template (all optional)' }),
  },
  list_sandboxes: s.listQuery.shape,
  get_sandbox: sandboxId,
  delete_sandbox: {
    ...sandboxId,
    graceful: z
      .boolean()
      .default(true)
      .meta({ description: 'false: stop at once; true (default): let it stop, home saved' }),
  },
  exec: { ...sandboxId, ...s.execBody(LONGEST_COMMAND).shape },
  start_process: { ...sandboxId, ...s.startProcessBody(LONGEST_COMMAND).shape },
  read_process_output: {
    ...processId,
    stdout_offset: numberOr(s.outputQuery.shape.stdout_offset, z.number().int().min(0)).optional(),
    stderr_offset: numberOr(s.outputQuery.shape.stderr_offset, z.number().int().min(0)).optional(),
    wait: numberOr(s.outputQuery.shape.wait, z.number().min(0).max(MAX_OUTPUT_WAIT_SECONDS))
      .optional()
      .meta({ description: 'Seconds to wait for new output or the end; 0 answers at once' }),
  },
  write_process_stdin: { ...processId, ...s.stdinBody(LONGEST_COMMAND).shape },
  kill_process: { ...processId, ...s.killQuery.shape },
  read_file: { ...sandboxId, ...f.pathQuery.shape },
  write_file: {
    ...sandboxId,
    ...f.writeQuery.shape,
    content: z.string().meta({ description: 'The whole file, as UTF-8 text' }),
  },
  edit_file: { ...sandboxId, ...f.editBody.shape },
  list_files: { ...sandboxId, ...f.listQuery.shape },
  search_files: { ...sandboxId, ...f.searchBody.shape },
} satisfies Record<string, z.ZodRawShape>;
