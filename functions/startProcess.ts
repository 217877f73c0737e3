import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { processWire } from '../lib/wire.js';

export const handler = routeHandler('startProcess', async ({ params, body }, { processes }) =>
  json(201, processWire(await processes.start(params.sandbox_id, body))),
);
