import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { processWire } from '../lib/wire.js';

export const handler = routeHandler('killProcess', async ({ params, query }, { processes }) =>
  json(200, processWire(await processes.kill(params.sandbox_id, params.process_id, query.signal))),
);
