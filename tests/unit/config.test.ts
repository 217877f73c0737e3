import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError,
  loadConfig,
  SETTINGS,
  variableOf,
  type SettingKey,
} from '../../lib/config.js';
import { parseSize } from '../../lib/domain/size.js';
import { PROJECT_ROOT } from '../../lib/projectRoot.js';
import { TABLE_END, TABLE_START, withSettingsTable } from '../../lib/settingsTable.js';

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
      PROCESS_OUTPUT_BYTES: 16 * 1024 * 1024,
      SANDBOX_STORE: 'memory',
      API_KEY_HEADER: 'X-API-Key',
      PUBLIC_DOCS: false,
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
    ['MATRX_PUBLIC_DOCS', 'sometimes'],
    ['MATRX_DOCKER_RUNTIME', 'crun --debug'],
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

  it("reads the sandboxes' OCI runtime; none means the engine's default", () => {
    expect(loadConfig({}).DOCKER_RUNTIME).toBeUndefined();
    expect(loadConfig({ MATRX_DOCKER_RUNTIME: ' ' }).DOCKER_RUNTIME).toBeUndefined();
    expect(loadConfig({ MATRX_DOCKER_RUNTIME: 'runsc' }).DOCKER_RUNTIME).toBe('runsc');
  });

  it('reads sizes', () => {
    expect(parseSize('512m')).toBe(512 * 1024 ** 2);
    expect(parseSize('4g')).toBe(4 * 1024 ** 3);
    expect(parseSize('100')).toBe(100);
  });
});

describe('the settings schema', () => {
  it('reports every bad setting at once, each by name', () => {
    const attempt = () =>
      loadConfig({ MATRX_PORT: 'eighty', MATRX_LOG_LEVEL: 'LOUD', AWS_ENDPOINT_URL_S3: 'nope' });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      expect((error as ConfigError).problems.map((p) => p.variable)).toEqual([
        'MATRX_PORT',
        'MATRX_LOG_LEVEL',
        'AWS_ENDPOINT_URL_S3',
      ]);
    }
  });

  it('MATRX_DEBUG logs at DEBUG unless MATRX_LOG_LEVEL says otherwise', () => {
    expect(loadConfig({}).LOG_LEVEL).toBe('INFO');
    expect(loadConfig({ MATRX_DEBUG: 'true' }).LOG_LEVEL).toBe('DEBUG');
    expect(loadConfig({ MATRX_DEBUG: 'true', MATRX_LOG_LEVEL: 'ERROR' }).LOG_LEVEL).toBe('ERROR');
  });

  it('reads the S3 endpoint from the AWS SDK variable, and the other settings it used to skip', () => {
    const settings = loadConfig({
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000',
      MATRX_SCHEDULED_RECONCILE: 'true',
      MATRX_MAX_STOPPED_SANDBOXES: '5',
    });
    expect(settings).toMatchObject({
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      SCHEDULED_RECONCILE: true,
      MAX_STOPPED_SANDBOXES: 5,
    });
  });

  it('no setting is accepted only to do nothing', () => {
    const inert = Object.entries(SETTINGS)
      .filter(([, spec]) => /does nothing|compatibility/i.test(spec.meaning))
      .map(([key]) => key);
    expect(inert).toEqual([]);
  });

  it("the README's settings table is the schema's (npm run docs:settings writes it)", () => {
    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const rows = (text: string) =>
      text
        .slice(text.indexOf(TABLE_START), text.indexOf(TABLE_END))
        .split('\n')
        .filter((line) => line.startsWith('| `'))
        .map((line) =>
          line
            .split(/(?<!\\)\|/)
            .map((cell) => cell.trim())
            .filter(Boolean),
        );
    expect(rows(readme)).toEqual(rows(withSettingsTable(readme)));
    expect(rows(readme)).toHaveLength(Object.keys(SETTINGS).length);
  });

  it('.env.example lists every setting', () => {
    const example = readFileSync(join(PROJECT_ROOT, '.env.example'), 'utf8');
    const listed = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((match) => match[1]));
    const missing = (Object.keys(SETTINGS) as SettingKey[])
      .map(variableOf)
      .filter((variable) => !listed.has(variable));
    expect(missing).toEqual([]);
  });
});

describe('loadConfig on any environment', () => {
  const variables = (Object.keys(SETTINGS) as SettingKey[]).map(variableOf);

  it('either parses or names exactly the variables it refuses, never anything else', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom(...variables), fc.string({ maxLength: 40 })),
        (env) => {
          try {
            loadConfig(env);
          } catch (error) {
            expect(error).toBeInstanceOf(ConfigError);
            for (const { variable } of (error as ConfigError).problems) {
              // DATABASE_URL is also refused when it is missing and postgres is asked for.
              expect(variable in env || variable === 'MATRX_DATABASE_URL').toBe(true);
            }
          }
        },
      ),
    );
  });
});
