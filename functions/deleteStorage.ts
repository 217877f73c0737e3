import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { storageDeletedWire } from '../lib/wire.js';

export const handler = routeHandler('deleteStorage', async ({ params, query }, { storage }) => {
  const deleted = await storage.empty(params.user_id, query.tier);
  return json(200, storageDeletedWire(params.user_id, query.tier, deleted));
});
