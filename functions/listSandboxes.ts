import { toWire } from '../lib/domain/sandbox.js';
import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('listSandboxes', async ({ query }, { service }) => {
  const sandboxes = await service.list(query.user_id);
  return json(200, { sandboxes: sandboxes.map(toWire), total: sandboxes.length });
});
