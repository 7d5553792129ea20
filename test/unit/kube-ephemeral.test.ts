// addEphemeralContainerRetrying reads the pod again after a 409 (a crash-looping member's status
// changes every few seconds), for the real update and for the server-side dry run member
// replace's preflight sends; the last conflict of five is the error.
import { describe, expect, it } from 'vitest';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { addEphemeralContainerRetrying } from '../../src/kube/ephemeral.js';
import { ConflictError } from '../../src/kube/errors.js';

function fakeCore(conflicts: number) {
  let version = 0;
  const sent: Array<{ rv?: string; dryRun?: string }> = [];
  const core = {
    readNamespacedPod: async () => ({ metadata: { name: 'kube-etcd-0', namespace: 'uc1', resourceVersion: String(++version) }, spec: { containers: [] } }) as V1Pod,
    replaceNamespacedPodEphemeralcontainers: async (req: { body: V1Pod; dryRun?: string }) => {
      sent.push({ rv: req.body.metadata?.resourceVersion, dryRun: req.dryRun });
      if (sent.length <= conflicts) {
        throw Object.assign(new Error('HTTP-Code: 409'), { code: 409, body: JSON.stringify({ kind: 'Status', code: 409, message: 'Operation cannot be fulfilled on pods "kube-etcd-0": the object has been modified; please apply your changes to the latest version and try again' }) });
      }
      return req.body;
    },
  } as unknown as CoreV1Api;
  return { core, sent };
}

describe('addEphemeralContainerRetrying', () => {
  it('a dry run that meets a conflict is sent again on the pod as read again', async () => {
    const { core, sent } = fakeCore(2);
    const pod = await addEphemeralContainerRetrying({ core }, 'uc1', 'kube-etcd-0', () => ({ name: 'join-dry-run', image: 'etcd' }), true);
    expect(pod.spec?.ephemeralContainers?.map((c) => c.name)).toEqual(['join-dry-run']);
    expect(sent).toEqual([{ rv: '1', dryRun: 'All' }, { rv: '2', dryRun: 'All' }, { rv: '3', dryRun: 'All' }]);
  });

  it('gives up after five conflicts with the conflict itself', async () => {
    const { core, sent } = fakeCore(9);
    await expect(addEphemeralContainerRetrying({ core }, 'uc1', 'kube-etcd-0', () => ({ name: 'join-1', image: 'etcd' }))).rejects.toBeInstanceOf(ConflictError);
    expect(sent).toHaveLength(5);
    expect(sent.every((s) => s.dryRun === undefined)).toBe(true);
  });
});
