/** Agent configuration: flags, then environment, then defaults. */
import { join } from 'node:path';

export interface AgentConfig {
  /** Durable state: the database, pod logs, the API token. */
  stateDir: string;
  /** The root-only API socket. */
  socketPath: string;
  /** The console's API on 127.0.0.1 (0: pick a free port). */
  apiPort: number;
  podCIDR: string;
  /** Where BPF maps are pinned. */
  pinRoot: string;
  /** Prefix of every kernel object name the agent creates (must start with mbr). */
  namePrefix: string;
  /** Capacity of each endpoint's policy map (tests make it small; default: the datapath's 65,536). */
  policyMapMaxEntries?: number;
}

export const DEFAULT_STATE_DIR = '/var/lib/membrane';

export function resolveConfig(flags: Partial<AgentConfig> = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const stateDir = flags.stateDir ?? env['MEMBRANE_STATE_DIR'] ?? DEFAULT_STATE_DIR;
  const namePrefix = flags.namePrefix ?? env['MEMBRANE_NAME_PREFIX'] ?? 'mbr';
  if (!namePrefix.startsWith('mbr')) throw new Error(`name prefix "${namePrefix}" must start with "mbr"`);
  return {
    stateDir,
    socketPath: flags.socketPath ?? env['MEMBRANE_SOCKET'] ?? join(stateDir, 'agent.sock'),
    apiPort: flags.apiPort ?? Number(env['MEMBRANE_API_PORT'] ?? 4244),
    podCIDR: flags.podCIDR ?? env['MEMBRANE_POD_CIDR'] ?? '10.200.0.0/16',
    pinRoot: flags.pinRoot ?? env['MEMBRANE_PIN_ROOT'] ?? '/sys/fs/bpf/membrane',
    namePrefix,
    ...(env['MEMBRANE_POLICY_MAP_MAX'] ? { policyMapMaxEntries: Number(env['MEMBRANE_POLICY_MAP_MAX']) } : {}),
  };
}
