import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { apiKey, baseUrl, testUser } from '../support/api.js';
import { deleteAll } from '../support/sandboxes.js';

const user = testUser('mcp');
const client = new Client({ name: 'matrx-test', version: '0.0.0' });
let sandboxId: string;

/** Calls a tool; its one text content, and whether it is an error. */
async function call(name: string, args: Record<string, unknown>) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const [first] = result.content;
  return { isError: result.isError === true, text: first?.type === 'text' ? first.text : '' };
}

beforeAll(async () => {
  // `npx matrx mcp` as an MCP client starts it: a child process speaking on stdio.
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['bin/matrx.mjs', 'mcp'],
    env: { PATH: process.env.PATH ?? '', MATRX_URL: baseUrl(), MATRX_API_KEY: apiKey() },
    stderr: 'inherit',
  });
  await client.connect(transport);
});
afterAll(async () => {
  await client.close();
  await deleteAll(user);
});

describe('the MCP server', () => {
  it('initializes and lists its tools, each with an input schema', async () => {
    expect(client.getServerVersion()?.name).toBe('matrx');
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([
      'create_sandbox',
      'delete_sandbox',
      'edit_file',
      'exec',
      'get_sandbox',
      'kill_process',
      'list_files',
      'list_sandboxes',
      'read_file',
      'read_process_output',
      'search_files',
      'start_process',
      'write_file',
      'write_process_stdin',
    ]);
    const exec = tools.find((tool) => tool.name === 'exec');
    expect(exec?.inputSchema.required).toEqual(expect.arrayContaining(['sandbox_id', 'command']));
    expect(Object.keys(exec?.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(['cwd', 'env', 'stdin', 'timeout', 'user']),
    );
  });

  it('creates a sandbox, runs a command, reads a process, writes, edits, reads, lists and searches files', async () => {
    const created = await call('create_sandbox', { user_id: user, config: { ttl_seconds: 600 } });
    expect(created.isError).toBe(false);
    sandboxId = (JSON.parse(created.text) as { sandbox_id: string }).sandbox_id;
    const ran = await call('exec', { sandbox_id: sandboxId, command: 'cd /tmp; echo hi; exit 2' });
    expect(JSON.parse(ran.text)).toMatchObject({ exit_code: 2, stdout: 'hi\n', cwd: '/tmp' });
    const started = await call('start_process', { sandbox_id: sandboxId, command: 'echo bg' });
    const { process_id } = JSON.parse(started.text) as { process_id: string };
    const read = await call('read_process_output', {
      sandbox_id: sandboxId,
      process_id,
      stdout_offset: 0,
      wait: 5,
    });
    expect(JSON.parse(read.text)).toMatchObject({ stdout: 'bg\n', stdout_offset: 3 });
    const file = { sandbox_id: sandboxId, path: '/home/agent/mcp/notes.md' };
    const written = await call('write_file', { ...file, content: 'one\ntwo\n' });
    expect(JSON.parse(written.text)).toMatchObject({ type: 'file', size: 8 });
    const edited = await call('edit_file', { ...file, old_string: 'two', new_string: 'three' });
    expect(JSON.parse(edited.text)).toEqual({ path: file.path, replacements: 1 });
    expect(await call('read_file', file)).toEqual({ isError: false, text: 'one\nthree\n' });
    const files = await call('list_files', { sandbox_id: sandboxId, path: '/home/agent/mcp' });
    expect(JSON.parse(files.text).entries).toMatchObject([{ path: file.path }]);
    const found = await call('search_files', {
      sandbox_id: sandboxId,
      pattern: 'thr',
      path: '/home/agent',
    });
    expect(JSON.parse(found.text).matches).toEqual([{ path: file.path, line: 2, text: 'three' }]);
    const absent = await call('edit_file', { ...file, old_string: 'nope', new_string: 'x' });
    expect(absent.isError).toBe(true);
    expect(absent.text).toMatch(/^409 /);
    const listed = await call('list_sandboxes', { user_id: user });
    expect(JSON.parse(listed.text)).toMatchObject({ total: 1 });
    const deleted = await call('delete_sandbox', { sandbox_id: sandboxId, graceful: false });
    expect(JSON.parse(deleted.text)).toEqual({ deleted: sandboxId });
  });

  it('answers an API error as a tool error with the status and the API’s message', async () => {
    const missing = await call('exec', { sandbox_id: 'sbx-000000000000', command: 'true' });
    expect(missing).toEqual({ isError: true, text: '404 Sandbox sbx-000000000000 not found' });
    const invalid = await call('exec', { sandbox_id: 'sbx-000000000000', command: '' });
    expect(invalid.isError).toBe(true);
    expect(invalid.text).toContain('command');
  });
});
