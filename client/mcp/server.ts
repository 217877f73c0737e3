import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { VERSION } from '../../lib/projectRoot.js';
import { ApiError, MatrxError } from '../errors.js';
import type { Sandboxes } from '../sandboxes.js';
import { TOOL_SHAPES } from './tools.js';

type ToolName = keyof typeof TOOL_SHAPES;
type Args<N extends ToolName> = z.output<z.ZodObject<(typeof TOOL_SHAPES)[N]>>;

interface ToolSpec<N extends ToolName> {
  description: string;
  run(args: Args<N>): Promise<unknown>;
}

/** What each tool does, through the client: its answer is the API's, as JSON text. */
function toolSpecs(client: Sandboxes): { [N in ToolName]: ToolSpec<N> } {
  const processOf = (args: { sandbox_id: string; process_id: string }) =>
    client.connect(args.sandbox_id).processes.connect(args.process_id);
  return {
    create_sandbox: {
      description: 'Create a sandbox (a Linux machine with a shell) for a user; answers when ready',
      run: async ({ user_id, config }) => (await client.create(user_id, config)).info,
    },
    list_sandboxes: {
      description: 'List sandboxes, of one user when user_id is given',
      run: ({ user_id }) => client.list({ userId: user_id }),
    },
    get_sandbox: {
      description: 'One sandbox: its status, expiry, configuration',
      run: async ({ sandbox_id }) => (await client.get(sandbox_id)).info,
    },
    delete_sandbox: {
      description: "Stop and remove a sandbox; its user's home is saved first",
      run: async ({ sandbox_id, graceful }) => {
        await client.connect(sandbox_id).delete({ graceful });
        return { deleted: sandbox_id };
      },
    },
    exec: {
      description:
        'Run a command with bash -c in a sandbox and wait for it: exit code, stdout, stderr. ' +
        'The directory is kept between commands.',
      run: ({ sandbox_id, command, ...options }) =>
        client.connect(sandbox_id).exec(command, options),
    },
    start_process: {
      description:
        'Start a command in the background (a server, a long build); read its output later',
      run: async ({ sandbox_id, command, ...options }) =>
        (await client.connect(sandbox_id).processes.start(command, options)).info,
    },
    read_process_output: {
      description:
        "A background process's output from the given byte offsets on, and its status; with " +
        'wait, waits up to that many seconds for something new. Pass the offsets it answers next.',
      run: ({ sandbox_id, process_id, ...read }) =>
        processOf({ sandbox_id, process_id }).read(read),
    },
    write_process_stdin: {
      description: "Write to a background process's stdin; eof closes it",
      run: ({ sandbox_id, process_id, data, eof }) =>
        processOf({ sandbox_id, process_id }).write(data, { eof }),
    },
    kill_process: {
      description: 'Kill a background process and everything it started',
      run: ({ sandbox_id, process_id, signal }) =>
        processOf({ sandbox_id, process_id }).kill(signal),
    },
    read_file: {
      description: 'Read a file of a sandbox as UTF-8 text',
      run: ({ sandbox_id, path, user }) =>
        client.connect(sandbox_id).files.readText(path, { user }),
    },
    write_file: {
      description: 'Write a whole file (UTF-8 text) in one step; its parent directories are made',
      run: ({ sandbox_id, path, user, mode, content }) =>
        client.connect(sandbox_id).files.write(path, content, { user, mode: mode.toString(8) }),
    },
    edit_file: {
      description:
        'Replace an exact string in a file; it must occur once unless replace_all is true',
      run: ({ sandbox_id, path, old_string, new_string, replace_all, user }) =>
        client
          .connect(sandbox_id)
          .files.edit(path, old_string, new_string, { replaceAll: replace_all, user }),
    },
    list_files: {
      description: 'List a directory, depth levels down (1 to 10), sorted by path',
      run: ({ sandbox_id, path, user, depth }) =>
        client.connect(sandbox_id).files.list(path, { depth, user }),
    },
    search_files: {
      description: 'Search the files under a path for lines matching a regular expression',
      run: ({ sandbox_id, pattern, path, ...options }) =>
        client.connect(sandbox_id).files.search(pattern, path, options),
    },
  };
}

/** An API error as the tool's error, with the API's status and message. */
function toolError(error: unknown): CallToolResult {
  if (!(error instanceof MatrxError)) throw error;
  const text = error instanceof ApiError ? `${error.status} ${error.detail}` : error.message;
  return { isError: true, content: [{ type: 'text', text }] };
}

/** An MCP server whose tools drive sandboxes through `client`. */
export function mcpServer(client: Sandboxes): McpServer {
  const server = new McpServer({ name: 'matrx', version: VERSION });
  const specs = toolSpecs(client);
  for (const name of Object.keys(specs) as ToolName[]) {
    const spec = specs[name] as ToolSpec<ToolName>;
    server.registerTool(
      name,
      { description: spec.description, inputSchema: TOOL_SHAPES[name] },
      async (args: unknown): Promise<CallToolResult> => {
        try {
          const answer = await spec.run(args as Args<ToolName>);
          const text = typeof answer === 'string' ? answer : JSON.stringify(answer, null, 2);
          return { content: [{ type: 'text', text }] };
        } catch (error) {
          return toolError(error);
        }
      },
    );
  }
  return server;
}

/** Serves MCP on stdin and stdout until the client goes away. */
export async function serveMcp(client: Sandboxes): Promise<void> {
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = resolve;
    process.stdin.once('end', resolve);
  });
  await mcpServer(client).connect(transport);
  await closed;
}
