import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('health', async ({ query }, { service }) => {
  const health = await service.health();
  // 200 either way by contract; strict callers (load balancers) want degraded as a failure.
  return json(query.strict && health.status === 'degraded' ? 503 : 200, health);
});
