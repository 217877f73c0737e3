import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('health', async (_input, { service }) =>
  json(200, await service.health()),
);
