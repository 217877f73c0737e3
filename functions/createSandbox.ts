import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { sandboxWire } from '../lib/wire.js';

export const handler = routeHandler('createSandbox', async ({ body }, { sandboxes }) =>
  json(201, sandboxWire(await sandboxes.create(body.user_id, body.config))),
);
