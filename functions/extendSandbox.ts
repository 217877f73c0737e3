import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { sandboxWire } from '../lib/wire.js';

export const handler = routeHandler('extendSandbox', async ({ params, body }, { sandboxes }) =>
  json(200, sandboxWire(await sandboxes.extend(params.sandbox_id, body.ttl_seconds))),
);
