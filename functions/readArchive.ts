import { bytesResponse } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('readArchive', async ({ params, query }, { files }) =>
  bytesResponse(
    await files.readArchive(params.sandbox_id, query.user, query.path),
    'application/x-tar',
  ),
);
