/**
 * The kube seam's plain API helpers against the local test cluster, checked with real kubectl:
 * kubeconfig flags and merged KUBECONFIG, scale, rollout restart, PDB save / re-create,
 * permission preflight, waiting.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { kubeContextFromOptions } from '../../src/cli/kubecontext.js';
import { accessError, checkAccess } from '../../src/kube/access.js';
import { listPods, waitForPodGone, waitForPods } from '../../src/kube/pods.js';
import { deletePdb, portablePdb, recreatePdb, scaleWorkload } from '../../src/kube/workloads.js';
import { formatError } from '../../src/errors.js';

const repo = path.resolve(import.meta.dirname, '../..');
let dir: string;
let kubeconfig: string;

function sim(...args: string[]): string {
  return execFileSync('npx', ['tsx', 'test/sim/cli.ts', ...args], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function kubectl(...args: string[]): string {
  return execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' });
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-api-e2e-'));
  sim('up', '--dir', dir, '--fixture', 'single');
  kubeconfig = path.join(dir, 'kubeconfig');
  sim('user', '--dir', dir, 'bob');
});

afterAll(() => {
  if (dir) {
    sim('down', '--dir', dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('kube API helpers against the local test cluster', () => {
  it('uses -n and the kubeconfig given by flag', async () => {
    const kube = kubeContextFromOptions({ kubeconfig, namespace: 'uc1' }, {});
    expect(kube.namespace).toBe('uc1');
    const sts = await kube.apps.listNamespacedStatefulSet({ namespace: kube.namespace });
    expect(sts.items.map((s) => s.metadata?.name)).toContain('kube-etcd');
  });

  it('picks the --context from a merged KUBECONFIG (first file wins for current-context)', async () => {
    const bobFile = path.join(dir, 'users', 'bob.kubeconfig');
    const bob = YAML.parse(fs.readFileSync(bobFile, 'utf8'));
    bob['current-context'] = 'as-bob';
    bob.contexts = [{ name: 'as-bob', context: { ...bob.contexts[0].context, namespace: 'uc1' } }];
    const other = path.join(dir, 'other.kubeconfig');
    fs.writeFileSync(other, YAML.stringify(bob));
    const env = { KUBECONFIG: `${kubeconfig}:${other}` };
    const asAdmin = kubeContextFromOptions({}, env);
    expect(asAdmin.contextName).toBe('sim');
    expect(await checkAccess(asAdmin, [{ verb: 'create', group: '', resource: 'pods', subresource: 'exec', namespace: 'uc1' }])).toEqual([]);
    const asBob = kubeContextFromOptions({ context: 'as-bob' }, env);
    expect(asBob.namespace).toBe('uc1');
    const denied = await checkAccess(asBob, [
      { verb: 'create', group: '', resource: 'pods', subresource: 'exec', namespace: 'uc1' },
      { verb: 'patch', group: 'apps', resource: 'statefulsets', subresource: 'scale', namespace: 'uc1' },
    ]);
    expect(denied.map((d) => `${d.verb} ${d.resource}/${d.subresource}`)).toEqual(['create pods/exec', 'patch statefulsets/scale']);
    expect(formatError(accessError(denied))).toBe(
      'error: missing permission in namespace "uc1": create pods/exec, patch statefulsets.apps/scale; ask a cluster admin to grant them (the README\'s "Permissions" lists a Role and ClusterRole that do), or run `kubectl auth can-i --list` to see yours',
    );
  });

  it('scales through the scale subresource and reports the previous count', async () => {
    const kube = kubeContextFromOptions({ kubeconfig, namespace: 'uc1' }, {});
    const ref = { kind: 'Deployment' as const, name: 'gke-master-etcd-maintenance', namespace: 'uc1' };
    const before = Number(kubectl('-n', 'uc1', 'get', 'deploy', ref.name, '-o', 'jsonpath={.spec.replicas}'));
    expect(await scaleWorkload(kube, ref, 0)).toBe(before);
    expect(kubectl('-n', 'uc1', 'get', 'deploy', ref.name, '-o', 'jsonpath={.spec.replicas}')).toBe('0');
    expect(await scaleWorkload(kube, ref, before)).toBe(0);
    expect(kubectl('-n', 'uc1', 'get', 'deploy', ref.name, '-o', 'jsonpath={.spec.replicas}')).toBe(String(before));
  });

  it('saves, deletes and re-creates a PDB', async () => {
    const kube = kubeContextFromOptions({ kubeconfig }, {});
    // (`kubectl create poddisruptionbudget` sends protobuf, which the simulator does not accept; a manifest is JSON.)
    const manifest = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'e2e-pdb', namespace: 'uc1' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'kube-apiserver' } } } };
    execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'create', '-f', '-'], { input: JSON.stringify(manifest) });
    const saved = portablePdb(await kube.policy.readNamespacedPodDisruptionBudget({ name: 'e2e-pdb', namespace: 'uc1' }));
    expect(saved.metadata).toEqual({ name: 'e2e-pdb', namespace: 'uc1', labels: undefined, annotations: undefined });
    expect(await deletePdb(kube, 'uc1', 'e2e-pdb')).toBe(true);
    expect(kubectl('-n', 'uc1', 'get', 'pdb', '-o', 'name')).not.toContain('e2e-pdb');
    expect(await recreatePdb(kube, saved)).toBe(true);
    expect(await recreatePdb(kube, saved)).toBe(false);
    expect(kubectl('-n', 'uc1', 'get', 'pdb', 'e2e-pdb', '-o', 'jsonpath={.spec.minAvailable}')).toBe('1');
  });

  it('waits for a pod that does not exist to be gone, and times out with a clear message', async () => {
    const kube = kubeContextFromOptions({ kubeconfig, namespace: 'uc1' }, {});
    await waitForPodGone(kube, 'uc1', 'no-such-pod', 5_000);
    const wait = waitForPods(kube, { namespace: 'uc1', names: ['never'], timeoutMs: 1_000, what: 'pod "never" to be ready', until: (p) => p.length > 0 });
    await expect(wait).rejects.toThrow('timed out after 1s waiting for pod "never" to be ready in namespace "uc1"');
    expect(Array.isArray(await listPods(kube, 'uc1', 'app=nothing-has-this'))).toBe(true);
  });
});
