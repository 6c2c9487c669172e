import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Real kubectl against one of the fleet's API servers. */
export async function kubectl(
  kubeconfig: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  const { stdout } = await exec('kubectl', ['--kubeconfig', kubeconfig, ...args], {
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return stdout;
}

/** A Kubernetes object as kubectl prints it: tests read arbitrary fields from it. */
// biome-ignore lint/suspicious/noExplicitAny: test code reads arbitrary fields of kubectl's JSON
type KubectlObject = Record<string, any>;

export async function kubectlJson<T = KubectlObject>(kubeconfig: string, args: string[]): Promise<T> {
  return JSON.parse(await kubectl(kubeconfig, [...args, '-o', 'json'])) as T;
}

/** `kubectl edit` made non-interactive: KUBE_EDITOR is a sed script applied to the object's YAML. */
export function kubectlEdit(kubeconfig: string, resource: string[], sedExpression: string): Promise<string> {
  return kubectl(kubeconfig, ['edit', ...resource], {
    KUBE_EDITOR: `sed -i -e ${JSON.stringify(sedExpression)}`,
    EDITOR: '',
  });
}
