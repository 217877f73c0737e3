import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { loadConfig } from '../../lib/config.js';
import { NotFoundError, ValidationError } from '../../lib/errors.js';
import { buildRoutes, routeLimits, type Routes } from '../../lib/http/routes.js';
import { parseRequest, type RawRequest } from '../../lib/http/validation.js';

const routes = buildRoutes({ ...routeLimits(loadConfig({})), maxCommandLength: 100 });
const pathParameters = { sandbox_id: 'sbx-0123456789ab', process_id: 'proc-0123456789ab' };

/** The `loc`s of a 422, or [] when the request is accepted; anything else is thrown. */
function refused(route: Routes[keyof Routes], request: RawRequest): (string | number)[][] {
  try {
    parseRequest(route, { pathParameters, ...request });
    return [];
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return error.issues.map((issue) => issue.loc);
  }
}

const readOutput = (query: Record<string, string>) =>
  parseRequest(routes.readProcessOutput, { pathParameters, queryStringParameters: query }).query;

describe('an output read', () => {
  it('reads offsets and wait from the query, 0 by default', () => {
    expect(readOutput({})).toEqual({ stdout_offset: 0, stderr_offset: 0, wait: 0 });
    expect(readOutput({ stdout_offset: '12', stderr_offset: '007', wait: '2.5' })).toEqual({
      stdout_offset: 12,
      stderr_offset: 7,
      wait: 2.5,
    });
    expect(readOutput({ wait: '20' }).wait).toBe(20);
  });

  it.each([
    [{ stdout_offset: '-1' }, 'stdout_offset'],
    [{ stdout_offset: '1.5' }, 'stdout_offset'],
    [{ stderr_offset: 'abc' }, 'stderr_offset'],
    [{ stderr_offset: '' }, 'stderr_offset'],
    [{ stderr_offset: '1e3' }, 'stderr_offset'],
    [{ stdout_offset: '9'.repeat(16) }, 'stdout_offset'],
    [{ wait: '20.5' }, 'wait'],
    [{ wait: '-1' }, 'wait'],
    [{ wait: 'soon' }, 'wait'],
    [{ wait: '9'.repeat(400) }, 'wait'],
  ])('refuses %j with a 422 at query.%s', (query, field) => {
    const locs = refused(routes.readProcessOutput, { queryStringParameters: query });
    expect(locs.length).toBeGreaterThan(0);
    for (const loc of locs) expect(loc).toEqual(['query', field]);
  });

  it('any query either parses to whole offsets and a wait of 0..20 or is a 422, never a crash', () => {
    const value = fc.oneof(fc.string(), fc.nat().map(String), fc.double().map(String));
    fc.assert(
      fc.property(
        fc.record(
          { stdout_offset: value, stderr_offset: value, wait: value },
          { requiredKeys: [] },
        ),
        (query) => {
          const locs = refused(routes.readProcessOutput, { queryStringParameters: query });
          if (locs.length > 0) {
            for (const loc of locs) expect(loc[0]).toBe('query');
            return;
          }
          const parsed = readOutput(query);
          expect(Number.isSafeInteger(parsed.stdout_offset) && parsed.stdout_offset >= 0).toBe(
            true,
          );
          expect(Number.isSafeInteger(parsed.stderr_offset) && parsed.stderr_offset >= 0).toBe(
            true,
          );
          expect(parsed.wait >= 0 && parsed.wait <= 20).toBe(true);
        },
      ),
    );
  });
});

describe('the other process requests', () => {
  it('a start takes the exec rules, and a timeout of 1 s to a day', () => {
    const start = (body: Record<string, unknown>) =>
      refused(routes.startProcess, { body: { command: 'sleep 1', ...body } });
    expect(start({ cwd: '/srv', env: { A: 'b' }, user: 'root', timeout: 86_400 })).toEqual([]);
    expect(
      parseRequest(routes.startProcess, { pathParameters, body: { command: 'x' } }).body,
    ).toEqual({ command: 'x', user: 'agent' });
    expect(start({ timeout: 0 })).toEqual([['body', 'timeout']]);
    expect(start({ timeout: 86_401 })).toEqual([['body', 'timeout']]);
    expect(start({ timeout: 1.5 })).toEqual([['body', 'timeout']]);
    expect(start({ cwd: 'relative' })).toEqual([['body', 'cwd']]);
    expect(start({ command: '   ' })).toEqual([['body', 'command']]);
    expect(refused(routes.startProcess, {})).toEqual([['body']]);
  });

  it('stdin takes data up to the command length, eof false by default', () => {
    expect(
      parseRequest(routes.writeProcessStdin, { pathParameters, body: { data: '' } }).body,
    ).toEqual({ data: '', eof: false });
    expect(refused(routes.writeProcessStdin, { body: { data: 'x'.repeat(101) } })).toEqual([
      ['body', 'data'],
    ]);
    expect(refused(routes.writeProcessStdin, { body: { data: 'x', eof: 'yes' } })).toEqual([
      ['body', 'eof'],
    ]);
    expect(refused(routes.writeProcessStdin, { body: { eof: true } })).toEqual([['body', 'data']]);
  });

  it('a kill takes TERM by default or KILL, anything else is a 422', () => {
    const kill = (query: Record<string, string>) =>
      parseRequest(routes.killProcess, { pathParameters, queryStringParameters: query }).query;
    expect(kill({}).signal).toBe('TERM');
    expect(kill({ signal: 'KILL' }).signal).toBe('KILL');
    for (const signal of ['term', 'HUP', 'SIGKILL', '9', '']) {
      expect(refused(routes.killProcess, { queryStringParameters: { signal } })).toEqual([
        ['query', 'signal'],
      ]);
    }
  });

  it('leaves a process id to the service: the sandbox’s 404 comes first', () => {
    const input = parseRequest(routes.getProcess, {
      pathParameters: { ...pathParameters, process_id: 'nope' },
    });
    expect(input.params.process_id).toBe('nope');
    expect(() =>
      parseRequest(routes.getProcess, { pathParameters: { sandbox_id: 'x', process_id: 'nope' } }),
    ).toThrow(NotFoundError);
  });
});
