import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { fileEntryWire } from '../lib/wire.js';

export const handler = routeHandler('moveFile', async ({ params, body }, { files }) => {
  const { user, from, to, overwrite } = body;
  return json(200, fileEntryWire(await files.move(params.sandbox_id, user, from, to, overwrite)));
});
