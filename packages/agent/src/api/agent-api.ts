/** The REST API's answers, from the agent's parts (views over them; changes go to the applier). */
import { MembraneError, type StatusResponse } from '@membrane/api';
import type { Datapath } from '@membrane/datapath';
import type { EndpointManager } from '@membrane/endpoint';
import type { Repository } from '@membrane/policy';
import type { Applier } from '../apply/applier.js';
import type { AgentConfig } from '../config.js';
import { containerLogPath } from '../pods/container-supervisor.js';
import type { PodManager } from '../pods/pod-manager.js';
import type { PodRuntime } from '../pods/pod-runtime.js';
import type { ProblemLog } from '../problem-log.js';
import type { StoreReader } from '../store/index.js';
import { endpointList, identityList } from '../views/endpoint-view.js';
import { listObjects } from '../views/object-view.js';
import { VERSION, statusView } from '../views/status-view.js';
import type { AgentApi } from './routes.js';

export interface AgentParts {
  config: AgentConfig;
  store: StoreReader;
  datapath: Datapath;
  pods: PodManager;
  endpoints: EndpointManager;
  applier: Applier;
  policies: { repo: Repository };
  problems: ProblemLog;
  /** The agent's own state, startedAt and API port (they change after start). */
  agent: () => { state: StatusResponse['agent']['state']; startedAt: string; apiPort: number };
  shutdown: (teardown: boolean) => void;
}

function podOf(pods: PodManager, namespace: string, name: string): PodRuntime {
  const rt = pods.get(namespace, name);
  if (!rt) throw new MembraneError('MEMBRANE_E_NOT_FOUND', `pod ${namespace}/${name} not found`);
  return rt;
}

export function agentApi(p: AgentParts): AgentApi {
  const logDir = `${p.config.stateDir}/logs`;
  return {
    status: () => {
      const a = p.agent();
      const pods = p.pods.list();
      return statusView({
        agent: { pid: process.pid, stateDir: p.config.stateDir, version: VERSION, startedAt: a.startedAt, state: a.state },
        api: { socket: p.config.socketPath, port: a.apiPort },
        podCIDR: p.config.podCIDR,
        pinRoot: p.config.pinRoot,
        lostEvents: Number(p.datapath.lostEvents()),
        endpoints: { total: pods.length, ready: pods.filter((x) => x.state.ready).length },
        policies: { total: p.policies.repo.list().length, revision: p.policies.repo.revision },
        identities: p.endpoints.identities.list().length,
        problems: p.problems.list(),
      });
    },
    apply: (r) => p.applier.apply(r),
    delete: (r) => p.applier.delete(r),
    objects: (kind, ns, name) => listObjects(p.store, p.pods, kind, ns, name),
    endpoints: () => endpointList(p.pods, p.endpoints, (i) => p.datapath.getEndpoint(i) !== undefined),
    identities: () => identityList(p.endpoints),
    execTarget: (namespace, name) => {
      const rt = podOf(p.pods, namespace, name);
      return { namespace, pod: name, netns: rt.netns, ip: rt.state.ip, phase: rt.state.phase };
    },
    logsPath: (ns, name, container) => containerLogPath(logDir, ns, name, container ?? podOf(p.pods, ns, name).manifest.spec.containers[0]!.name),
    shutdown: p.shutdown,
  };
}
