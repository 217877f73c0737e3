import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { fileListWire } from '../lib/wire.js';

export const handler = routeHandler('listFiles', async ({ params, query }, { files }) => {
  const entries = await files.list(params.sandbox_id, query.user, query.path, query.depth);
  return json(200, fileListWire(query.path, entries));
});
