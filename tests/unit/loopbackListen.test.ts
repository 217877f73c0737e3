import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { keepPortOnLoopback, LOOPBACK, onLoopback } from '../../lib/loopbackListen.js';

const done = () => undefined;

describe('onLoopback', () => {
  it.each([
    ['port, host, callback', [3002, '0.0.0.0', done], [3002, LOOPBACK, done]],
    ['port, null host (hapi without one)', [3002, null, done], [3002, LOOPBACK, done]],
    ['port, callback', [3002, done], [3002, LOOPBACK, done]],
    ['port alone', [3002], [3002, LOOPBACK]],
    ['port, host, backlog, callback', [3002, '::', 511, done], [3002, LOOPBACK, 511, done]],
    ['port as a string', ['3002', '0.0.0.0'], ['3002', LOOPBACK]],
    ['options', [{ port: 3002, host: '0.0.0.0' }, done], [{ port: 3002, host: LOOPBACK }, done]],
  ])('moves the port onto loopback: %s', (_form, args, expected) => {
    expect(onLoopback(3002, args)).toEqual(expected);
  });

  it.each([
    ['another port', [8000, '0.0.0.0', done]],
    ['another port in options', [{ port: 8000, host: '0.0.0.0' }]],
    ['a socket path', ['/tmp/api.sock', done]],
    ['a socket path in options', [{ path: '/tmp/api.sock' }]],
  ])('leaves anything else as it is: %s', (_form, args) => {
    expect(onLoopback(3002, args)).toBe(args);
  });
});

describe('keepPortOnLoopback', () => {
  it('a server of this process asking for every address gets 127.0.0.1 on that port', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, LOOPBACK, resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const undo = keepPortOnLoopback(port);
    const server = createServer();
    try {
      await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
      expect(server.address()).toMatchObject({ address: LOOPBACK, port });
    } finally {
      undo();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
