import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { fileEntryWire } from '../lib/wire.js';

export const handler = routeHandler('statFile', async ({ params, query }, { files }) =>
  json(200, fileEntryWire(await files.stat(params.sandbox_id, query.user, query.path))),
);
