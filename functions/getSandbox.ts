import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { sandboxWire } from '../lib/wire.js';

export const handler = routeHandler('getSandbox', async ({ params }, { sandboxes }) =>
  json(200, sandboxWire(await sandboxes.get(params.sandbox_id))),
);
