import { toWire } from '../lib/domain/sandbox.js';
import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('createSandbox', async ({ body }, { service }) =>
  json(201, toWire(await service.create(body.user_id, body.config))),
);
