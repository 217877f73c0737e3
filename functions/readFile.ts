import { bytesResponse } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('readFile', async ({ params, query }, { files }) =>
  bytesResponse(
    await files.read(params.sandbox_id, query.user, query.path),
    'application/octet-stream',
  ),
);
