import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { storageUsageWire } from '../lib/wire.js';

export const handler = routeHandler('getStorage', async ({ params }, { storage }) =>
  json(200, storageUsageWire(params.user_id, await storage.usage(params.user_id))),
);
