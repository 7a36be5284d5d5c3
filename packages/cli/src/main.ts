/**
 * The `membrane` command: dispatch to one file per verb. Errors print one
 * line `membrane: <cause> [CODE]` on stderr. Exit status: 0 success, 1 a
 * check failed (e.g. a probe mismatch), 2 bad input or usage.
 */
import { MembraneError } from '@membrane/api';
import * as policySimulate from './commands/policy-simulate.js';
import * as policyTest from './commands/policy-test.js';
import * as policyValidate from './commands/policy-validate.js';
import * as lc from './commands/lifecycle-cmds.js';
import * as objs from './commands/objects-cmds.js';
import * as ex from './commands/exec-cmds.js';
import * as dm from './commands/demo-cmds.js';
import * as fq from './commands/fqdn-cmds.js';
import * as ob from './commands/observe-cmd.js';
import * as uiCmd from './commands/ui-cmd.js';
import * as kc from './commands/kubeconfig-cmd.js';
import { processIo, type Io } from './io.js';
import { VERSION } from './version.js';

interface Command {
  help: string;
  run(argv: readonly string[], io: Io): number | Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  'policy simulate': policySimulate,
  'policy test': policyTest,
  'policy validate': policyValidate,
  agent: { help: lc.agentHelp, run: lc.agent },
  proxy: { help: lc.proxyHelp, run: lc.proxy },
  up: { help: lc.upHelp, run: lc.up },
  down: { help: lc.downHelp, run: lc.down },
  status: { help: lc.statusHelp, run: lc.status },
  apply: { help: objs.applyHelp, run: objs.apply },
  delete: { help: objs.deleteHelp, run: objs.del },
  get: { help: objs.getHelp, run: objs.get },
  'endpoint list': { help: objs.endpointListHelp, run: objs.endpointList },
  'identity list': { help: 'Usage: membrane identity list [-o json]', run: objs.identityList },
  'service list': { help: objs.serviceListHelp, run: objs.serviceList },
  observe: { help: ob.observeHelp, run: ob.observe },
  'fqdn cache list': { help: fq.fqdnListHelp, run: fq.fqdnList },
  'fqdn cache clean': { help: fq.fqdnCleanHelp, run: fq.fqdnClean },
  wait: { help: objs.waitHelp, run: objs.wait },
  describe: { help: objs.describeHelp, run: objs.describeCmd },
  exec: { help: ex.execHelp, run: ex.exec },
  logs: { help: ex.logsHelp, run: ex.logs },
  demo: { help: dm.demoHelp, run: dm.demo },
  ui: { help: uiCmd.uiHelp, run: uiCmd.ui },
  kubeconfig: { help: kc.kubeconfigHelp, run: kc.kubeconfig },
};

const HELP = `membrane ${VERSION} — Cilium and Hubble for one Linux machine

Usage: membrane COMMAND [ARGS] [FLAGS]

Life cycle (root):
  up                                       start the agent in the background and wait until ready
  agent                                    run the agent in the foreground
  proxy                                    run the L7 proxy in the foreground (the agent runs its own)
  down                                     stop the agent and remove everything it created
  status [-o json]                         like 'cilium status'

Workloads and policies (kubectl-style):
  apply -f FILE|DIR|-                      create or update objects; returns once in force
  delete -f FILE | KIND NAME               delete objects
  get KIND [NAME] [-n NS|-A] [-o wide|json|yaml]
  describe KIND NAME [-n NS]               as 'kubectl describe'
  endpoint list [-o json]                  the 'cilium endpoint list' table
  identity list [-o json]
  service list [-o json]                   the 'cilium service list' table
  fqdn cache list [-o json] | clean        the toFQDNs cache, as 'cilium fqdn cache'
  observe [FLAGS]                          flows, as 'hubble observe' (--follow, --last, --verdict, --pod, ...)
  ui [--port N] [--new-token]              the web console's link (map, flows, policy editor with preview)
  kubeconfig                               a kubeconfig for the agent's Kubernetes API (kubectl works against it)
  exec POD [-n NS] -- CMD...               run a command in a pod's network namespace
  logs POD [-n NS] [-f]
  wait --for=condition=Ready pod/NAME

Policy tools (no agent, no root):
  policy simulate FILE [-o table|json]     verdict of every probe of a scenario
  policy test FILE|DIR... [-o table|json]  compare every probe with its expect
  policy validate FILE|DIR|-...            check policy manifests as apply would

Demo:
  demo starwars                            Cilium's Star Wars demo, ready to try

  version                                  print the version
Run 'membrane COMMAND --help' for more.`;

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(HELP + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === 'version' || argv[0] === '--version') {
    io.out(`membrane ${VERSION}\n`);
    return 0;
  }
  // The longest command its first words name: `fqdn cache list`, `endpoint list`, `up`.
  const words = [3, 2, 1].find((n) => argv.length >= n && COMMANDS[argv.slice(0, n).join(' ')]);
  const two = `${argv[0]} ${argv[1] ?? ''}`.trim();
  const cmd = words ? COMMANDS[argv.slice(0, words).join(' ')] : undefined;
  const rest = argv.slice(words ?? 1);
  if (!cmd) {
    io.err(`membrane: unknown command "${two}"; run 'membrane --help' [MEMBRANE_E_USAGE]\n`);
    return 2;
  }
  const beforeDashes = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
    io.out(cmd.help + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof MembraneError) {
      io.err(`membrane: ${e.toLine()}\n`);
      return 2;
    }
    io.err(`membrane: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 3;
  }
}

const entry = process.argv[1] ?? '';
if (entry.endsWith('/main.js') && import.meta.url.endsWith('/cli/dist/main.js')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`membrane: internal error: ${String(e)}\n`);
      process.exitCode = 3;
    },
  );
}
