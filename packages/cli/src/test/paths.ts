import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from packages/cli/dist/test/. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
