import { createRequire } from 'node:module';

type LoadHandler = (servicePath: string, handlerPath: string) => Promise<unknown>;

/** Relative to the framework's entry point, src/index.js. */
const LOADER_PATH = './lambda/handler-runner/in-process-runner/aws-lambda-ric/UserFunction.js';

/**
 * serverless-offline looks a handler up again on every request, in process as we run it: a walk
 * up the directories for a package.json that says `"type": "module"` (reading and parsing ours),
 * file checks, and an `import()`. The module is cached by Node all the same, so the answer never
 * changes while the process lives; on this machine the walk took two fifths of the time
 * the framework spent on a request. This remembers each handler after its first load.
 *
 * The framework imports the loader's `load` by name from its CommonJS module, which Node reads
 * from the module's exports when it is first imported; the API process (which preloads this)
 * replaces it before any request, so the framework's import gets the remembering one.
 * Returns the undoing.
 */
export function rememberLoadedHandlers(): () => void {
  const require = createRequire(import.meta.resolve('serverless-offline'));
  const loader = require(LOADER_PATH) as { load: LoadHandler };
  const load = loader.load;
  const loaded = new Map<string, Promise<unknown>>();
  loader.load = (servicePath, handlerPath) => {
    const key = `${servicePath}\0${handlerPath}`;
    let handler = loaded.get(key);
    if (!handler) {
      handler = load(servicePath, handlerPath);
      // A load that failed is tried again on the next request, as the framework does.
      handler.catch(() => loaded.delete(key));
      loaded.set(key, handler);
    }
    return handler;
  };
  return () => {
    loader.load = load;
  };
}
