import { noContent } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('deleteSandbox', async ({ params, query }, { sandboxes }) => {
  await sandboxes.destroy(params.sandbox_id, query.graceful);
  return noContent();
});
