import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { processWire } from '../lib/wire.js';

export const handler = routeHandler('getProcess', async ({ params }, { processes }) =>
  json(200, processWire(await processes.get(params.sandbox_id, params.process_id))),
);
