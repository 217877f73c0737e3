import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { processWire } from '../lib/wire.js';

export const handler = routeHandler(
  'writeProcessStdin',
  async ({ params, body }, { processes }) => {
    const { sandbox_id, process_id } = params;
    const written = await processes.writeStdin(sandbox_id, process_id, body.data, body.eof);
    return json(200, processWire(written));
  },
);
