import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('heartbeat', async ({ params }, { service }) => {
  const sandbox = await service.heartbeat(params.sandbox_id);
  return json(200, { acknowledged: true, sandbox_id: sandbox.sandboxId });
});
