import { fail } from 'node:assert/strict';
import { afterAll } from '@jest/globals';
import { contractViolation } from './contract.js';

/**
 * Every answer that broke the routes' declarations in this test file. Each also fails its call,
 * and the file's afterAll fails on any, so a test that catches the call cannot hide one.
 */
const violations: string[] = [];
afterAll(() => {
  if (violations.length > 0) {
    fail(`${violations.length} response(s) broke the API contract:\n\n${violations.join('\n\n')}`);
  }
});

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export function baseUrl(): string {
  const url = process.env.MATRX_TEST_BASE_URL;
  if (!url)
    throw new Error('MATRX_TEST_BASE_URL is not set: the integration globalSetup did not run');
  return url;
}

/** The key the integration server was started with. */
export function apiKey(): string {
  return process.env.MATRX_TEST_API_KEY ?? '';
}

export interface CallOptions {
  json?: unknown;
  /** Sent as it is, for malformed JSON. */
  rawBody?: string;
  base?: string;
  /** Replaces the default `X-API-Key: <test key>`; `{}` sends no key. */
  headers?: Record<string, string>;
}

/**
 * One call to the real server, with the test key unless `headers` say otherwise. The answer must
 * be one its route declares (lib/http/routes.ts), with a body its schema accepts.
 */
export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<ApiResponse<T>> {
  const body =
    options.rawBody ?? (options.json === undefined ? undefined : JSON.stringify(options.json));
  const url = `${options.base ?? baseUrl()}${path}`;
  const response = await fetch(url, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.headers ?? { 'x-api-key': apiKey() }),
    },
    body,
  });
  const text = await response.text();
  const violation = contractViolation({
    method,
    url,
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    text,
  });
  if (violation) {
    violations.push(violation);
    fail(violation);
  }
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: the raw text is what the test sees
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

/**
 * fetch, with each answer checked against the routes' declarations like `api`'s: for the client
 * (client/), so its calls are held to the same contract.
 */
export const contractCheckedFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const contentType = response.headers.get('content-type') ?? '';
  // Bodies that are not JSON (files, archives) are the caller's to read, and streamed.
  const text = contentType.includes('application/json') ? await response.clone().text() : '';
  const violation = contractViolation({
    method: init?.method ?? 'GET',
    url: String(input),
    status: response.status,
    contentType,
    text,
  });
  if (violation) {
    violations.push(violation);
    fail(violation);
  }
  return response;
};

/** A user id unique to this run, so parallel files and earlier runs never mix. */
export function testUser(name: string): string {
  return `${testRunPrefix()}${process.pid}-${Date.now().toString(36)}-${name}`;
}

/**
 * What every user id of this run starts with: the teardown removes what this run left behind and
 * nothing of another run on the same engine.
 */
export function testRunPrefix(): string {
  return `it-${process.env.MATRX_TEST_RUN ?? 'adhoc'}-`;
}
