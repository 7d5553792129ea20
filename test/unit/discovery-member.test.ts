import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { readMember } from '../../src/etcd/discovery/index.js';

/** A running pod with one container, as the API returns it. */
function pod(container: Partial<V1Container>, extra: { volumes?: V1Pod['spec'] extends infer S ? S extends { volumes?: infer V } ? V : never : never; securityContext?: object; hostname?: string } = {}): V1Pod {
  return {
    metadata: { name: 'db-0', namespace: 'ns1' },
    spec: {
      nodeName: 'node-2',
      ...(extra.hostname ? { hostname: extra.hostname } : {}),
      ...(extra.securityContext ? { securityContext: extra.securityContext } : {}),
      containers: [{ name: 'etcd', image: 'quay.io/coreos/etcd:v3.5.9', ...container }],
      volumes: extra.volumes ?? [],
    },
    status: { podIP: '10.88.3.4', conditions: [{ type: 'Ready', status: 'False' }] },
  };
}

const podName = { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } };
const podIP = { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } };

describe('readMember: real-world ways of configuring etcd', () => {
  it.each([
    {
      case: 'shell-wrapped with $(HOSTNAME) (left for the shell by Kubernetes)',
      container: { command: ['/bin/sh', '-ec', 'exec etcd --name=$(HOSTNAME) --data-dir=/var/run/etcd/default.etcd --listen-client-urls "https://0.0.0.0:2379" --initial-advertise-peer-urls=https://$(HOSTNAME).db:2380 --trusted-ca-file=/tls/ca.crt'] },
      expected: { name: 'db-0', dataDir: '/var/run/etcd/default.etcd', endpoint: 'https://127.0.0.1:2379', peerUrl: 'https://db-0.db:2380' },
    },
    {
      case: 'shell-wrapped with ${HOSTNAME}, a preamble and single quotes',
      container: { command: ['sh', '-c', `set -e; echo starting\nHOSTNAME=\${HOSTNAME:-x} exec /usr/local/bin/etcd --name \${HOSTNAME} --listen-client-urls 'http://127.0.0.1:2379,http://$POD_IP:2379'`], env: [podIP] },
      expected: { name: 'db-0', endpoint: 'http://127.0.0.1:2379', dataDir: '/db-0.etcd' },
    },
    {
      case: 'hostname from spec.hostname when set',
      container: { command: ['sh', '-c', 'exec etcd --name=$HOSTNAME'] },
      hostname: 'member-a',
      expected: { name: 'member-a' },
    },
    {
      case: 'env only (image entrypoint), ETCD_NAME from the downward API through $(VAR)',
      container: { env: [podName, { name: 'ETCD_NAME', value: '$(POD_NAME)' }, { name: 'ETCD_DATA_DIR', value: '/data' }, { name: 'ETCD_LISTEN_CLIENT_URLS', value: 'https://0.0.0.0:4001' }, { name: 'ETCD_TRUSTED_CA_FILE', value: '/tls/ca.crt' }] },
      expected: { name: 'db-0', dataDir: '/data', endpoint: 'https://127.0.0.1:4001', clientPort: 4001, clientTlsEnabled: true, tls: { caFile: '/tls/ca.crt' } },
    },
    {
      case: '"--a b" form and single-dash flags',
      container: { command: ['etcd', '--name', 'm1', '-data-dir', '/d', '--listen-client-urls', 'https://10.0.0.1:2379', '--client-cert-auth', '--cert-file', '/c.crt', '--key-file=/c.key', '--trusted-ca-file', '/ca.crt'] },
      expected: { name: 'm1', dataDir: '/d', endpoint: 'https://10.0.0.1:2379', tls: { caFile: '/ca.crt', certFile: '/c.crt', keyFile: '/c.key' } },
    },
    {
      case: 'flags win over ETCD_* env, as in etcd',
      container: { command: ['etcd', '--name=from-flag'], env: [{ name: 'ETCD_NAME', value: 'from-env' }, { name: 'ETCD_DATA_DIR', value: '/from-env' }] },
      expected: { name: 'from-flag', dataDir: '/from-env' },
    },
    {
      case: 'a repeated flag: the last one wins',
      container: { command: ['etcd', '--name=a', '--name=b'] },
      expected: { name: 'b', dataDir: '/b.etcd' },
    },
    {
      case: 'args only (entrypoint is etcd)',
      container: { args: ['--name=x', '--data-dir=/var/lib/etcd'] },
      expected: { name: 'x', dataDir: '/var/lib/etcd' },
    },
    {
      case: "etcd's defaults: name default, data dir relative to workingDir, http://localhost:2379",
      container: { command: ['etcd'], workingDir: '/work' },
      expected: { name: 'default', dataDir: '/work/default.etcd', endpoint: 'http://127.0.0.1:2379', clientPort: 2379, clientTlsEnabled: false, peerUrl: 'http://localhost:2380', initialCluster: 'default=http://localhost:2380', initialClusterToken: 'etcd-cluster' },
    },
    {
      case: 'only a pod-IP listener: the endpoint is that IP',
      container: { command: ['etcd', '--listen-client-urls=https://$(POD_IP):2379', '--trusted-ca-file=/ca.crt'], env: [podIP] },
      expected: { endpoint: 'https://10.88.3.4:2379' },
    },
    {
      case: 'unix socket listeners are skipped',
      container: { command: ['etcd', '--listen-client-urls=unix://etcd.sock,http://0.0.0.0:2379'] },
      expected: { endpoint: 'http://127.0.0.1:2379' },
    },
  ])('$case', ({ container, expected, hostname }) => {
    const member = readMember(pod(container, hostname ? { hostname } : {}));
    expect(member).toMatchObject(expected);
    expect(member?.notes).toBeUndefined();
  });

  it.each([
    {
      case: 'https without a CA file (missing TLS)',
      container: { command: ['etcd', '--listen-client-urls=https://0.0.0.0:2379', '--client-cert-auth=true'] },
      notes: ['client URL is https but no --trusted-ca-file is set', '--client-cert-auth is on but no client certificate is known'],
    },
    {
      case: 'name from a Secret cannot be resolved from the pod',
      container: { env: [{ name: 'ETCD_NAME', valueFrom: { secretKeyRef: { name: 'etcd-conf', key: 'name' } } }, { name: 'ETCD_DATA_DIR', value: '/d' }] },
      notes: ['env ETCD_NAME comes from secret "etcd-conf" key "name" (not resolved)'],
    },
    {
      case: 'an undefined $(VAR) stays visible',
      container: { command: ['etcd', '--name=$(NOPE)'] },
      notes: ['name "$(NOPE)" has an unresolved variable', 'data-dir "/$(NOPE).etcd" has an unresolved variable'],
    },
  ])('notes what it cannot resolve: $case', ({ container, notes }) => {
    expect(readMember(pod(container))?.notes).toEqual(notes);
  });
});

describe('readMember: volumes, identity and node', () => {
  it.each([
    {
      case: 'longest mountPath prefix wins (PVC under a hostPath)',
      mounts: [{ name: 'host', mountPath: '/var' }, { name: 'data', mountPath: '/var/lib/etcd' }],
      volumes: [{ name: 'host', hostPath: { path: '/var' } }, { name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }],
      dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-db-0', mountPath: '/var/lib/etcd' },
    },
    {
      case: 'emptyDir',
      mounts: [{ name: 'scratch', mountPath: '/var/lib' }],
      volumes: [{ name: 'scratch', emptyDir: {} }],
      dataVolume: { kind: 'emptyDir', volumeName: 'scratch', mountPath: '/var/lib' },
    },
    {
      case: 'a sibling path is not a prefix match (/var/lib/etcd2)',
      mounts: [{ name: 'x', mountPath: '/var/lib/etcd2' }],
      volumes: [{ name: 'x', emptyDir: {} }],
      dataVolume: undefined,
    },
    {
      case: 'a subPath of the volume (the data dir is not the volume root)',
      mounts: [{ name: 'data', mountPath: '/var/lib/etcd', subPath: 'etcd/' }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }],
      dataVolume: { kind: 'pvc', volumeName: 'data', claimName: 'data-db-0', mountPath: '/var/lib/etcd', subPath: 'etcd' },
    },
    {
      case: 'a subPathExpr, expanded with the member pod\'s own env (a utility pod has another name)',
      mounts: [{ name: 'data', mountPath: '/var/lib/etcd', subPathExpr: 'etcd-$(POD_NAME)' }],
      volumes: [{ name: 'data', hostPath: { path: '/srv' } }],
      dataVolume: { kind: 'hostPath', volumeName: 'data', hostPath: '/srv', mountPath: '/var/lib/etcd', subPath: 'etcd-db-0' },
    },
  ])('data volume: $case', ({ mounts, volumes, dataVolume }) => {
    const m = readMember(pod({ command: ['etcd', '--data-dir=/var/lib/etcd/data'], env: [podName], volumeMounts: mounts }, { volumes }));
    expect(m?.dataVolume).toEqual(dataVolume);
  });

  it('notes a subPathExpr variable it cannot resolve', () => {
    const m = readMember(pod({ command: ['etcd', '--data-dir=/d'], volumeMounts: [{ name: 'd', mountPath: '/d', subPathExpr: '$(NOPE)' }] }, { volumes: [{ name: 'd', emptyDir: {} }] }));
    expect(m?.notes).toEqual(['subPathExpr "$(NOPE)" of the data volume has an unresolved variable']);
  });

  const ca = '/etc/etcd/tls/ca.crt';
  const crt = '/etc/etcd/tls/client.crt';
  const key = '/etc/etcd/tls/client.key';
  const ref = (secretName: string, k: string) => ({ secretName, key: k });
  it.each([
    {
      case: 'a Secret volume holds every key under its own name',
      mounts: [{ name: 'tls', mountPath: '/etc/etcd/tls' }],
      volumes: [{ name: 'tls', secret: { secretName: 's' } }],
      files: { [ca]: [ref('s', 'ca.crt')], [crt]: [ref('s', 'client.crt')], [key]: [ref('s', 'client.key')] },
    },
    {
      case: 'items rename keys, and a key they do not list is not there',
      mounts: [{ name: 'tls', mountPath: '/etc/etcd/tls/' }],
      volumes: [{ name: 'tls', secret: { secretName: 's', items: [{ key: 'tls.crt', path: 'client.crt' }, { key: 'tls.key', path: './client.key' }] } }],
      files: { [crt]: [ref('s', 'tls.crt')], [key]: [ref('s', 'tls.key')] },
    },
    {
      case: 'file by file with subPath, renamed by items, the CA from a Secret of its own',
      mounts: [
        { name: 'ca', mountPath: ca, subPath: 'ca.crt' },
        { name: 'tls', mountPath: crt, subPath: 'client.crt' },
        { name: 'tls', mountPath: key, subPath: 'client.key' },
      ],
      volumes: [
        { name: 'ca', secret: { secretName: 'etcd-ca' } },
        { name: 'tls', secret: { secretName: 'etcd-client', items: [{ key: 'tls.crt', path: 'client.crt' }, { key: 'tls.key', path: 'client.key' }] } },
      ],
      files: { [ca]: [ref('etcd-ca', 'ca.crt')], [crt]: [ref('etcd-client', 'tls.crt')], [key]: [ref('etcd-client', 'tls.key')] },
    },
    {
      case: 'a subPath folder of the volume, and a subPathExpr',
      mounts: [{ name: 'tls', mountPath: '/etc/etcd/tls', subPath: 'pki/' }, { name: 'own', mountPath: ca, subPathExpr: '$(POD_NAME)-ca.crt' }],
      volumes: [
        { name: 'tls', secret: { secretName: 's', items: [{ key: 'tls.crt', path: 'pki/client.crt' }, { key: 'tls.key', path: 'client.key' }] } },
        { name: 'own', secret: { secretName: 'cas' } },
      ],
      files: { [ca]: [ref('cas', 'db-0-ca.crt')], [crt]: [ref('s', 'tls.crt')] },
    },
    {
      case: 'the deepest mount wins: a hostPath under a Secret volume has no Secret behind it',
      mounts: [{ name: 'tls', mountPath: '/etc/etcd' }, { name: 'host', mountPath: '/etc/etcd/tls' }],
      volumes: [{ name: 'tls', secret: { secretName: 's' } }, { name: 'host', hostPath: { path: '/etc/pki' } }],
      files: undefined,
    },
    {
      case: 'keys hold no "/": a Secret volume without items has no file in a folder',
      mounts: [{ name: 'tls', mountPath: '/etc/etcd' }],
      volumes: [{ name: 'tls', secret: { secretName: 's' } }],
      files: undefined,
    },
    {
      case: 'projected: a later source replaces an earlier one, so it comes first; a later ConfigMap item hides the Secrets before it',
      mounts: [{ name: 'tls', mountPath: '/etc/etcd/tls' }],
      volumes: [{
        name: 'tls',
        projected: {
          sources: [
            { secret: { name: 'old' } },
            { configMap: { name: 'bundle', items: [{ key: 'ca', path: 'ca.crt' }] } },
            { secret: { name: 'client', items: [{ key: 'tls.crt', path: 'client.crt' }] } },
            { downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
            { secret: { name: 'new' } },
          ],
        },
      }],
      files: {
        [ca]: [ref('new', 'ca.crt')],
        [crt]: [ref('new', 'client.crt'), ref('client', 'tls.crt'), ref('old', 'client.crt')],
        [key]: [ref('new', 'client.key'), ref('old', 'client.key')],
      },
    },
  ])('secret files: $case', ({ mounts, volumes, files }) => {
    const m = readMember(pod(
      { command: ['etcd', `--trusted-ca-file=${ca}`, `--cert-file=${crt}`, `--key-file=${key}`], env: [podName], volumeMounts: mounts },
      { volumes },
    ));
    expect(m?.secretFiles).toEqual(files);
  });

  it('secret files: a relative path is read from the working dir, and named as etcd is given it', () => {
    const m = readMember(pod(
      { command: ['etcd', '--cert-file=tls/client.crt'], workingDir: '/etc/etcd', volumeMounts: [{ name: 'tls', mountPath: '/etc/etcd/tls' }] },
      { volumes: [{ name: 'tls', secret: { secretName: 's' } }] },
    ));
    expect(m?.secretFiles).toEqual({ 'tls/client.crt': [ref('s', 'client.crt')] });
  });

  it('container securityContext overrides the pod one; fsGroup from the pod; node, image and readiness from the pod', () => {
    const m = readMember(pod(
      { command: ['etcd'], securityContext: { runAsUser: 2000 } },
      { securityContext: { runAsUser: 1000, runAsGroup: 3000, fsGroup: 4000 } },
    ));
    expect(m).toMatchObject({ runAsUser: 2000, runAsGroup: 3000, fsGroup: 4000, node: 'node-2', image: 'quay.io/coreos/etcd:v3.5.9', ready: false });
  });

  it('picks the etcd container among sidecars, or the one named', () => {
    const p = pod({ command: ['etcd', '--name=main'] });
    p.spec!.containers.unshift({ name: 'metrics', image: 'busybox', command: ['sh', '-c', 'while :; do etcdctl endpoint health; sleep 5; done'] });
    expect(readMember(p)?.container).toBe('etcd');
    expect(readMember(p, { container: 'metrics' })?.container).toBe('metrics');
    expect(readMember(p, { container: 'nope' })).toBeUndefined();
  });

  it.each([
    ['yes', true], ['YES', true], ['Yes', true], ['true', true], ['TRUE', true], ['True', true], ['1', true],
    ['no', false], ['false', false], ['0', false], ['on', false], ['y', false], [' yes', false], ['yes ', false], ['', false], [undefined, false],
  ])('Bitnami disaster recovery with ETCD_DISASTER_RECOVERY=%j is %s, as the image\'s is_boolean_yes reads it', (value, on) => {
    const env = value === undefined ? [] : [{ name: 'ETCD_DISASTER_RECOVERY', value }];
    const m = readMember(pod({ image: 'docker.io/bitnami/etcd:3.5.16-debian-12-r0', command: undefined, env }));
    expect(m?.startScripts).toEqual({ kind: 'bitnami', disasterRecovery: on ? value : false });
  });

  it('a pod without etcd is not a member', () => {
    expect(readMember(pod({ name: 'api', command: ['kube-apiserver', '--etcd-servers=https://e:2379'] }))).toBeUndefined();
  });
});
