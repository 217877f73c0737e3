import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Hapi from '@hapi/hapi';
import { detailOf, hasDetail, keepHttpLayerInContract } from '../../lib/http/httpLayer.js';
import type { Logger } from '../../lib/logger.js';

const quiet = { warn: () => undefined, error: () => undefined } as unknown as Logger;

/** Raw bytes to the server, and everything it sends back until it closes. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
  });
}

const statusAndBody = (answer: string) => {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return [head.split('\r\n')[0], /content-type: application\/json/i.test(head), body];
};

describe('a hapi server kept in the error contract', () => {
  let server: Hapi.Server;
  let port: number;
  let undo: () => void;

  beforeAll(async () => {
    // Port 0 stands for "the API's port": the one server started here gets the extensions.
    undo = keepHttpLayerInContract(0, quiet);
    server = Hapi.server({ port: 0, host: '127.0.0.1' });
    server.route({
      method: '*',
      path: '/{any*}',
      options: { payload: { maxBytes: 10, parse: false } },
      handler: (request, h) => {
        if (request.path === '/crash') throw new Error('internal detail');
        if (request.path === '/framework-error') {
          return { statusCode: 502, errorMessage: 'x', stackTrace: ['at y'] };
        }
        if (request.path === '/health') return h.response({ status: 'degraded' }).code(503);
        return { fine: true };
      },
    });
    await server.start();
    port = Number(server.info.port);
  });
  afterAll(async () => {
    await server.stop();
    undo();
  });

  it.each([
    [
      'a crash',
      'GET /crash HTTP/1.1',
      'HTTP/1.1 500 Internal Server Error',
      'Internal server error',
    ],
    ['bad percent-encoding', 'GET /a%zz HTTP/1.1', 'HTTP/1.1 400 Bad Request', 'Bad Request'],
    ['an unknown method', 'FOO / HTTP/1.1', 'HTTP/1.1 400 Bad Request', 'Malformed HTTP request'],
    [
      'a CONNECT',
      'CONNECT 127.0.0.1:1 HTTP/1.1',
      'HTTP/1.1 405 Method Not Allowed',
      'CONNECT is not supported',
    ],
    [
      'an odd Expect',
      'GET / HTTP/1.1\r\nExpect: tea',
      'HTTP/1.1 417 Expectation Failed',
      'Expect: only 100-continue is supported',
    ],
    [
      'a header without a colon',
      'GET / HTTP/1.1\r\nBad Header',
      'HTTP/1.1 400 Bad Request',
      'Malformed HTTP request',
    ],
    [
      'a body over the limit',
      'POST / HTTP/1.1\r\nContent-Length: 11',
      'HTTP/1.1 413 Payload Too Large',
      'Payload content length greater than maximum allowed: 10',
      '01234567890',
    ],
    ['no Host', 'GET / HTTP/1.1\r\nX-Host: x', 'HTTP/1.1 400 Bad Request', 'Missing Host header'],
    [
      'an unsatisfiable range',
      'GET / HTTP/1.1\r\nRange: bytes=900-999',
      'HTTP/1.1 200 OK',
      '{"fine":true}',
    ],
  ])('%s answers JSON with a detail', async (name, request, statusLine, detail, body = '') => {
    const host = name === 'no Host' ? '' : 'Host: x\r\n';
    const [line, isJson, answer] = statusAndBody(
      await raw(port, `${request}\r\n${host}Connection: close\r\n\r\n${body}`),
    );
    expect([line, isJson]).toEqual([statusLine, true]);
    const text = String(answer);
    if (text.includes('"detail"')) expect(JSON.parse(text).detail).toEqual(detail);
    else expect(text).toEqual(detail);
  });

  it('headers over the limit are a 431 with a detail, and none to a HEAD', async () => {
    const long = 'x'.repeat(20_000);
    const get = statusAndBody(await raw(port, `GET /${long} HTTP/1.1\r\nHost: x\r\n\r\n`));
    expect(get).toEqual([
      'HTTP/1.1 431 Request Header Fields Too Large',
      true,
      '{"detail":"Request headers too large"}',
    ]);
    const head = statusAndBody(await raw(port, `HEAD /${long} HTTP/1.1\r\nHost: x\r\n\r\n`));
    expect(head[2]).toBe('');
  });

  it('a strict /health keeps its own body at 503', async () => {
    const [line, isJson, answer] = statusAndBody(
      await raw(port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    );
    expect([line, isJson, JSON.parse(String(answer))]).toEqual([
      'HTTP/1.1 503 Service Unavailable',
      true,
      { status: 'degraded' },
    ]);
  });

  it('a path starting with // reaches the handler', async () => {
    const [line] = statusAndBody(
      await raw(port, 'GET //?a=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    );
    expect(line).toBe('HTTP/1.1 200 OK');
  });
});

describe('details', () => {
  it('a 5xx says only its kind, a 4xx what it was told', () => {
    expect(detailOf(500, 'TypeError at line 3')).toBe('Internal server error');
    expect(detailOf(502, 'upstream said')).toBe('Bad Gateway');
    expect(detailOf(413, 'Payload too big')).toBe('Payload too big');
    expect(detailOf(404)).toBe('Not Found');
  });

  it.each([
    ['{"detail":"x"}', true],
    ['{"detail":[]}', true],
    [Buffer.from('{"detail":"x"}'), true],
    [{ detail: 'x' }, true],
    ['{"message":"x"}', false],
    ['[504] - Lambda timeout.', false],
    [null, false],
  ])('hasDetail(%p) is %p', (source, expected) => {
    expect(hasDetail(source)).toBe(expected);
  });
});
