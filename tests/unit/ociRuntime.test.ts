import { describe, expect, it } from '@jest/globals';
import type Docker from 'dockerode';
import { engineRuntimes, runtimeProblem } from '../../lib/adapters/docker/ociRuntime.js';

const engine = { names: ['crun', 'runc'], defaultName: 'runc' };

describe('the OCI runtime of sandboxes', () => {
  it('one the engine has registered is fine', () => {
    expect(runtimeProblem('MATRX_DOCKER_RUNTIME', 'crun', engine)).toBeNull();
  });

  it('an unknown one is a message naming the variable, the runtime and those there are', () => {
    const problem = runtimeProblem('MATRX_DOCKER_RUNTIME', 'runsc', engine);
    expect(problem).toContain('MATRX_DOCKER_RUNTIME=runsc');
    expect(problem).toContain('crun, runc');
    expect(problem).toContain('--add-runtime runsc=');
  });

  it("reads the engine's runtimes from docker info, null when the engine does not answer", async () => {
    const answering = {
      info: async () => ({
        Runtimes: { runc: {}, crun: { path: '/usr/bin/crun' } },
        DefaultRuntime: 'runc',
      }),
    } as unknown as Docker;
    expect(await engineRuntimes(answering)).toEqual(engine);
    const down = {
      info: async () => {
        throw new Error('connect ENOENT /var/run/docker.sock');
      },
    } as unknown as Docker;
    expect(await engineRuntimes(down)).toBeNull();
  });
});
