import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { shutdownWire } from '../lib/wire.js';

export const handler = routeHandler('reportError', async ({ params, body }, { sandboxes }) => {
  const sandbox = await sandboxes.reportError(params.sandbox_id, body.error, body.details);
  return json(200, shutdownWire(sandbox, true));
});
