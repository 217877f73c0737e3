import { noContent } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('deleteFile', async ({ params, query }, { files }) => {
  await files.remove(params.sandbox_id, query.user, query.path, query.recursive);
  return noContent();
});
