import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { heartbeatWire } from '../lib/wire.js';

export const handler = routeHandler('heartbeat', async ({ params }, { sandboxes }) =>
  json(200, heartbeatWire(await sandboxes.heartbeat(params.sandbox_id))),
);
