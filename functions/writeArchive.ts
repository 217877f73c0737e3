import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('writeArchive', async ({ params, query }, { files }, body) =>
  json(200, await files.writeArchive(params.sandbox_id, query.user, query.path, body)),
);
