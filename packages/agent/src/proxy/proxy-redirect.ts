/**
 * Turns the datapath's L7 redirect on for this agent's pod network (and off
 * for `membrane down`): the policy routing that delivers marked packets on
 * this host, from_hairpin on the router link, and the proxy config the
 * programs read (router link, listener address). Table and priority are
 * derived from the agent's name prefix, so a restarted agent finds its own
 * and two agents on one machine never take each other's.
 */
import { linkShow, installProxyRouting, proxyRoutingSlot, removeProxyRouting, type Datapath } from '@membrane/datapath';

export const PROXY_LISTENER_IP = '127.0.0.1';

export async function enableProxyRedirect(dp: Datapath, routerIf: string, namePrefix: string, warn: (w: string) => void): Promise<void> {
  const report = await installProxyRouting({ ...proxyRoutingSlot(namePrefix), routerIf });
  for (const w of report.warnings) warn(w);
  const router = await linkShow(routerIf);
  if (!router?.address) throw new Error(`the router link ${routerIf} is gone`);
  dp.attachHairpin(router.ifindex, routerIf);
  dp.setProxyConfig({ routerIfindex: router.ifindex, routerMac: router.address, listenerIP: PROXY_LISTENER_IP });
}

/** Everything enableProxyRedirect made, removed (each part even when another fails); the problems, a sentence each. */
export async function disableProxyRedirect(dp: Datapath | undefined, routerIf: string, namePrefix: string): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, f: () => unknown) => {
    try {
      await f();
    } catch (e) {
      problems.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  if (dp) await attempt('clear the proxy config', () => dp.clearProxyConfig());
  const router = await linkShow(routerIf).catch(() => undefined);
  if (dp && router) await attempt(`detach from_hairpin from ${routerIf}`, () => dp.detachHairpin(router.ifindex));
  await attempt('remove the proxy routing', () => removeProxyRouting(proxyRoutingSlot(namePrefix)));
  return problems;
}
