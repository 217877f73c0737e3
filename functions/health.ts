import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { healthWire } from '../lib/wire.js';

export const handler = routeHandler('health', async ({ query }, { health }) => {
  const report = await health.check();
  // 200 either way by contract; strict callers (load balancers) want degraded as a failure.
  return json(query.strict && report.status === 'degraded' ? 503 : 200, healthWire(report));
});
