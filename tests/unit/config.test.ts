import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, parseMemorySize } from '../../lib/config.js';

describe('loadConfig', () => {
  it('has the defaults .env.example documents', () => {
    const settings = loadConfig({});
    expect(settings).toMatchObject({
      HOST: '0.0.0.0',
      PORT: 8000,
      SANDBOX_IMAGE: 'matrx-sandbox:latest',
      DOCKER_NETWORK: 'bridge',
      CONTAINER_CPU_LIMIT: 2,
      CONTAINER_MEMORY_LIMIT: 4 * 1024 ** 3,
      MAX_COMMAND_LENGTH: 10000,
      SHUTDOWN_TIMEOUT_SECONDS: 30,
      MAX_OUTPUT_BYTES: 1024 * 1024,
      SANDBOX_STORE: 'memory',
      API_KEY_HEADER: 'X-API-Key',
    });
  });

  it('treats blank values as unset', () => {
    expect(loadConfig({ MATRX_PORT: '  ' }).PORT).toBe(8000);
  });

  it.each([
    ['MATRX_PORT', 'eighty'],
    ['MATRX_PORT', '70000'],
    ['MATRX_LOG_LEVEL', 'LOUD'],
    ['MATRX_S3_BUCKET', 'Not_A_Bucket'],
    ['MATRX_CONTAINER_MEMORY_LIMIT', 'lots'],
    ['MATRX_DEBUG', 'maybe'],
  ])('a bad %s stops startup naming it', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(variable);
  });

  it('reads API keys as a comma-separated list; blank means none', () => {
    expect(loadConfig({ MATRX_API_KEY: ' a , b,, ' }).API_KEY).toEqual(['a', 'b']);
    expect(loadConfig({ MATRX_API_KEY: '   ' }).API_KEY).toEqual([]);
    expect(loadConfig({ MATRX_API_KEY: ' , ' }).API_KEY).toEqual([]);
    expect(() => loadConfig({ MATRX_API_KEY_HEADER: 'X API Key' })).toThrow('MATRX_API_KEY_HEADER');
  });

  it('reads sizes', () => {
    expect(parseMemorySize('512m')).toBe(512 * 1024 ** 2);
    expect(parseMemorySize('4g')).toBe(4 * 1024 ** 3);
    expect(parseMemorySize('100')).toBe(100);
  });
});
