import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('completeSandbox', async ({ params, body }, { service }) => {
  const sandbox = await service.complete(params.sandbox_id, body.result);
  return json(200, { status: sandbox.status, sandbox_id: sandbox.sandboxId });
});
