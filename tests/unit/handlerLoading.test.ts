import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { rememberLoadedHandlers } from '../../lib/http/handlerLoading.js';

type LoadHandler = (servicePath: string, handlerPath: string) => Promise<unknown>;

const frameworkLoader = createRequire(import.meta.resolve('serverless-offline'))(
  './lambda/handler-runner/in-process-runner/aws-lambda-ric/UserFunction.js',
) as { load: LoadHandler };

describe("serverless-offline's handler lookup, remembered", () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrx-handlers-'));
  let frameworkLoad: LoadHandler;
  let lookups = 0;
  let undo: () => void;

  beforeAll(() => {
    writeFileSync(join(dir, 'ping.cjs'), 'exports.handler = async () => "pong";\n');
    frameworkLoad = frameworkLoader.load;
    frameworkLoader.load = (servicePath, handlerPath) => {
      lookups += 1;
      return frameworkLoad(servicePath, handlerPath);
    };
    undo = rememberLoadedHandlers();
  });

  afterAll(() => {
    undo();
    frameworkLoader.load = frameworkLoad;
    rmSync(dir, { recursive: true, force: true });
  });

  it('looks a handler up once and answers the same function after', async () => {
    lookups = 0;
    const first = await frameworkLoader.load(dir, 'ping.handler');
    const second = await frameworkLoader.load(dir, 'ping.handler');
    expect(second).toBe(first);
    expect(await (first as () => Promise<string>)()).toBe('pong');
    expect(lookups).toBe(1);
  });

  it('looks again after a lookup that failed, as the framework does', async () => {
    lookups = 0;
    await expect(frameworkLoader.load(dir, 'missing.handler')).rejects.toThrow();
    await expect(frameworkLoader.load(dir, 'missing.handler')).rejects.toThrow();
    expect(lookups).toBe(2);
  });
});
