import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { searchWire } from '../lib/wire.js';

export const handler = routeHandler('searchFiles', async ({ params, body }, { files }) => {
  const result = await files.search(params.sandbox_id, body.user, {
    pattern: body.pattern,
    path: body.path,
    glob: body.glob,
    ignoreCase: body.ignore_case,
    maxResults: body.max_results,
  });
  return json(200, searchWire(result));
});
