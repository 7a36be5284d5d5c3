/**
 * The safety rail of design.md section 8 for tests: the shipped
 * implementation (@membrane/datapath safety-routes), under the names the
 * tests have always used.
 */
export { TEST_RANGES, installSafetyRoutes, testHostRails, unreachableRoutes, type SafetyRoutes } from '@membrane/datapath';

/**
 * The pod CIDR of the tests' pod networks: one of their own, never the
 * agent's default (10.200.0.0/16), so a test never meets a user's agent.
 */
export const POD_CIDR = '10.207.0.0/16';
