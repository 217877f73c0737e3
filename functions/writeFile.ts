import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { fileEntryWire } from '../lib/wire.js';

export const handler = routeHandler('writeFile', async ({ params, query }, { files }, body) =>
  json(
    200,
    fileEntryWire(await files.write(params.sandbox_id, query.user, query.path, body, query.mode)),
  ),
);
