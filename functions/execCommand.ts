import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { execWire } from '../lib/wire.js';

export const handler = routeHandler('execCommand', async ({ params, body }, { sandboxes }) =>
  json(200, execWire(await sandboxes.exec(params.sandbox_id, body))),
);
