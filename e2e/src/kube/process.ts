import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ManagedProcess, startProcess } from '../harness/process.js';

/** The CLI, runnable with plain node (it registers tsx itself). */
export const KUBE_BIN = fileURLToPath(new URL('../../bin/flotilla-kube.js', import.meta.url));

export interface KubeProcessOptions {
  /** Cluster/context name in the kubeconfig (default `flotilla-test`). */
  name?: string;
  readyDelayMs?: number;
  /** Keep objects across restart(); a fresh temp file when omitted, so restart() keeps them anyway. */
  statePath?: string;
  /** Directory for the kubeconfig and default state file; a temp dir when omitted. */
  dir?: string;
  /** Labels the server's mutating step adds to every created object (`--default-label`). */
  defaultLabels?: Record<string, string>;
  /** Annotations the server's mutating step adds to every created object (`--default-annotation`). */
  defaultAnnotations?: Record<string, string>;
}

/** A test API server running as its own process, as e2e scenarios need one per cluster. */
export interface KubeProcess {
  url: string;
  kubeconfigPath: string;
  statePath: string;
  process: ManagedProcess;
  stop(): Promise<void>;
  /** Stops (state saved) and starts again on the same port, with the same objects. */
  restart(): Promise<void>;
}

/** Starts `flotilla-kube` as a separate process via the harness and waits for its `ready` line. */
export async function startKubeProcess(options: KubeProcessOptions = {}): Promise<KubeProcess> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'flotilla-kube-'));
  const name = options.name ?? 'flotilla-test';
  const kubeconfigPath = join(dir, `${name}.kubeconfig`);
  const statePath = options.statePath ?? join(dir, `${name}.state.json`);
  const launch = async (port: number) => {
    const args = [
      KUBE_BIN,
      '--port',
      String(port),
      '--kubeconfig',
      kubeconfigPath,
      '--state',
      statePath,
      '--name',
      name,
    ];
    if (options.readyDelayMs !== undefined) args.push('--ready-delay-ms', String(options.readyDelayMs));
    for (const [k, v] of Object.entries(options.defaultLabels ?? {}))
      args.push('--default-label', `${k}=${v}`);
    for (const [k, v] of Object.entries(options.defaultAnnotations ?? {})) {
      args.push('--default-annotation', `${k}=${v}`);
    }
    const proc = await startProcess(process.execPath, args, {
      name: `flotilla-kube ${name}`,
      ready: /ready at http:\/\/127\.0\.0\.1:\d+/,
      timeoutMs: 60_000,
    });
    const m = proc.log.match(/ready at (http:\/\/127\.0\.0\.1:(\d+))/)!;
    return { proc, url: m[1]!, port: Number(m[2]) };
  };
  let current = await launch(0);
  const handle: KubeProcess = {
    url: current.url,
    kubeconfigPath,
    statePath,
    process: current.proc,
    stop: () => current.proc.stop(),
    async restart() {
      await current.proc.stop();
      current = await launch(current.port);
      handle.process = current.proc;
    },
  };
  return handle;
}
