import Docker from 'dockerode';

/** What `docker info` says of its runtimes; dockerode types the whole answer as `any`. */
interface EngineInfo {
  Runtimes?: Record<string, unknown>;
  DefaultRuntime?: string;
}

export interface EngineRuntimes {
  names: string[];
  defaultName: string | null;
}

/** The OCI runtimes the engine has registered, or null when it cannot be asked. */
export async function engineRuntimes(docker = new Docker()): Promise<EngineRuntimes | null> {
  let info: EngineInfo;
  try {
    info = (await docker.info()) as EngineInfo;
  } catch {
    return null;
  }
  return {
    names: Object.keys(info.Runtimes ?? {}).sort(),
    defaultName: info.DefaultRuntime ?? null,
  };
}

/** Why `wanted` cannot run sandboxes on this engine, or null when it can. */
export function runtimeProblem(
  variable: string,
  wanted: string,
  engine: EngineRuntimes,
): string | null {
  if (engine.names.includes(wanted)) return null;
  return (
    `${variable}=${wanted} is not a runtime of the Docker engine, which has ` +
    `${engine.names.join(', ') || 'none listed'}: register it with the engine ` +
    `(dockerd --add-runtime ${wanted}=PATH, or "runtimes" in /etc/docker/daemon.json and a reload) ` +
    `or set ${variable} to one of those`
  );
}
