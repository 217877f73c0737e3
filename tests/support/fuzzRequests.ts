import fc from 'fast-check';
import { allRoutes } from './contract.js';

/** A request as the fuzz suite sends it with node:http: everything a well-formed client can. */
export interface FuzzRequest {
  method: string;
  /** Path and query, already encoded (percent-encoding may be broken on purpose). */
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** The real ids a request may name: a running sandbox of the suite's and its user. */
export interface RealIds {
  sandboxId: string;
  userId: string;
}

const VALID_USER_ID = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$/;

/** Huge ones are rarer: past every limit (10,000 characters, 16 KiB of headers) a few suffice. */
const oddStrings = fc.oneof(
  { weight: 3, arbitrary: fc.string() },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      '..',
      '.',
      '../../etc/passwd',
      '..%2f..%2f',
      '%00',
      '\uFEFF',
      '\uD800',
      '😀'.repeat(50),
      '$(reboot)',
      '`id`',
      '{"a":1}',
      'null',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(255, 256, 10_001, 16_385, 70_000).map((n) => 'x'.repeat(n)),
  },
);

const oddValues: fc.Arbitrary<unknown> = fc.oneof(
  oddStrings,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 0, 1, 601, 1e308, Number.MAX_SAFE_INTEGER + 2),
  fc.array(fc.oneof(fc.integer(), oddStrings), { maxLength: 5 }),
  fc.dictionary(oddStrings, oddStrings, { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Ids that the service must refuse or not find: never one of a real sandbox. */
const badSandboxIds = fc.oneof(
  fc.hexaString({ minLength: 12, maxLength: 12 }).map((hex) => `sbx-${hex.toLowerCase()}`),
  fc.hexaString({ minLength: 0, maxLength: 20 }).map((hex) => `sbx-${hex}`),
  oddStrings,
  fc.constantFrom('sbx-', 'SBX-0123456789AB', 'sbx-0123456789ab/..', 'sbx-0123456789abc'),
);

const badUserIds = oddStrings.filter((id) => !VALID_USER_ID.test(id));

const processIds = fc.oneof(
  fc.hexaString({ minLength: 12, maxLength: 12 }).map((hex) => `proc-${hex.toLowerCase()}`),
  oddStrings,
);

/** Percent-encoded; a lone surrogate (which cannot be) becomes `?`. */
const encode = (text: string) =>
  encodeURIComponent(
    text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '?'),
  );

/** A segment as a client could put it in a path: encoded, or with broken percent-encoding. */
const segment = (value: fc.Arbitrary<string>) =>
  fc
    .tuple(value, fc.constantFrom('encoded', 'encoded', 'encoded', 'raw', 'broken'))
    .map(([text, how]) => {
      if (how === 'encoded') return encode(text);
      if (how === 'broken')
        return `${encode(text.slice(0, 8))}%${['', 'z', 'zz', 'c3%28', 'e2%82'][text.length % 5]}`;
      // Raw: what Node's client lets through unencoded (printable Latin-1, no `/ ? #`).
      return text.replace(/[^\x21-\xff]|[/?#]/g, '_') || '_';
    });

/** Fields each body may carry: the route's own, with every value drawn from the odd ones. */
const BODY_FIELDS: Record<string, string[]> = {
  '/sandboxes': ['user_id', 'config'],
  '/sandboxes/{sandbox_id}/exec': ['command', 'timeout', 'user', 'cwd', 'env', 'stdin'],
  '/sandboxes/{sandbox_id}/processes': ['command', 'timeout', 'user', 'cwd', 'env'],
  '/sandboxes/{sandbox_id}/processes/{process_id}/stdin': ['data', 'eof'],
  '/sandboxes/{sandbox_id}/extend': ['ttl_seconds'],
  '/sandboxes/{sandbox_id}/complete': ['result'],
  '/sandboxes/{sandbox_id}/error': ['error', 'details'],
};
const CONFIG_FIELDS = ['cpu', 'memory', 'ttl_seconds', 'env', 'network', 'template', 'idle'];
const QUERY_KEYS = [
  'user_id',
  'graceful',
  'wait',
  'stdout_offset',
  'stderr_offset',
  'signal',
  'strict',
];

const UNKNOWN_SANDBOX = 'sbx-000000000000';

/** Whether a server resolving dot segments and encodings would serve another path. */
function leadsElsewhere(target: string): boolean {
  const [path = ''] = target.split('?');
  return new URL(`http://host${path}`).pathname !== path;
}

/** Requests that could change the suite's real sandbox: they never name it. */
function mayNameRealSandbox(method: string, template: string): boolean {
  if (method === 'DELETE' && template === '/sandboxes/{sandbox_id}') return false;
  return !/\/(complete|error|processes)$/.test(template) || method === 'GET';
}

const fieldsOf = (names: string[]) =>
  fc.dictionary(fc.constantFrom(...names, 'extra', '__proto__', 'constructor'), oddValues, {
    maxKeys: names.length + 1,
  });

function jsonBody(template: string, method: string, real: boolean): fc.Arbitrary<unknown> {
  const names = BODY_FIELDS[template] ?? ['x'];
  if (template === '/sandboxes' && method === 'POST') {
    // A create never succeeds: its user id is always one the schema refuses, or missing.
    return fc.record(
      {
        user_id: badUserIds,
        config: fc.oneof(oddValues, fieldsOf(CONFIG_FIELDS)),
        extra: oddValues,
      },
      { requiredKeys: [] },
    );
  }
  if (real && /\/exec$/.test(template)) {
    // On the real sandbox a command never runs: it is always one the schema refuses.
    return fc
      .record({
        command: fc.oneof(
          fc.constantFrom('', '  \n', 'x'.repeat(10_001)),
          oddValues.filter((v) => typeof v !== 'string'),
        ),
        rest: fieldsOf(names),
      })
      .map(({ command, rest }) => ({ ...rest, command }));
  }
  return fc.oneof(fieldsOf(names), oddValues);
}

const bodies = (template: string, method: string, real: boolean) =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: jsonBody(template, method, real).map((v) =>
        Buffer.from(JSON.stringify(v) ?? 'null'),
      ),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          '{',
          '{"command": "true"',
          '[1,2',
          'nul\u0000l',
          '\uFEFF{}',
          '{"a":1}{"b":2}',
          '"just a string"',
          '<xml/>',
          'user_id=x&config=y',
          '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}',
        )
        .map((text) => Buffer.from(text)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
  );

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/json; charset=latin1',
  'application/xml',
  '*/*',
  'garbage',
  '',
];

/** Header values Node's client will send (no CR, LF or NUL, nothing past Latin-1). */
const headerText = fc.string({ maxLength: 200 }).map((text) => text.replace(/[^\x20-\x7e]/g, ''));

function headers(apiKey: string) {
  return fc
    .record(
      {
        key: fc.oneof(
          { weight: 8, arbitrary: fc.constant({ 'x-api-key': apiKey }) },
          { weight: 1, arbitrary: fc.constant({}) },
          { weight: 1, arbitrary: headerText.map((v) => ({ 'x-api-key': v })) },
          { weight: 1, arbitrary: headerText.map((v) => ({ authorization: `Bearer ${v}` })) },
          { weight: 1, arbitrary: headerText.map((v) => ({ authorization: v })) },
        ),
        contentType: fc.option(fc.constantFrom(...CONTENT_TYPES)),
        others: fc.dictionary(
          fc.oneof(
            fc.constantFrom(
              'x-request-id',
              'cookie',
              'accept',
              'accept-encoding',
              'content-encoding',
              'origin',
              'x-forwarded-for',
              'user-agent',
              'expect',
              'if-none-match',
              'range',
            ),
            fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
          ),
          fc.oneof(
            headerText,
            fc.constantFrom('gzip', '=;;"', 'a=b; ; =c; "d', '100-continue', 'x'.repeat(4000)),
          ),
          { maxKeys: 4 },
        ),
      },
      { requiredKeys: ['key', 'others'] },
    )
    .map(({ key, contentType, others }) => ({
      ...others,
      ...(contentType === undefined || contentType === null ? {} : { 'content-type': contentType }),
      ...key,
    }));
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND', 'TRACE'];
const routes = allRoutes();

const query = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...QUERY_KEYS), oddStrings),
      fc.oneof(oddStrings, fc.constantFrom('0', '1', 'true', '21', '-1', '1e3', 'TERM', 'KILL')),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&'));

/** A request to one of the routes (or something near one), with every part drawn odd. */
export function fuzzRequests(ids: RealIds, apiKey: string): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      route: fc.constantFrom(...routes),
      method: fc.option(fc.constantFrom(...METHODS), { freq: 4 }),
      realSandbox: fc.boolean(),
      sandboxId: badSandboxIds,
      processId: processIds,
      userId: fc.oneof(badUserIds, fc.constant(ids.userId), fc.stringMatching(VALID_USER_ID)),
      asset: oddStrings,
      prefix: fc.constantFrom('', '', '', '', '/', '//', '/..', '/%2e%2e', '/./'),
      suffix: fc.constantFrom('', '', '', '', '/', '/..', '/extra', '%00', '/%2F'),
      query,
      headers: headers(apiKey),
      seed: fc.integer(),
    })
    .chain((draw) => {
      const method = (draw.method ?? draw.route.method).toUpperCase();
      const real = draw.realSandbox && mayNameRealSandbox(method, draw.route.path);
      const sandbox = real
        ? fc.constant(ids.sandboxId)
        : segment(draw.sandboxId.length ? fc.constant(draw.sandboxId) : badSandboxIds);
      return fc
        .record({
          sandbox,
          process: segment(fc.constant(draw.processId)),
          user: segment(fc.constant(draw.userId)),
          asset: segment(fc.constant(draw.asset)),
          body:
            method === 'GET' || method === 'HEAD'
              ? fc.constant(undefined)
              : bodies(draw.route.path, method, real),
        })
        .map((parts) => {
          const targetNaming = (sandboxId: string) => {
            const path = draw.route.path
              .replace('{sandbox_id}', sandboxId)
              .replace('{process_id}', parts.process)
              .replace('{user_id}', parts.user)
              .replace('{asset}', parts.asset);
            const target = `${draw.prefix}${path}${draw.suffix}${draw.query ? `?${draw.query}` : ''}`;
            return target.startsWith('/') ? target : `/${target}`;
          };
          const target = targetNaming(parts.sandbox);
          return {
            method,
            // Dot segments (`/exec/..`) lead elsewhere, DELETE /sandboxes/{id} say: not the real one.
            target: real && leadsElsewhere(target) ? targetNaming(UNKNOWN_SANDBOX) : target,
            headers: draw.headers,
            body: parts.body,
          };
        });
    });
}

/**
 * Text of single bytes: a raw request goes out as latin1, which keeps only a code unit's low byte,
 * so a wider character could turn into a CR or LF and end the request early (a second, pipelined
 * request, answered twice).
 */
const byteText = (maxLength: number) =>
  fc.string({ unit: fc.nat({ max: 0xff }).map((code) => String.fromCharCode(code)), maxLength });

/** Bytes only a raw socket sends: broken request lines, headers, framing. Always complete. */
export function rawRequests(apiKey: string): fc.Arbitrary<string> {
  const line = fc.oneof(
    fc.constantFrom(
      'FOO / HTTP/1.1',
      'GET / HTTP/9.9',
      'GET /health',
      'GET  /health HTTP/1.1',
      'GET * HTTP/1.1',
      'OPTIONS * HTTP/1.1',
      'CONNECT 127.0.0.1:1 HTTP/1.1',
      'GET http://127.0.0.1/health HTTP/1.1',
      'GET //// HTTP/1.1',
      'GET /sandboxes/%zz HTTP/1.1',
      'GET /%00 HTTP/1.1',
      'GET /sandboxes\u0000 HTTP/1.1',
      'GET /health?\u0000=1 HTTP/1.1',
      'GET /\u00ff\u00fe HTTP/1.1',
      'G\u00c9T / HTTP/1.1',
      'GET /users/..%2f..%2f/storage HTTP/1.1',
    ),
    fc
      .tuple(fc.constantFrom('GET', 'POST', 'DELETE', 'BREW', 'get'), byteText(60))
      .map(([method, path]) => `${method} /${path.replace(/[\r\n ]/g, '')} HTTP/1.1`),
    fc.nat({ max: 40_000 }).map((n) => `GET /${'a'.repeat(n)} HTTP/1.1`),
  );
  const header = fc.oneof(
    fc.constantFrom(
      'Bad Header',
      'X-Null: a\u0000b',
      ': empty-name',
      'Content-Length: 3\r\nContent-Length: 4',
      'Content-Length: -1',
      'Content-Length: abc',
      'Transfer-Encoding: chunked\r\nContent-Length: 2',
      `X-Big: ${'x'.repeat(20_000)}`,
      'Cookie: a=b; ; =c; "d',
      'Content-Type: application/json; charset=\u00ff',
      ' folded: header',
    ),
    fc
      .tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), byteText(40))
      .map(([name, value]) => `${name}: ${value.replace(/[\r\n]/g, '')}`),
  );
  return fc
    .record({ line, extra: fc.array(header, { maxLength: 3 }), keyed: fc.boolean() })
    .map(({ line: requestLine, extra, keyed }) =>
      [
        requestLine,
        'Host: 127.0.0.1',
        ...(keyed ? [`X-API-Key: ${apiKey}`] : []),
        ...extra,
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
}
