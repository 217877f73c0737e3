import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { processListWire } from '../lib/wire.js';

export const handler = routeHandler('listProcesses', async ({ params }, { processes }) =>
  json(200, processListWire(await processes.list(params.sandbox_id))),
);
