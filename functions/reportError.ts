import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('reportError', async ({ params, body }, { service }) => {
  const sandbox = await service.reportError(params.sandbox_id, body.error, body.details);
  return json(200, { status: sandbox.status, sandbox_id: sandbox.sandboxId, error_received: true });
});
