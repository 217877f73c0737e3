import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('deleteStorage', async ({ params, query }, { service }) => {
  const deleted = await service.emptyStorage(params.user_id, query.tier);
  return json(200, { user_id: params.user_id, tier: query.tier, deleted_objects: deleted });
});
