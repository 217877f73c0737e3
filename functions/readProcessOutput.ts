import { json } from '../lib/http/responses.js';
import { routeHandler } from '../lib/http/stack.js';
import { processOutputWire } from '../lib/wire.js';

export const handler = routeHandler(
  'readProcessOutput',
  async ({ params, query }, { processes }) => {
    const output = await processes.readOutput(params.sandbox_id, params.process_id, {
      stdoutOffset: query.stdout_offset,
      stderrOffset: query.stderr_offset,
      waitSeconds: query.wait,
    });
    return json(200, processOutputWire(output));
  },
);
