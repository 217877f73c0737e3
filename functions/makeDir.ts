import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { fileEntryWire } from '../lib/wire.js';

export const handler = routeHandler('makeDir', async ({ params, body }, { files }) =>
  json(200, fileEntryWire(await files.makeDir(params.sandbox_id, body.user, body.path))),
);
