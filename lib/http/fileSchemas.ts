import { z } from 'zod';
import { filePathProblem, normalizeFilePath } from '../domain/filePath.js';
import { FILE_TYPES } from '../ports.js';
import { commandUser, MAX_PATH_LENGTH } from './schemas.js';

/** The Files API's request and response schemas (lib/http/routes.ts). */
export const MAX_LIST_DEPTH = 10;
export const MAX_SEARCH_RESULTS = 10_000;

/** Absolute, no `..` segment, no NUL; normalized once accepted. */
export const filePath = z
  .string()
  .max(MAX_PATH_LENGTH)
  .superRefine((path, context) => {
    const problem = filePathProblem(path);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  })
  .transform(normalizeFilePath)
  .meta({ description: 'Absolute, without .. segments or NUL', example: '/home/agent/notes.md' });

const flag = (fallback: 'true' | 'false') =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback)
    .transform((value) => value === 'true' || value === '1');

export const pathQuery = z.object({ path: filePath, user: commandUser });

export const writeQuery = z.object({
  path: filePath,
  user: commandUser,
  mode: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'must be octal permission bits, like 644 or 0755')
    .default('644')
    .transform((mode) => parseInt(mode, 8)),
});

export const listQuery = z.object({
  path: filePath,
  user: commandUser,
  depth: z.coerce.number().int().min(1).max(MAX_LIST_DEPTH).default(1),
});

export const deleteQuery = z.object({
  path: filePath,
  user: commandUser,
  recursive: flag('false'),
});

export const mkdirBody = z.object({ path: filePath, user: commandUser });

export const moveBody = z.object({
  from: filePath,
  to: filePath,
  overwrite: z.boolean().default(false),
  user: commandUser,
});

export const editBody = z.object({
  path: filePath,
  old_string: z.string().min(1),
  new_string: z.string(),
  replace_all: z.boolean().default(false),
  user: commandUser,
});

export const searchBody = z.object({
  pattern: z
    .string()
    .min(1)
    .max(4096)
    .refine((pattern) => !pattern.includes('\0'), 'must not contain NUL'),
  path: filePath,
  glob: z
    .string()
    .min(1)
    .max(1024)
    .refine((glob) => !glob.includes('\0'), 'must not contain NUL')
    .optional(),
  ignore_case: z.boolean().default(false),
  max_results: z.number().int().min(1).max(MAX_SEARCH_RESULTS).default(1000),
  user: commandUser,
});

export const fileEntryResponse = z.strictObject({
  path: z.string(),
  name: z.string(),
  type: z.enum(FILE_TYPES),
  size: z.number().int(),
  mode: z.string(),
  modified_at: z.string(),
  target: z.string().optional(),
});

export const fileListResponse = z.strictObject({
  path: z.string(),
  entries: z.array(fileEntryResponse),
});

export const editResponse = z.strictObject({ path: z.string(), replacements: z.number().int() });

export const searchResponse = z.strictObject({
  matches: z.array(z.strictObject({ path: z.string(), line: z.number().int(), text: z.string() })),
  truncated: z.boolean(),
  engine: z.string(),
});

export const archiveInResponse = z.strictObject({
  path: z.string(),
  files: z.number().int(),
  bytes: z.number().int(),
});
