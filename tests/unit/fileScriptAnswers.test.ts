import { describe, expect, it } from '@jest/globals';
import { pathError } from '../../lib/adapters/docker/files/fileScript.js';
import { PathError, UnavailableError } from '../../lib/errors.js';

describe("the file script's answers as errors", () => {
  it('says what is wrong with the path for each answer the script gives', () => {
    const cases: [string, number][] = [
      ['missing', 404],
      ['denied', 403],
      ['isdir', 409],
      ['notdir', 409],
      ['exists', 409],
      ['notempty', 409],
      ['other', 409],
    ];
    for (const [status, code] of cases) {
      const error = pathError({ status, fields: [] }, '/x');
      expect(error).toBeInstanceOf(PathError);
      expect((error as PathError).statusCode).toBe(code);
    }
  });

  it('an answer that is none of them (the script killed, the sandbox out of processes) is a 503 naming Docker, never a 500', () => {
    for (const status of ['', 'Killed', 'bash: fork: retry: Resource temporarily unavailable']) {
      const error = pathError({ status, fields: [] }, '/x');
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as UnavailableError).statusCode).toBe(503);
      expect((error as UnavailableError).dependency).toBe('Docker engine');
    }
  });
});
