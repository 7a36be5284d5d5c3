/**
 * EndpointRealizer: one endpoint at a time, for callers that compute
 * policies themselves (the live scenario runner, kernel tests, benches).
 * Each call is a partial regeneration of the EndpointManager: the
 * endpoint's new policy map (entries and each direction's enforcement
 * together) is filled, then swapped in with one update, so every packet is
 * judged wholly by the old policy or wholly by the new one.
 */
import type { EndpointPolicy, RuleOrigin } from '@membrane/policy';
import { EndpointManager, type EndpointDatapath, type RealizedEndpoint } from './endpoint-manager.js';
import type { ProxyPorts } from './policy-writes.js';

export type { RealizedEndpoint };
/** The datapath operations the realizer needs. */
export type PolicyDatapath = EndpointDatapath;

export interface RealizeResult {
  changed: boolean;
  entries: number;
}

export class EndpointRealizer {
  private readonly manager: EndpointManager;

  constructor(dp: EndpointDatapath, proxy: ProxyPorts = {}) {
    this.manager = new EndpointManager(dp, { proxy });
  }

  realize(ep: RealizedEndpoint, policy: EndpointPolicy): RealizeResult {
    const plan = this.manager.planPolicies([{ ep, policy }], { partial: true });
    const entries = [...plan.endpoints.values()][0]!.writes.writes.length;
    this.manager.commit(plan);
    return { changed: plan.changed > 0, entries };
  }

  remove(ep: RealizedEndpoint): void {
    this.manager.remove(ep.epId);
  }

  origins(epId: number, cookie: number): RuleOrigin[] {
    return this.manager.origins(epId, cookie);
  }
}
