import { describe, expect, it } from '@jest/globals';
import type Docker from 'dockerode';
import { DockerRuntime } from '../../lib/adapters/docker/dockerRuntime.js';
import { UnavailableError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';

const GAVE_UP =
  'Cannot kill container: abc: tried to kill container, but did not receive an exit event';

function engineError(message: string): Error {
  return Object.assign(new Error(`(HTTP code 500) server error - ${message}`), {
    statusCode: 500,
    json: { message },
  });
}

/** An engine whose kill fails at once with `message`, and whose container exits after `inspections` looks. */
function engineGivingUp(inspections: number, message = GAVE_UP) {
  let looked = 0;
  const container = {
    kill: async () => {
      throw engineError(message);
    },
    inspect: async () => ({ State: { Running: ++looked < inspections } }),
  };
  const docker = { getContainer: () => container } as unknown as Docker;
  const runtime = new DockerRuntime(docker, createLogger('CRITICAL', 'json'), {
    slowCallMs: 60_000,
    firstCommandUser: 'agent',
    processOutputBytes: 1024 * 1024,
    diskLimitBytes: 1024 ** 3,
    diskProbeImage: 'img',
  });
  return { runtime, looks: () => looked };
}

describe('DockerRuntime.stop', () => {
  it('a kill the engine gave up waiting for is followed until the container exits', async () => {
    const { runtime, looks } = engineGivingUp(3);
    await expect(runtime.stop('abc', 0)).resolves.toBeUndefined();
    expect(looks()).toBe(3);
  });

  it('any other failure of the kill is the engine being unavailable', async () => {
    const { runtime } = engineGivingUp(1, 'something else');
    await expect(runtime.stop('abc', 0)).rejects.toThrow(UnavailableError);
  });
});
