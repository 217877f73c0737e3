import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { loadConfig } from '../../lib/config.js';
import { ValidationError } from '../../lib/errors.js';
import { buildRoutes, routeLimits } from '../../lib/http/routes.js';
import { parseRequest } from '../../lib/http/validation.js';
import { execWire } from '../../lib/wire.js';
import { withReadySandbox } from './fakes.js';

const routes = buildRoutes({ ...routeLimits(loadConfig({})), maxCommandLength: 100 });
const sandbox_id = 'sbx-0123456789ab';

/** The `loc`s of an exec's 422, or [] when the body is accepted. */
function refused(body: Record<string, unknown>): (string | number)[][] {
  try {
    parseRequest(routes.execCommand, {
      pathParameters: { sandbox_id },
      body: { command: 'pwd', ...body },
    });
    return [];
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return error.issues.map((issue) => issue.loc);
  }
}

describe('an exec request', () => {
  it('accepts an absolute cwd, env of string values and stdin', () => {
    expect(refused({ cwd: '/tmp/x y', env: { A: '1', _b: '' }, stdin: 'abc' })).toEqual([]);
    expect(refused({ cwd: '/' })).toEqual([]);
    // stdin is bytes: NUL goes through.
    expect(refused({ stdin: 'a\0b' })).toEqual([]);
  });

  it.each([
    [{ cwd: 'tmp' }, 'cwd'],
    [{ cwd: '' }, 'cwd'],
    [{ cwd: './x' }, 'cwd'],
    [{ cwd: '/a\0b' }, 'cwd'],
    [{ cwd: `/${'a'.repeat(4096)}` }, 'cwd'],
    [{ cwd: 7 }, 'cwd'],
    [{ env: { '1BAD': 'x' } }, 'env'],
    [{ env: { 'A-B': 'x' } }, 'env'],
    [{ env: { A: 1 } }, 'env'],
    [{ env: { SANDBOX_ID: 'mine' } }, 'env'],
    [{ env: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x'])) }, 'env'],
    [{ env: { BIG: 'x'.repeat(33 * 1024) } }, 'env'],
    [{ env: 'A=1' }, 'env'],
    [{ stdin: 'x'.repeat(101) }, 'stdin'],
    [{ stdin: null }, 'stdin'],
    [{ env: { A: 'x\0y' } }, 'env'],
    [{ command: 'echo a\0b' }, 'command'],
  ])('refuses %j with a 422 at body.%s', (body, field) => {
    const locs = refused(body);
    expect(locs.length).toBeGreaterThan(0);
    for (const loc of locs) expect(loc.slice(0, 2)).toEqual(['body', field]);
  });

  it('any cwd, env and stdin either pass or are a 422 at their own field, never a crash', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `/${s}`),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        fc.oneof(
          fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        fc.oneof(fc.string({ maxLength: 120 }), fc.jsonValue({ maxDepth: 1 })),
        (cwd, env, stdin) => {
          for (const loc of refused({ cwd, env, stdin })) {
            expect(['cwd', 'env', 'stdin']).toContain(loc[1]);
          }
        },
      ),
    );
  });

  it('passes cwd, env and stdin to the runtime; answers the cwd it ended in and its duration', async () => {
    const { runtime, service, sandbox } = await withReadySandbox();
    const result = await service.exec(sandbox.sandboxId, {
      command: 'cat',
      user: 'agent',
      cwd: '/tmp',
      env: { TOKEN: 's3cret' },
      stdin: 'abc',
    });
    expect(runtime.execRequests.at(-1)).toMatchObject({
      cwd: '/tmp',
      env: { TOKEN: 's3cret' },
      stdin: 'abc',
    });
    const wire = execWire(result);
    expect(wire).toMatchObject({ cwd: '/tmp', exit_code: 0 });
    expect(Number.isInteger(wire.duration_ms)).toBe(true);
    expect(wire.duration_ms).toBeGreaterThanOrEqual(0);
  });
});
