/**
 * The safety rail of design.md section 8 for tests: the shipped
 * implementation (@membrane/datapath safety-routes), under the names the
 * tests have always used.
 */
import { DEFAULT_POD_CIDR } from '@membrane/datapath';

export { TEST_RANGES, installSafetyRoutes, unreachableRoutes, type SafetyRoutes } from '@membrane/datapath';

export const POD_CIDR = DEFAULT_POD_CIDR;
