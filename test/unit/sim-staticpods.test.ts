// The simulator's static pod source (test/sim/kubelet/staticpods.ts): a file's Pod defaulted as
// the kubelet's applyDefaults does (pkg/kubelet/config/common.go), and files a static pod may not be.
import { describe, expect, it } from 'vitest';
import { HASH_ANNOTATION, staticPodFromFile } from '../sim/kubelet/staticpods.js';

const text = `apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system, labels: {component: etcd}}
spec:
  containers: [{name: etcd, image: registry.k8s.io/etcd:3.5.16-0}]
`;

describe('a static pod from its file', () => {
  it('is named NAME-NODE on that node, its uid the md5 hash (node, file and pod), with the file source annotations and a NoExecute toleration', () => {
    const pod = staticPodFromFile('Node-1', '/m/etcd.yaml', text, 'T');
    if (typeof pod === 'string') throw new Error(pod);
    expect(pod.metadata.name).toBe('etcd-node-1');
    expect(pod.metadata.namespace).toBe('kube-system');
    expect(pod.spec.nodeName).toBe('Node-1');
    expect(pod.metadata.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(pod.metadata.annotations).toMatchObject({ [HASH_ANNOTATION]: pod.metadata.uid, 'kubernetes.io/config.source': 'file', 'kubernetes.io/config.seen': 'T' });
    expect(pod.spec.tolerations).toEqual([{ operator: 'Exists', effect: 'NoExecute' }]);
    const same = staticPodFromFile('Node-1', '/m/etcd.yaml', text, 'later');
    expect(typeof same !== 'string' && same.metadata.uid).toBe(pod.metadata.uid);
    for (const other of [staticPodFromFile('node-2', '/m/etcd.yaml', text, 'T'), staticPodFromFile('Node-1', '/m/etcd2.yaml', text, 'T'), staticPodFromFile('Node-1', '/m/etcd.yaml', text.replace('3.5.16', '3.5.17'), 'T')]) {
      expect(typeof other !== 'string' && other.metadata.uid).not.toBe(pod.metadata.uid);
    }
    const defaultNs = staticPodFromFile('n', '/m/x', text.replace(', namespace: kube-system', ''), 'T');
    expect(typeof defaultNs !== 'string' && defaultNs.metadata.namespace).toBe('default');
  });

  it('is refused when it does not parse, is no Pod, or refers to a Secret, ConfigMap, claim, ServiceAccount or pull secret', () => {
    expect(staticPodFromFile('n', '/m/x', 'a: [', 'T')).toMatch(/^cannot parse/);
    expect(staticPodFromFile('n', '/m/x', 'kind: Service\nmetadata: {name: s}\nspec: {}', 'T')).toBe('not a Pod with a name and a spec');
    const refused = (specYaml: string) => staticPodFromFile('n', '/m/x', `kind: Pod\nmetadata: {name: p}\nspec:\n${specYaml}`, 'T');
    expect(refused('  serviceAccountName: sa\n  containers: [{name: c, image: i}]')).toMatch(/may not refer to API objects: serviceAccountName/);
    expect(refused('  imagePullSecrets: [{name: r}]\n  containers: [{name: c, image: i}]')).toMatch(/imagePullSecrets/);
    expect(refused('  volumes: [{name: v, secret: {secretName: s}}]\n  containers: [{name: c, image: i}]')).toMatch(/volume "v"/);
    expect(refused('  volumes: [{name: v, persistentVolumeClaim: {claimName: c}}]\n  containers: [{name: c, image: i}]')).toMatch(/volume "v"/);
    expect(refused('  containers: [{name: c, image: i, env: [{name: X, valueFrom: {configMapKeyRef: {name: m, key: k}}}]}]')).toMatch(/env of container "c"/);
    expect(refused('  volumes: [{name: v, hostPath: {path: /var/lib/etcd}}]\n  containers: [{name: c, image: i, env: [{name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]}]')).not.toBeTypeOf('string');
  });
});

describe('an update of a mirror pod', () => {
  it('may not add, remove or change the mirror annotation (ValidatePodSpecificAnnotationUpdates)', async () => {
    const { mirrorAnnotationErrors } = await import('../sim/apiserver/podupdate.js');
    const m = { 'kubernetes.io/config.mirror': 'h', a: '1' };
    expect(mirrorAnnotationErrors(m, { ...m, a: '2' })).toEqual([]);
    expect(mirrorAnnotationErrors(m, { a: '1' })).toEqual([{ field: 'metadata.annotations[kubernetes.io/config.mirror]', message: 'Forbidden: may not remove or update mirror pod annotation', reason: 'FieldValueForbidden' }]);
    expect(mirrorAnnotationErrors(m, { ...m, 'kubernetes.io/config.mirror': 'other' })[0]!.message).toMatch(/may not remove or update/);
    expect(mirrorAnnotationErrors({ a: '1' }, m)[0]!.message).toBe('Forbidden: may not add mirror pod annotation');
  });
});
