import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { sandboxListWire } from '../lib/wire.js';

export const handler = routeHandler('listSandboxes', async ({ query }, { sandboxes }) =>
  json(200, sandboxListWire(await sandboxes.list(query.user_id))),
);
