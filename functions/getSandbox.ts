import { toWire } from '../lib/domain/sandbox.js';
import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('getSandbox', async ({ params }, { service }) =>
  json(200, toWire(await service.get(params.sandbox_id))),
);
