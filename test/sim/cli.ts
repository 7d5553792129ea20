// The simulator's command line (`npm run sim -- COMMAND`): up, down, user, fault.
// See test/sim/README.md for the contract; this file only parses flags and calls the modules.
import { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureToken, writeKubeconfig } from './apiserver/clusterfiles.js';
import { down, up } from './apiserver/lifecycle.js';
import { runFault } from './fault.js';
import { DEFAULT_ETCD_MINOR, ETCD_MINORS, isEtcdMinor } from './etcd-versions.js';
import { withFixtureOption } from './fixtures/index.js';
import { SERVER_MINORS, type ServerMinor } from './apiserver/discovery.js';

const collect = (v: string, prev: string[]) => [...prev, v];
const program = new Command('sim').description('the local test cluster').showHelpAfterError();

program.command('up').description('start a cluster and wait until it is ready')
  .requiredOption('--dir <DIR>', 'cluster directory')
  .option('--fixture <NAME>', 'create a fixture (repeatable)', collect, [] as string[])
  .option('--nodes <N>', 'number of nodes', '3')
  .option('--hostname-labels <MODE>', "nodes' kubernetes.io/hostname label: name (the node's name) or differ (host-N.example.internal)", 'name')
  .option('--server-version <MINOR>', `the Kubernetes version the API server pretends to be (${SERVER_MINORS.join(' or ')}; 1.35 also asks for create on pods/exec, attach and portforward over WebSocket)`, '1.32')
  .option('--etcd <MINOR>', `etcd minor of every fixture that does not name one (${ETCD_MINORS.join(' or ')}; default ${DEFAULT_ETCD_MINOR})`)
  .action(async (o: { dir: string; fixture: string[]; nodes: string; etcd?: string; hostnameLabels: string; serverVersion: string }) => {
    if (!(SERVER_MINORS as readonly string[]).includes(o.serverVersion)) throw new Error(`--server-version ${o.serverVersion}: use ${SERVER_MINORS.join(' or ')}`);
    if (o.hostnameLabels !== 'name' && o.hostnameLabels !== 'differ') throw new Error(`--hostname-labels ${o.hostnameLabels}: use name or differ`);
    if (o.etcd !== undefined && !isEtcdMinor(o.etcd)) throw new Error(`--etcd ${o.etcd}: the local cluster runs etcd ${ETCD_MINORS.join(' and ')}`);
    const fixtures = o.etcd ? o.fixture.map((f) => withFixtureOption(f, 'etcd', o.etcd!)) : o.fixture;
    await up({ dir: o.dir, fixtures, nodes: Number(o.nodes), hostnameLabels: o.hostnameLabels, serverVersion: o.serverVersion as ServerMinor,
      readyTimeoutMs: Number(process.env.SIM_READY_TIMEOUT_MS ?? 180_000), log: (l) => console.log(l) });
  });

program.command('down').description('stop every process of a cluster and check nothing is left')
  .requiredOption('--dir <DIR>', 'cluster directory')
  .action(async (o: { dir: string }) => {
    const left = await down(o.dir, (l) => console.error(l));
    if (left.length) {
      throw new Error(`left behind after down: ${left.join('; ')}`);
    }
    console.log(`cluster in ${resolve(o.dir)} stopped`);
  });

program.command('user').description('add a token user and write DIR/users/NAME.kubeconfig')
  .requiredOption('--dir <DIR>', 'cluster directory')
  .option('--group <G>', 'group of the user (repeatable)', collect, [] as string[])
  .argument('<NAME>')
  .action((name: string, o: { dir: string; group: string[] }) => {
    const dir = resolve(o.dir);
    ensureToken(dir, name, o.group);
    mkdirSync(join(dir, 'users'), { recursive: true });
    const file = join(dir, 'users', `${name}.kubeconfig`);
    writeKubeconfig(dir, file, name);
    console.log(file);
  });

program.command('fault').description('inject a fault: restart-apiserver | stream --cut-after N|--stall|--idle-timeout S|--blackhole | kill-container | node-not-ready | node-ready | kubelet-stop [--for S] [--grace S] | kubelet-start | fill-volume | clear (see test/sim/README.md)')
  .requiredOption('--dir <DIR>', 'cluster directory')
  .argument('<KIND>').argument('[ARGS...]')
  .allowUnknownOption(true)
  .action(async (kind: string, args: string[], o: { dir: string }) => {
    console.log(await runFault(resolve(o.dir), kind, args));
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`error: ${(err as Error).message.split('\n')[0]}`);
  process.exit(1);
});
