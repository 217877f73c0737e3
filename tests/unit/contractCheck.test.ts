import { describe, expect, it } from '@jest/globals';
import { contractViolation, routeFor, type ObservedResponse } from '../support/contract.js';

const base = 'http://127.0.0.1:1';
const id = 'sbx-0123456789ab';

function answer(
  method: string,
  path: string,
  status: number,
  body: unknown,
  contentType = 'application/json',
): ObservedResponse {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return { method, url: `${base}${path}`, status, contentType, text };
}

const heartbeat = { acknowledged: true, sandbox_id: id };

describe('the integration helper’s response check', () => {
  it('finds routes by method and path template', () => {
    expect(routeFor('POST', `/sandboxes/${id}/exec`)?.functionName).toBe('execCommand');
    expect(routeFor('DELETE', `/sandboxes/${id}`)?.functionName).toBe('deleteSandbox');
    expect(routeFor('GET', '/docs/swagger-ui.css')?.path).toBe('/docs/{asset}');
    expect(routeFor('PUT', '/sandboxes')).toBeUndefined();
  });

  it('accepts a declared status with a body its schema accepts', () => {
    expect(
      contractViolation(answer('POST', `/sandboxes/${id}/heartbeat?x=1`, 200, heartbeat)),
    ).toBe(null);
    expect(contractViolation(answer('DELETE', `/sandboxes/${id}`, 204, ''))).toBe(null);
    expect(contractViolation(answer('GET', '/docs', 200, '<html>', 'text/html'))).toBe(null);
  });

  it('names the route, the status and the issue of a field the schema lacks', () => {
    const violation = contractViolation(
      answer('POST', `/sandboxes/${id}/heartbeat`, 200, { ...heartbeat, extra: 1 }),
    );
    expect(violation).toContain('POST /sandboxes/{sandbox_id}/heartbeat');
    expect(violation).toContain('200');
    expect(violation).toContain('Unrecognized key: "extra"');
  });

  it('refuses a status the route does not declare, and a JSON route answering otherwise', () => {
    expect(contractViolation(answer('GET', '/sandboxes', 418, { detail: 'x' }))).toContain(
      'does not declare',
    );
    expect(
      contractViolation(answer('GET', '/sandboxes', 200, '[504] - Lambda timeout.')),
    ).toContain('not JSON');
    expect(contractViolation(answer('DELETE', `/sandboxes/${id}`, 204, 'x'))).toContain('body');
  });

  it('holds unknown routes to the catch-all’s JSON 404', () => {
    expect(contractViolation(answer('GET', '/docs/../nope', 404, { detail: 'Not Found' }))).toBe(
      null,
    );
    expect(contractViolation(answer('GET', '/nope', 404, '<h1>404</h1>', 'text/html'))).toContain(
      'not JSON',
    );
  });
});
