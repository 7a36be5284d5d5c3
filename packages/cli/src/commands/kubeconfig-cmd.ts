/** `membrane kubeconfig`: a kubeconfig for the Kubernetes API the agent serves (cluster, user and context `membrane`). */
import { stringify } from 'yaml';
import type { KubeAccess } from '@membrane/api';
import { parseArgs } from '../args.js';
import { call } from '../client.js';
import type { Io } from '../io.js';

export const kubeconfigHelp = `Usage: membrane kubeconfig

Prints a kubeconfig for the Kubernetes API the agent serves on 127.0.0.1
(HTTPS with the agent's own CA, a bearer token): cluster, user and context
"membrane". Keep it to yourself: the token is root's.

  membrane kubeconfig > ~/.kube/membrane && KUBECONFIG=~/.kube/membrane kubectl version`;

export function kubeconfigYaml(a: KubeAccess): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'membrane', cluster: { server: a.server, 'certificate-authority-data': Buffer.from(a.caCert).toString('base64') } }],
    users: [{ name: 'membrane', user: { token: a.token } }],
    contexts: [{ name: 'membrane', context: { cluster: 'membrane', user: 'membrane', namespace: 'default' } }],
    'current-context': 'membrane',
    preferences: {},
  });
}

export async function kubeconfig(argv: readonly string[], io: Io): Promise<number> {
  parseArgs(argv, []);
  io.out(kubeconfigYaml(await call<KubeAccess>('GET', '/v1/kube/access')));
  return 0;
}
