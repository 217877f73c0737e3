import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { apiKey, baseUrl, testUser } from '../support/api.js';
import { fuzzRequests, rawRequests, type FuzzRequest } from '../support/fuzzRequests.js';
import { createReady, deleteAll, exec, type WireSandbox } from '../support/sandboxes.js';

/**
 * Bad input across every route against the real server: generated requests (fast-check) through
 * node:http, and broken bytes through raw sockets, for what no client library sends. Every answer
 * must come within ANSWER_BOUND_MS, below 500, and, when an error, as JSON `{"detail": ...}`.
 * MATRX_FUZZ_SEED replays a run: the seed is printed with the count and the slowest answer.
 */
const HTTP_RUNS = 10_000;
const RAW_RUNS = 600;
const CONCURRENCY = 12;
const ANSWER_BOUND_MS = 20_000;
const seed = Number(process.env.MATRX_FUZZ_SEED ?? Date.now() % 2 ** 31);

interface Answer {
  status: number;
  contentType: string;
  body: string;
  ms: number;
}

/** A request that got no answer (errors of node's realm are not Jest's `Error`). */
interface Failure {
  failure: string;
}
const failure = (error: unknown): Failure => ({
  failure: String((error as Error)?.message ?? error),
});

const user = testUser('fuzz');
let sandbox: WireSandbox;
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

beforeAll(async () => {
  sandbox = await createReady(user);
});
afterAll(async () => {
  agent.destroy();
  await deleteAll(user);
});

function send(target: URL, fuzz: FuzzRequest): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        method: fuzz.method,
        path: fuzz.target,
        // Node's client frames no body of a DELETE, OPTIONS or TRACE unless told its length.
        headers: fuzz.body ? { ...fuzz.headers, 'content-length': fuzz.body.length } : fuzz.headers,
        agent,
        timeout: ANSWER_BOUND_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: decoded(Buffer.concat(chunks), res.headers['content-encoding']).toString('utf8'),
            ms: performance.now() - started,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${ANSWER_BOUND_MS} ms`)));
    req.on('error', reject);
    req.end(fuzz.body);
  });
}

/** A body as the client asked for it: a large answer comes compressed to one that accepts it. */
function decoded(body: Buffer, encoding: string | undefined): Buffer {
  if (encoding === 'gzip') return gunzipSync(body);
  if (encoding === 'deflate') return inflateSync(body);
  if (encoding === 'br') return brotliDecompressSync(body);
  return body;
}

/** Raw bytes, then whatever comes back until the server closes. */
function sendRaw(target: URL, bytes: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(target.port), target.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${ANSWER_BOUND_MS} ms`));
    }, ANSWER_BOUND_MS);
    socket.on('connect', () => socket.write(Buffer.from(bytes, 'latin1')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A server may reset a connection whose bytes it refused, once it has answered.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks).toString('latin1'), performance.now() - started));
    });
  });
}

function parseRaw(text: string, ms: number): Answer {
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const contentType =
    headerLines.find((l) => /^content-type:/i.test(l))?.replace(/^content-type:\s*/i, '') ?? '';
  return { status, contentType, body: Buffer.from(rest.join('\r\n\r\n'), 'latin1').toString(), ms };
}

/** What is wrong with an answer, or null. */
function problemWith(answer: Answer, method: string): string | null {
  if (answer.status === 0) return 'no HTTP answer before the connection closed';
  if (answer.status >= 500) return `answered ${answer.status}: ${answer.body.slice(0, 300)}`;
  if (answer.status < 400 || method === 'HEAD') return null;
  if (!answer.contentType.startsWith('application/json')) {
    return `error ${answer.status} as ${answer.contentType || 'no content type'}: ${answer.body.slice(0, 300)}`;
  }
  try {
    const body = JSON.parse(answer.body) as { detail?: unknown };
    if (body.detail === undefined)
      return `error ${answer.status} without detail: ${answer.body.slice(0, 300)}`;
  } catch {
    return `error ${answer.status} with a body that is not JSON: ${answer.body.slice(0, 300)}`;
  }
  return null;
}

/** Runs `work` on every item, `limit` at a time. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

const describeItem = (method: string, target: string) =>
  `${method} ${target.length > 200 ? `${target.slice(0, 200)}... (${target.length} chars)` : target}`;

describe('bad input across every route', () => {
  it(`${HTTP_RUNS + RAW_RUNS} generated requests: no 5xx, every error a JSON detail, no hang`, async () => {
    const target = new URL(baseUrl());
    const ids = { sandboxId: sandbox.sandbox_id, userId: user };
    const generated = fc.sample(fuzzRequests(ids, apiKey()), { seed, numRuns: HTTP_RUNS });
    const raw = fc.sample(rawRequests(apiKey()), { seed, numRuns: RAW_RUNS });
    // Bodies past the HTTP layer's 10 MiB limit: a few, they are slow to send.
    const oversize = Buffer.alloc(10 * 1024 * 1024 + 1, 'x');
    for (const path of ['/sandboxes', `/sandboxes/${sandbox.sandbox_id}/exec`, '/nowhere']) {
      generated.push({
        method: 'POST',
        target: path,
        headers: { 'x-api-key': apiKey() },
        body: oversize,
      });
    }

    const problems: string[] = [];
    let slowest = { ms: 0, what: '' };
    let sent = 0;
    const record = (what: string, method: string, answer: Answer | Failure) => {
      sent += 1;
      if ('failure' in answer) {
        problems.push(`${what}: ${answer.failure}`);
        return;
      }
      if (answer.ms > slowest.ms) slowest = { ms: answer.ms, what: `${what} -> ${answer.status}` };
      const problem = problemWith(answer, method);
      if (problem) problems.push(`${what}: ${problem}`);
    };
    const started = performance.now();
    await pool(generated, CONCURRENCY, async (fuzz) => {
      const answer = await send(target, fuzz).catch(failure);
      const sentWith = `headers ${JSON.stringify(fuzz.headers).slice(0, 300)}, ${fuzz.body?.length ?? 'no'} body bytes`;
      record(`${describeItem(fuzz.method, fuzz.target)} (${sentWith})`, fuzz.method, answer);
    });
    await pool(raw, CONCURRENCY, async (bytes) => {
      const answer = await sendRaw(target, bytes).catch(failure);
      const firstLine = bytes.split('\r\n')[0] ?? '';
      record(
        `raw ${JSON.stringify(describeItem('', firstLine))}`,
        firstLine.split(' ')[0] ?? '',
        answer,
      );
    });
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(
      `fuzz: ${sent} requests in ${seconds.toFixed(1)} s, seed ${seed} (MATRX_FUZZ_SEED=${seed} replays it), ` +
        `slowest ${slowest.ms.toFixed(0)} ms: ${slowest.what}, ${problems.length} problem(s)\n`,
    );

    expect(sent).toBeGreaterThanOrEqual(10_000);
    expect(problems.slice(0, 30)).toEqual([]);

    const health = await fetch(`${baseUrl()}/health`);
    expect(health.status).toBe(200);
    const after = await exec(sandbox.sandbox_id, 'echo still here');
    expect(after.body.stdout).toBe('still here\n');
  }, 300_000);
});
