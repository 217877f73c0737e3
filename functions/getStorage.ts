import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('getStorage', async ({ params }, { service }) =>
  json(200, { user_id: params.user_id, ...(await service.storageUsage(params.user_id)) }),
);
