import type { z } from 'zod';
import { SANDBOX_ID_PATTERN } from '../domain/sandbox.js';
import { sandboxNotFound, ValidationError, type ValidationIssue } from '../errors.js';
import type { RouteSpec } from './routes.js';

type Output<T> = T extends z.ZodType ? z.output<T> : undefined;

export interface RouteInput<R extends RouteSpec> {
  params: Output<R['params']>;
  query: Output<R['query']>;
  body: Output<R['body']>;
}

export interface RawRequest {
  pathParameters?: Record<string, string | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
  body?: unknown;
}

/** Validates a request against its route; a bad sandbox id is a 404 and never reaches Docker. */
export function parseRequest<R extends RouteSpec>(route: R, request: RawRequest): RouteInput<R> {
  const sandboxId = request.pathParameters?.sandbox_id;
  if (sandboxId !== undefined && !SANDBOX_ID_PATTERN.test(sandboxId)) {
    throw sandboxNotFound(sandboxId);
  }
  const issues: ValidationIssue[] = [];
  const parse = (schema: z.ZodType | undefined, value: unknown, where: string) => {
    if (!schema) return undefined;
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    issues.push(...result.error.issues.map((issue) => toIssue(issue, where, value)));
    return undefined;
  };
  const params = parse(route.params, request.pathParameters ?? {}, 'path');
  const query = parse(route.query, request.queryStringParameters ?? {}, 'query');
  let body: unknown;
  if (route.body && request.body === undefined && route.bodyRequired) {
    issues.push({ loc: ['body'], msg: 'Field required', type: 'missing' });
  } else {
    body = parse(route.body, request.body ?? {}, 'body');
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return { params, query, body } as RouteInput<R>;
}

function toIssue(issue: z.core.$ZodIssue, where: string, value: unknown): ValidationIssue {
  const loc = [where, ...issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key))];
  if (issue.code === 'invalid_type' && valueAt(value, issue.path) === undefined) {
    return { loc, msg: 'Field required', type: 'missing' };
  }
  return { loc, msg: issue.message, type: issue.code };
}

function valueAt(value: unknown, path: PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
