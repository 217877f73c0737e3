import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';

export const handler = routeHandler('editFile', async ({ params, body }, { files }) =>
  json(
    200,
    await files.edit(params.sandbox_id, body.user, {
      path: body.path,
      oldString: body.old_string,
      newString: body.new_string,
      replaceAll: body.replace_all,
    }),
  ),
);
