import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { shutdownWire } from '../lib/wire.js';

export const handler = routeHandler('completeSandbox', async ({ params, body }, { sandboxes }) =>
  json(200, shutdownWire(await sandboxes.complete(params.sandbox_id, body.result))),
);
