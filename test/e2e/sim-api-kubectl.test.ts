// Conformance of the simulated API server with real kubectl (1.32 and 1.30): what a user of
// kubectl sees for create/get/delete, selectors, scale, rollout restart, wait, auth can-i,
// Forbidden, Conflict and watch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECTLS, ok, requireCommand, requireRoot, runUntil, startCluster, type SimCluster } from '../sim/harness.js';

let c: SimCluster;

beforeAll(async () => {
  requireRoot();
  for (const [, bin] of KUBECTLS) requireCommand(bin, 'install kubectl 1.30 and 1.32 (google-cloud-sdk kubectl packages)');
  c = await startCluster();
}, 300_000);

afterAll(async () => {
  await c?.down();
}, 120_000);

const list = (...items: object[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
const cm = (ns: string, name: string, labels: Record<string, string> = {}) =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, labels }, data: { k: 'v' } });

function statefulSet(ns: string, name: string): object {
  return {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name, namespace: ns },
    spec: {
      replicas: 3, serviceName: name, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: {
        nodeSelector: { 'sim-test': 'nowhere' }, // no node matches: pods stay Pending, nothing runs
        containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'] }] } },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  };
}

describe.each(KUBECTLS)('kubectl %s', (version, bin) => {
  const ns = `conf-${version.replace('.', '')}`;
  const k = (args: string[], input?: string, kubeconfig?: string) => c.kubectl(args, { bin, input, kubeconfig });

  it('creates from a manifest, gets JSON, filters by label and deletes', async () => {
    ok(await k(['create', '-f', '-'], list({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })));
    const created = ok(await k(['create', '-f', '-'], list(cm(ns, 'db', { tier: 'db' }), cm(ns, 'web', { tier: 'web' }), cm(ns, 'plain'))));
    expect(created).toContain('configmap/db created');
    const got = JSON.parse(ok(await k(['get', 'configmap', 'db', '-n', ns, '-o', 'json'])));
    expect(got).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'db', namespace: ns, labels: { tier: 'db' } }, data: { k: 'v' } });
    expect(got.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    const names = async (sel: string) => ok(await k(['get', 'cm', '-n', ns, '-l', sel, '-o', 'name'])).trim().split('\n').filter(Boolean).sort();
    expect(await names('tier=db')).toEqual(['configmap/db']);
    expect(await names('tier!=db,tier')).toEqual(['configmap/web']);
    expect(await names('tier in (db,web)')).toEqual(['configmap/db', 'configmap/web']);
    expect(await names('!tier')).toEqual(['configmap/plain']);
    expect(ok(await k(['delete', 'cm', 'db', '-n', ns]))).toContain('configmap "db" deleted');
    const gone = await k(['get', 'cm', 'db', '-n', ns]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('Error from server (NotFound): configmaps "db" not found');
  });

  it('creates a namespace, ConfigMap, Secret and ServiceAccount imperatively (typed clients send protobuf)', async () => {
    const imp = `${ns}-imp`;
    expect(ok(await k(['create', 'namespace', imp])).trim()).toBe(`namespace/${imp} created`);
    expect(ok(await k(['create', 'configmap', 'settings', '-n', imp, '--from-literal=mode=fast', '--from-literal=greeting=hello world'])).trim())
      .toBe('configmap/settings created');
    expect(ok(await k(['create', 'secret', 'generic', 'login', '-n', imp, '--from-literal=user=admin'])).trim()).toBe('secret/login created');
    expect(ok(await k(['create', 'serviceaccount', 'robot', '-n', imp])).trim()).toBe('serviceaccount/robot created');
    const cmap = JSON.parse(ok(await k(['get', 'configmap', 'settings', '-n', imp, '-o', 'json'])));
    expect(cmap.data).toEqual({ mode: 'fast', greeting: 'hello world' });
    expect(Object.keys(cmap.metadata).sort()).toEqual(['creationTimestamp', 'name', 'namespace', 'resourceVersion', 'uid']);
    const secret = JSON.parse(ok(await k(['get', 'secret', 'login', '-n', imp, '-o', 'json'])));
    expect([secret.type, Buffer.from(secret.data.user, 'base64').toString()]).toEqual(['Opaque', 'admin']);
    expect(JSON.parse(ok(await k(['get', 'namespace', imp, '-o', 'json']))).spec).toEqual({ finalizers: ['kubernetes'] });
  });

  it('creates PodDisruptionBudgets imperatively (protobuf) and returns their spec as given', async () => {
    expect(ok(await k(['-n', ns, 'create', 'pdb', 'guard', '--selector=app=x', '--min-available=1'])).trim())
      .toBe('poddisruptionbudget.policy/guard created');
    expect(ok(await k(['-n', ns, 'create', 'pdb', 'loose', '--selector=app=x,tier in (db,web),!legacy', '--max-unavailable=50%'])).trim())
      .toBe('poddisruptionbudget.policy/loose created');
    const guard = JSON.parse(ok(await k(['-n', ns, 'get', 'pdb', 'guard', '-o', 'json'])));
    expect(guard).toMatchObject({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'guard', namespace: ns } });
    expect(guard.spec).toEqual({ minAvailable: 1, selector: { matchLabels: { app: 'x' } } });
    const loose = JSON.parse(ok(await k(['-n', ns, 'get', 'pdb', 'loose', '-o', 'json'])));
    expect(loose.spec).toEqual({ maxUnavailable: '50%', selector: { matchLabels: { app: 'x' },
      matchExpressions: [{ key: 'legacy', operator: 'DoesNotExist' }, { key: 'tier', operator: 'In', values: ['db', 'web'] }] } });
  });

  it('scales a StatefulSet and restarts its rollout', async () => {
    ok(await k(['create', '-f', '-'], list(statefulSet(ns, 'web'))));
    expect(ok(await k(['scale', 'statefulset', 'web', '-n', ns, '--replicas=1']))).toContain('statefulset.apps/web scaled');
    const before = JSON.parse(ok(await k(['get', 'sts', 'web', '-n', ns, '-o', 'json'])));
    expect(before.spec.replicas).toBe(1);
    expect(ok(await k(['rollout', 'restart', 'statefulset/web', '-n', ns]))).toContain('statefulset.apps/web restarted');
    const after = JSON.parse(ok(await k(['get', 'sts', 'web', '-n', ns, '-o', 'json'])));
    expect(after.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(after.metadata.generation).toBeGreaterThan(before.metadata.generation);
  });

  it('waits for a condition set through the status subresource', async () => {
    const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'once', namespace: ns },
      spec: { template: { spec: { restartPolicy: 'Never', nodeSelector: { 'sim-test': 'nowhere' }, containers: [{ name: 'm', image: 'busybox' }] } } } };
    ok(await k(['create', '-f', '-'], list(job)));
    const waiting = k(['wait', '--for=condition=Complete', 'job/once', '-n', ns, '--timeout=60s']);
    await new Promise((r) => setTimeout(r, 500));
    ok(await k(['patch', 'job', 'once', '-n', ns, '--subresource=status', '--type=merge',
      '-p', JSON.stringify({ status: { conditions: [{ type: 'Complete', status: 'True' }] } })]));
    expect(ok(await waiting)).toContain('job.batch/once condition met');
  });

  it('answers auth can-i and forbids what RBAC does not grant', async () => {
    const user = `alice${version.replace('.', '')}`;
    const kubeconfig = ok(await c.sim(['user', user])).trim();
    ok(await k(['create', '-f', '-'], list(
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'reader', namespace: ns },
        rules: [{ apiGroups: [''], resources: ['pods', 'configmaps'], verbs: ['get', 'list', 'watch'] }] },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'reader', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'User', name: user }] })));
    const yes = await k(['auth', 'can-i', 'list', 'pods', '-n', ns], undefined, kubeconfig);
    expect([yes.code, yes.stdout.trim()]).toEqual([0, 'yes']);
    const no = await k(['auth', 'can-i', 'create', 'pods/exec', '-n', ns], undefined, kubeconfig);
    expect([no.code, no.stdout.trim()]).toEqual([1, 'no']);
    expect(ok(await k(['auth', 'can-i', 'create', 'pods/exec', '-n', ns])).trim()).toBe('yes');
    ok(await k(['get', 'configmaps', '-n', ns], undefined, kubeconfig));
    const denied = await k(['get', 'secrets', '-n', ns], undefined, kubeconfig);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`Error from server (Forbidden): secrets is forbidden: User "${user}" cannot list resource "secrets" in API group "" in the namespace "${ns}"`);
    const del = await k(['delete', 'configmap', 'web', '-n', ns], undefined, kubeconfig);
    expect(del.stderr).toContain(`configmaps "web" is forbidden: User "${user}" cannot delete resource "configmaps"`);
  });

  it('rejects a replace from a stale copy with Conflict', async () => {
    const stale = ok(await k(['get', 'cm', 'web', '-n', ns, '-o', 'json']));
    ok(await k(['label', 'cm', 'web', '-n', ns, 'changed=yes']));
    const r = await k(['replace', '-f', '-'], stale);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Operation cannot be fulfilled on configmaps "web": the object has been modified; please apply your changes to the latest version and try again');
  });

  it('streams watch events', async () => {
    // --output-watch-events adds an EVENT column to the (server-side) table; -o name would print names only.
    const w = runUntil(bin, ['--kubeconfig', c.kubeconfig, 'get', 'configmaps', '-n', ns, '--watch-only', '--output-watch-events'],
      /ADDED\s+watched\s[\s\S]*MODIFIED\s+watched\s[\s\S]*DELETED\s+watched\s/);
    await new Promise((r) => setTimeout(r, 700));
    ok(await k(['create', '-f', '-'], list(cm(ns, 'watched'))));
    ok(await k(['label', 'cm', 'watched', '-n', ns, 'seen=1']));
    ok(await k(['delete', 'cm', 'watched', '-n', ns]));
    const out = await w.done;
    expect(out.split('\n')[0]).toMatch(/^EVENT\s+NAME\s+DATA\s+AGE/);
  });
});
