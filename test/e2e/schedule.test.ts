// `kubectl etcd schedule create|list|status|delete` end to end: the anthos fixture (three TLS
// members, client certificates from Secret kube-etcd-certs) on etcd 3.5, whose image has etcdutl
// (the script's 3.4 path, etcdctl only, runs against real etcd 3.4 in test/unit/schedule-script.test.ts).
// Runs are started as `kubectl create job --from=cronjob/…` starts them (real kubectl, protobuf
// Jobs), and run by the simulator's CronJob and Job controllers and kubelet. A member is "down"
// when its etcd process is stopped (SIGSTOP): the pod stays, etcd answers nobody.
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdBinaries } from '../sim/etcd-versions.js';
import { requireRoot, run, startCluster, waitFor, type SimCluster } from '../sim/harness.js';
import { TARGETS, buildPlugin, distrolessManifest, distrolessSecrets, etcdctlInPod, kubectlEtcd, onEtcd, ok } from './backup-support.js';
import { ensureCA, issueCert } from '../sim/pki.js';
import { kubectlEtcd as restoreWith } from './restore-helpers.js';
import { damageLease } from '../helpers/snapshot-damage.js';

const T = onEtcd(TARGETS.anthos, '3.5');
const NS = T.namespace;
const NAME = 'kube-etcd-backup';
const PODS = ['kube-etcd-0', 'kube-etcd-1', 'kube-etcd-2'];
/** The namespace of the distroless member. */
const DL = 'dl-sched';
let cluster: SimCluster;

beforeAll(async () => {
  requireRoot();
  await buildPlugin();
  cluster = await startCluster({ fixtures: [T.fixture] });
  await startDistrolessMember();
  await operatorWithReadmeRoles();
}, 600_000);

/** The README's yaml blocks under "Permissions" (restore/backup/status, then schedule), as documents. */
function readmePermissions(): Array<{ kind: string; metadata: { name: string; namespace?: string } }> {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const blocks = [...readme.matchAll(/```yaml\n(# kubectl-etcd: (?:restore, backup and status|schedule)[\s\S]*?)```/g)];
  expect(blocks).toHaveLength(2);
  return blocks.flatMap((b) => parseAllDocuments(b[1]!).map((d) => d.toJSON()));
}

const OPERATOR = 'schedule-operator';
/** The kubeconfig of a user with only the README's Roles (in uc1) and ClusterRole: every schedule command below runs as it. */
const asOperator = () => ({ kubeconfig: join(cluster.dir, 'users', `${OPERATOR}.kubeconfig`) });

async function operatorWithReadmeRoles(): Promise<void> {
  ok(await cluster.sim(['user', OPERATOR]));
  const docs = readmePermissions().map((d) => (d.metadata.namespace ? { ...d, metadata: { ...d.metadata, namespace: NS } } : d));
  expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(['Role/kubectl-etcd', 'ClusterRole/kubectl-etcd', 'Role/kubectl-etcd-schedule']);
  const subjects = [{ kind: 'User', name: OPERATOR, apiGroup: 'rbac.authorization.k8s.io' }];
  const bind = (d: { kind: string; metadata: { name: string } }) => d.kind === 'Role'
    ? { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: d.metadata.name, namespace: NS }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: d.metadata.name }, subjects }
    : { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: d.metadata.name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: d.metadata.name }, subjects };
  ok(await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...docs, ...docs.map(bind)] }) }));
}

/**
 * One distroless member in namespace DL, with a certificate of its own for the name it advertises
 * (https://etcd-0.etcd:2379), as a real member's certificate names it: the backup pod verifies it.
 */
async function startDistrolessMember(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'schedule-pki-'));
  try {
    const ca = ensureCA(dir, 'etcd-ca');
    const pair = issueCert(dir, 'etcd-ca', 'etcd', { commonName: 'etcd-0', dnsNames: ['etcd-0.etcd', `etcd-0.etcd.${DL}.svc`, 'localhost'], ips: ['127.0.0.1'], usage: 'both' });
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const manifest = distrolessManifest({ namespace: DL, replicas: 1, storage: '256Mi', token: 'dl-sched', createNamespace: true });
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: manifest.split('---')[0] }));
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: distrolessSecrets({ namespace: DL }, { 'etcdCA.crt': b64(ca.cert), 'etcd.crt': b64(pair.cert), 'etcd.key': b64(pair.key) }) }) }));
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: manifest }));
    await waitFor('the distroless member to be Ready', async () => ((await cluster.kubectl(['-n', DL, 'wait', '--for=condition=Ready', 'pod/etcd-0', '--timeout=10s'], { timeoutMs: 20_000 })).code === 0 ? true : undefined), 180_000, 1000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

afterAll(async () => {
  await cluster?.down();
}, 180_000);

async function kubectl(args: string[]): Promise<string> {
  return ok(await cluster.kubectl(['-n', NS, ...args]));
}

/** Stops (SIGSTOP) a member's etcd; the returned function resumes it. */
function stopMember(pod: string): () => void {
  const info = JSON.parse(readFileSync(join(cluster.dir, 'runtime', 'pods', NS, pod, `${T.container}.json`), 'utf8')) as { pid: number };
  process.kill(info.pid, 'SIGSTOP');
  return () => process.kill(info.pid, 'SIGCONT');
}

/** Starts a run as `kubectl create job --from=cronjob/NAME` does, and waits for its Job to end: Complete or Failed. */
async function runOnce(job: string, ns = NS, name = NAME): Promise<'Complete' | 'Failed'> {
  ok(await cluster.kubectl(['-n', ns, 'create', 'job', `--from=cronjob/${name}`, job]));
  return waitFor(`job ${job} to end`, async () => {
    const out = ok(await cluster.kubectl(['-n', ns, 'get', 'job', job, '-o', 'jsonpath={range .status.conditions[?(@.status=="True")]}{.type} {end}']));
    return (/\b(Complete|Failed)\b/.exec(out)?.[1] as 'Complete' | 'Failed' | undefined);
  }, 120_000, 1000);
}

/** The backup volume's files on its node (the claim's local volume). */
async function volumeDir(ns = NS, claim = `${NAME}s`): Promise<string> {
  const pv = ok(await cluster.kubectl(['-n', ns, 'get', 'pvc', claim, '-o', 'jsonpath={.spec.volumeName}']));
  const path = ok(await cluster.kubectl(['get', 'pv', pv, '-o', 'jsonpath={.spec.local.path}{.spec.hostPath.path}']));
  expect(path).not.toBe('');
  return path;
}

function backups(dir: string, stem = 'uc1-kube-etcd'): string[] {
  return readdirSync(dir).filter((f) => new RegExp(`^${stem}-\\d{8}T\\d{6}Z-rev\\d+\\.db$`).test(f)).sort();
}

describe('schedule on etcd 3.5 (anthos layout, TLS)', () => {
  it('refuses bad input before any change, one line each', async () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['--every', '0 * * * *', '--keep', '0'], /^error: --keep must be a whole number of at least 1/, 2],
      [['--every', '61 * * * *', '--keep', '2'], /^error: .*spec\.schedule: Invalid value: "61 \* \* \* \*".*; check --every .*\n$/, 2],
      [['--every', '0 * * * *', '--keep', '2', '--to', 'pvc/missing'], /^error: .*persistentvolumeclaim "missing".*not found.*\n$|^error: .*"missing".*\n$/i, 1],
      [['--every', '0 * * * *', '--keep', '2', '--name', 'Bad_Name'], /^error: "Bad_Name" is not a schedule name/, 2],
    ];
    for (const [args, re, code] of cases) {
      const r = await kubectlEtcd(cluster, ['schedule', 'create', '-n', NS, ...args], asOperator());
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stderr.trimEnd().split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
      expect(r.code, r.stderr).toBe(code);
    }
    // Without the README's schedule Role (the restore Role and ClusterRole only): refused by the dry run, one line.
    ok(await cluster.sim(['user', 'restore-only']));
    const subjects = [{ kind: 'User', name: 'restore-only', apiGroup: 'rbac.authorization.k8s.io' }];
    ok(await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'restore-only', namespace: NS }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubectl-etcd' }, subjects },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'restore-only' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubectl-etcd' }, subjects },
    ] }) }));
    const denied = await kubectlEtcd(cluster, ['schedule', 'create', '-n', NS, '--every', '0 * * * *', '--keep', '2'], { kubeconfig: join(cluster.dir, 'users', 'restore-only.kubeconfig') });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^error: user "restore-only" cannot get "cronjobs.batch" in namespace "uc1"; ask a cluster admin for the Role kubectl-etcd-schedule in the README's "Permissions"\n$/);
    expect(denied.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(await kubectl(['get', 'cronjobs,serviceaccounts,pvc', '-l', 'kubectl-etcd/schedule', '-o', 'name'])).toBe('');
  }, 120_000);

  it('--dry-run -o json prints the objects the API server admits, and creates nothing', async () => {
    const r = await kubectlEtcd(cluster, ['schedule', 'create', '-n', NS, '--every', '0 */6 * * *', '--keep', '2', '--dry-run', '-o', 'json'], asOperator());
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { kind: string; items: Array<{ kind: string; metadata: { name: string }; automountServiceAccountToken?: boolean; spec?: Record<string, any> }> };
    expect(list.items.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([`ServiceAccount/${NAME}`, `PersistentVolumeClaim/${NAME}s`, `CronJob/${NAME}`]);
    expect(list.items[0]!.automountServiceAccountToken).toBe(false);
    const pod = list.items[2]!.spec!.jobTemplate.spec.template.spec;
    expect(pod.serviceAccountName).toBe(NAME);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0].image).toBe((await kubectl(['get', 'pod', 'kube-etcd-0', '-o', 'jsonpath={.spec.containers[0].image}'])));
    expect(await kubectl(['get', 'cronjobs,serviceaccounts,pvc', '-l', 'kubectl-etcd/schedule', '-o', 'name'])).toBe('');
  }, 120_000);

  it('create; a run makes a verified snapshot on the volume, named and recorded as backup --dir does', async () => {
    const r = await kubectlEtcd(cluster, ['schedule', 'create', '-n', NS, '--every', '0 */6 * * *', '--keep', '2'], asOperator());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(`created serviceaccount/${NAME}, persistentvolumeclaim/${NAME}s, cronjob/${NAME}`);
    // Least privilege: nothing binds a role to the schedule's ServiceAccount.
    const bindings = await kubectl(['get', 'rolebindings', '-o', 'jsonpath={range .items[*]}{.subjects[*].name} {end}']);
    expect(bindings.split(/\s+/)).not.toContain(NAME);

    expect(await runOnce('run-1')).toBe('Complete');
    const dir = await volumeDir();
    const [file] = backups(dir);
    expect(file).toBeDefined();
    const db = join(dir, file!);
    expect(statSync(db).mode & 0o777).toBe(0o600);
    const record = JSON.parse(readFileSync(`${db}.json`, 'utf8')) as { sha256: string; size: number; schedule: string; namespace: string; workload: string; verified: Record<string, boolean> };
    expect(record).toMatchObject({ schedule: NAME, namespace: NS, workload: 'kube-etcd', verified: { size: true, sha256Trailer: true, bbolt: true } });
    expect(createHash('sha256').update(readFileSync(db)).digest('hex')).toBe(record.sha256);
    expect(statSync(db).size).toBe(record.size);
    // The real etcdutl accepts it.
    const status = ok(await run(etcdBinaries('3.5').etcdutl!, ['snapshot', 'status', db, '-w', 'json']));
    expect(JSON.parse(status).totalKey).toBeGreaterThan(0);
    // The plugin's own listing reads the volume's layout.
    const listed = await kubectlEtcd(cluster, ['snapshots', 'list', dir], asOperator());
    expect(listed.stdout).toContain(file);

    const st = await kubectlEtcd(cluster, ['schedule', 'status', NAME, '-n', NS, '--max-age', '1h'], asOperator());
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/last good backup: \d{4}-\d\d-\d\dT/);
  }, 300_000);

  it('a member down: the run takes the snapshot from another; N+2 runs leave N', async () => {
    const first = JSON.parse(await kubectl(['get', 'cronjob', NAME, '-o', 'json'])) as { spec: { jobTemplate: { spec: { template: { spec: { containers: Array<{ command: string[] }> } } } } } };
    // The script tries the members in the order it names them: stop the first it would ask.
    const script = first.spec.jobTemplate.spec.template.spec.containers[0]!.command[2]!;
    const order = PODS.map((p) => [p, script.indexOf(`https://${p}.`)] as const).filter(([, i]) => i >= 0).sort((a, b) => a[1] - b[1]);
    const down = order[0]![0];
    const resume = stopMember(down);
    try {
      expect(await runOnce('run-2')).toBe('Complete');
    } finally {
      resume();
    }
    const dir = await volumeDir();
    const newest = backups(dir).at(-1)!;
    const record = JSON.parse(readFileSync(join(dir, `${newest}.json`), 'utf8')) as { sourcePod: string };
    expect(PODS).toContain(record.sourcePod);
    expect(record.sourcePod).not.toBe(down);
    // keep 2: runs 3 and 4 leave the newest two.
    expect(await runOnce('run-3')).toBe('Complete');
    expect(await runOnce('run-4')).toBe('Complete');
    const left = backups(dir);
    expect(left).toHaveLength(2);
    expect(readdirSync(dir).filter((f) => f.endsWith('.db.json'))).toHaveLength(2);
    expect(left).not.toContain(newest);
  }, 400_000);

  it('every member down: the run fails with the reason, an Event names it, and status --max-age exits 3', async () => {
    const resumes = PODS.map(stopMember);
    let result: string;
    try {
      result = await runOnce('run-5');
    } finally {
      for (const r of resumes) r();
    }
    expect(result).toBe('Failed');
    const events = await kubectl(['get', 'events', '--field-selector', 'involvedObject.name=run-5', '-o', 'jsonpath={range .items[*]}{.reason}{"\\n"}{end}']);
    expect(events).toMatch(/BackoffLimitExceeded/);
    // Nothing is left half-written on the volume.
    const dir = await volumeDir();
    expect(backups(dir)).toHaveLength(2);
    expect(readdirSync(join(dir, '.incoming'))).toEqual([]);

    const st = await kubectlEtcd(cluster, ['schedule', 'status', NAME, '-n', NS, '--max-age', '1s'], asOperator());
    expect(st.code).toBe(3);
    expect(st.stderr).toMatch(/^error: the newest good backup of schedule "kube-etcd-backup" is from .* ago \(more than 1s\); last failure .*: no etcd member answered: https:\/\/kube-etcd-\d\.kube-etcd:2379: .*\(exit code 10\)/);
    expect(st.stdout).toMatch(/last failure: .* job run-5: no etcd member answered/);
    const fine = await kubectlEtcd(cluster, ['schedule', 'status', NAME, '-n', NS, '--max-age', '1h'], asOperator());
    expect(fine.code, fine.stderr).toBe(0);

    const list = await kubectlEtcd(cluster, ['schedule', 'list', '-n', NS], asOperator());
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${NAME} +0 \\*/6 \\* \\* \\* +2 +${NAME}s +\\d{4}-`, 'm'));
  }, 300_000);

  it('snapshots list --schedule lists the volume; restore --from-schedule latest brings that backup back', async () => {
    await etcdctlInPod(cluster, T, ['put', '/schedule-test/before', 'kept']);
    expect(await runOnce('run-6')).toBe('Complete');
    await etcdctlInPod(cluster, T, ['put', '/schedule-test/after', 'lost']);
    await etcdctlInPod(cluster, T, ['del', '/schedule-test/before']);

    const listed = await kubectlEtcd(cluster, ['snapshots', 'list', '-n', NS, '--schedule', '-o', 'json'], asOperator());
    expect(listed.code, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as Array<{ location: string; name: string; record?: { schedule?: string } }>;
    expect(rows).toHaveLength(2);
    expect(rows[0]!.location).toBe(`schedule/${NAME}/${rows[0]!.name}`);
    expect(rows.every((r) => r.record?.schedule === NAME)).toBe(true);
    expect(rows[0]!.name).toBe(backups(await volumeDir()).at(-1));

    const state = mkdtempSync(join(tmpdir(), 'schedule-restore-'));
    try {
      // A backup changed on the volume after it was written is refused before any change (exit 3).
      const older = join(await volumeDir(), rows[1]!.name);
      const fd = openSync(older, 'r+');
      writeSync(fd, Buffer.from([0x5a]), 0, 1, 4096);
      closeSync(fd);
      const refused = await restoreWith(cluster, state, ['restore', '-n', NS, '--from-schedule', `${NAME}/${rows[1]!.name}`, '--yes', '--no-safety-backup'], asOperator());
      expect(refused.code, refused.stderr).toBe(3);
      expect(refused.stderr).toMatch(/error: schedule\/kube-etcd-backup\/.* is not what was stored: .* its record says/);
      expect(readdirSync(join(state, 'downloads'))).toEqual([]);
      // The temporary copy it was checked in is gone too.
      expect(readdirSync(join(state, 'tmp'))).toEqual([]);

      const r = await restoreWith(cluster, state, ['restore', '-n', NS, '--from-schedule', 'latest', '--quiesce', 'deployment/gke-master-etcd-maintenance', '--yes', '--no-safety-backup'], asOperator());
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`restoring ${rows[0]!.name} from claim "${NAME}s" of schedule "${NAME}"`);
      // The copy read from the volume went with the restore's journal: no Secret stays on this machine.
      expect(r.stderr).toMatch(/removed the downloaded copy ".*\/downloads\/[0-9a-f]{12}-.*" \(the backup itself is where it was\)/);
      expect(readdirSync(join(state, 'downloads'))).toEqual([]);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
    expect((await etcdctlInPod(cluster, T, ['get', '/schedule-test/before', '--print-value-only'])).trim()).toBe('kept');
    expect((await etcdctlInPod(cluster, T, ['get', '/schedule-test/after', '--print-value-only'])).trim()).toBe('');
    // The reader pods are gone.
    expect(await kubectl(['get', 'pods', '-l', 'kubectl-etcd/reader', '-o', 'name'])).toBe('');
  }, 600_000);

  it('verify --restore --in-cluster drills a backup in a throwaway pod of the members\' image (recorded); a damaged lease under a valid trailer fails it (exit 3); no pod is left', async () => {
    const work = mkdtempSync(join(tmpdir(), 'schedule-drill-'));
    try {
      // The newest scheduled backup, with its record, as a user has it on disk.
      const dir = await volumeDir();
      const name = backups(dir).at(-1)!;
      const file = join(work, name);
      copyFileSync(join(dir, name), file);
      copyFileSync(join(dir, `${name}.json`), `${file}.json`);
      const verify = (f: string, extra: string[] = []) => kubectlEtcd(cluster, ['verify', f, '--restore', '--in-cluster', '-n', NS, '--state-dir', join(work, 'state'), ...extra], asOperator());
      const good = await verify(file, ['-v', '1']);
      expect(good.code, good.stderr).toBe(0);
      expect(good.stdout).toMatch(/^DRILL\s+passed: restored with etcdutl 3\.5\.\d+, started etcd 3\.5\.\d+ on the loopback of pod uc1\/kubectl-etcd-drill-[0-9a-f]{6} \(image [^)]+, deleted since\); it serves the same revision, keys, compaction and KV hash/m);
      expect(good.stderr).toMatch(/creating the drill pod "kubectl-etcd-drill-[0-9a-f]{6}" in namespace "uc1"/);
      const record = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as { drills: Array<Record<string, unknown>> };
      expect(record.drills.at(-1)).toMatchObject({ where: 'pod', namespace: NS, outcome: 'passed', etcdVersion: expect.stringMatching(/^3\.5\./) });

      // A lease whose record is damaged, the trailer resealed: inspect passes the file, the drill does not.
      const lease = /lease ([0-9a-f]+) granted/.exec(await etcdctlInPod(cluster, T, ['lease', 'grant', '3600']))![1]!;
      await etcdctlInPod(cluster, T, ['put', '/schedule-test/leased', 'x', `--lease=${lease}`]);
      const taken = await kubectlEtcd(cluster, ['backup', '-n', NS, '--dir', work], asOperator());
      expect(taken.code, taken.stderr).toBe(0);
      const bad = join(work, readdirSync(work).filter((f) => f.endsWith('.db') && f !== name)[0]!);
      expect(await damageLease(bad, BigInt(`0x${lease}`)), 'the lease record is in the snapshot').toBeGreaterThan(0);
      expect((await kubectlEtcd(cluster, ['inspect', bad])).code).toBe(0);
      const failed = await verify(bad);
      expect(failed.code, failed.stdout + failed.stderr).toBe(3);
      expect(failed.stdout).toMatch(/^DRILL\s+FAILED: (etcd exited with code \d+ on the restored data|etcd(ctl|utl) snapshot restore refused the snapshot): .*failed to Unmarshal lease proto item/m);
      expect(failed.stderr).toMatch(/^error: the restore drill of snapshot ".*" failed: .*; this backup would not restore/m);

      // Refused before anything is made: --in-cluster without --restore.
      const usage = await kubectlEtcd(cluster, ['verify', file, '--in-cluster', '-n', NS]);
      expect([usage.code, usage.stderr]).toEqual([2, 'error: --in-cluster works only with --restore; add --restore to run a restore drill in a pod of the cluster\n']);
    } finally {
      rmSync(work, { recursive: true, force: true });
      await etcdctlInPod(cluster, T, ['del', '/schedule-test/leased']).catch(() => undefined);
    }
    expect(await kubectl(['get', 'pods', '-l', 'kubectl-etcd/drill', '-o', 'name'])).toBe('');
  }, 300_000);

  it('delete keeps the backups unless --delete-backups; with it, nothing is left', async () => {
    const refused = await kubectlEtcd(cluster, ['schedule', 'delete', 'kube-etcd', '-n', NS], asOperator());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: no schedule "kube-etcd" in namespace "uc1"/);

    const again = await kubectlEtcd(cluster, ['schedule', 'create', '-n', NS, '--every', '0 * * * *', '--keep', '2'], asOperator());
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: schedule "kube-etcd-backup" exists already in namespace "uc1"; kubectl etcd schedule list shows it/);

    // Without --delete-backups the claim and its backups stay; a new schedule is pointed at it.
    const kept = await kubectlEtcd(cluster, ['schedule', 'delete', NAME, '-n', NS], asOperator());
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toMatch(`the backups stay on claim "${NAME}s"`);
    expect(await kubectl(['get', 'cronjobs,jobs,serviceaccounts', '-l', 'kubectl-etcd/schedule', '-o', 'name'])).toBe('');
    expect(backups(await volumeDir())).toHaveLength(2);
    const onOld = await kubectlEtcd(cluster, ['schedule', 'create', '-n', NS, '--every', '0 * * * *', '--keep', '2'], asOperator());
    expect(onOld.code).toBe(1);
    expect(onOld.stderr).toMatch(`error: claim "${NAME}s" exists already in namespace "uc1" (the backups of an earlier schedule "${NAME}"?); pass --to pvc/${NAME}s`);
    const reuse = await kubectlEtcd(cluster, ['schedule', 'create', '-n', NS, '--every', '0 * * * *', '--keep', '2', '--to', `pvc/${NAME}s`], asOperator());
    expect(reuse.code, reuse.stderr).toBe(0);

    // A delete cut off after the CronJob went (here: deleted by hand) is finished by running it again.
    ok(await cluster.kubectl(['-n', NS, 'delete', 'cronjob', NAME, '--cascade=foreground']));
    expect((await kubectl(['get', 'serviceaccount', NAME, '-o', 'name'])).trim()).toBe(`serviceaccount/${NAME}`);
    const r = await kubectlEtcd(cluster, ['schedule', 'delete', NAME, '-n', NS, '--delete-backups'], asOperator());
    expect(r.code, r.stderr).toBe(0);
    expect(await kubectl(['get', 'cronjobs,jobs,pods,serviceaccounts,pvc', '-l', 'kubectl-etcd/schedule', '-o', 'name'])).toBe('');
    expect(await kubectl(['get', 'serviceaccount', NAME, '--ignore-not-found', '-o', 'name'])).toBe('');
    // The members were never touched.
    await waitFor('the members to be healthy', async () => {
      const s = await kubectlEtcd(cluster, ['status', '-n', NS, '--check']);
      return s.code === 0 ? true : undefined;
    }, 120_000, 2000);
  }, 300_000);
});

describe('schedule of an etcd image without a shell (distroless, etcd 3.4, TLS)', () => {
  const DNS = DL;
  const DNAME = 'etcd-backup';
  it('the naive way: the etcd image cannot run a backup script', async () => {
    const r = await cluster.kubectl(['-n', DNS, 'exec', 'etcd-0', '-c', 'etcd', '--', 'sh', '-c', 'true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/executable file not found|no such file/i);
  });

  it('runs the script in the shell image, with the etcd image beside it as a native sidecar, drills the restore (--verify-restore), and the Job completes', async () => {
    const r = await kubectlEtcd(cluster, ['schedule', 'create', '-n', DNS, '--every', '15 3 * * *', '--keep', '3', '--verify-restore']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/no shell: etcdctl run from docker\.io\/library\/busybox:1\.36 beside it/);
    const cj = JSON.parse(ok(await cluster.kubectl(['-n', DNS, 'get', 'cronjob', DNAME, '-o', 'json']))) as { spec: { jobTemplate: { spec: { template: { spec: Record<string, any> } } } } };
    const pod = cj.spec.jobTemplate.spec.template.spec;
    expect(pod.shareProcessNamespace).toBe(true);
    expect(pod.initContainers).toMatchObject([{ name: 'etcd-tools', restartPolicy: 'Always', image: expect.stringMatching(/^gcr\.io\/etcd-development\/etcd:/) }]);

    const result = await runOnce('d-run-1', DNS, DNAME);
    expect(result, `${(await kubectlEtcd(cluster, ['schedule', 'status', DNAME, '-n', DNS])).stdout}\n${(await cluster.kubectl(['-n', DNS, 'logs', '-l', 'kubectl-etcd/schedule', '--all-containers', '--tail', '30'])).stdout}`).toBe('Complete');
    const dir = await volumeDir(DNS, `${DNAME}s`);
    const files = backups(dir, `${DL}-etcd`);
    expect(files).toHaveLength(1);
    const record = JSON.parse(readFileSync(join(dir, `${files[0]}.json`), 'utf8')) as { sha256: string; etcdVersion: string; revision: number; verified: Record<string, boolean>; drills: Array<Record<string, any>> };
    expect(record.verified).toEqual({ size: true, sha256Trailer: true, bbolt: true });
    // --verify-restore: the members' own etcd (run from the sidecar's root) served the snapshot's revision.
    // (A member never written to: the snapshot's revision is 0, and etcd started on it serves 1.)
    const rev = Math.max(1, record.revision);
    expect(record.drills).toMatchObject([{ where: 'schedule', outcome: 'passed', etcdVersion: expect.stringMatching(/^3\.4\./), expectedRevision: rev, served: { revision: rev } }]);
    const listed = await kubectlEtcd(cluster, ['snapshots', 'list', '-n', DNS, '--schedule', DNAME]);
    expect(listed.stdout).toMatch(/passed \d{4}-\d\d-\d\dT/);
    expect(record.etcdVersion).toMatch(/^3\.4\./);
    expect(createHash('sha256').update(readFileSync(join(dir, files[0]!))).digest('hex')).toBe(record.sha256);

    // verify --restore --in-cluster of that backup: the drill pod runs the shell image beside the
    // etcd image, whose own etcdctl restores and etcd serves it (no shell of its own).
    const work = mkdtempSync(join(tmpdir(), 'schedule-drill-dl-'));
    try {
      const drilled = await kubectlEtcd(cluster, ['verify', join(dir, files[0]!), '--restore', '--in-cluster', '-n', DNS, '--state-dir', work]);
      expect(drilled.code, drilled.stderr).toBe(0);
      expect(drilled.stdout).toMatch(/^DRILL\s+passed: restored with etcdctl 3\.4\.\d+, started etcd 3\.4\.\d+ on the loopback of pod dl-sched\/kubectl-etcd-drill-/m);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    expect(ok(await cluster.kubectl(['-n', DNS, 'get', 'pods', '-l', 'kubectl-etcd/drill', '-o', 'name']))).toBe('');

    const d = await kubectlEtcd(cluster, ['schedule', 'delete', DNAME, '-n', DNS, '--delete-backups']);
    expect(d.code, d.stderr).toBe(0);
    expect(ok(await cluster.kubectl(['-n', DNS, 'get', 'cronjobs,jobs,pods,serviceaccounts,pvc', '-l', 'kubectl-etcd/schedule', '-o', 'name']))).toBe('');
  }, 300_000);
});
