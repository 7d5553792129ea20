import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { underwayJoin } from '../../src/etcd/replace.js';
import { JOIN_CONTAINER_PREFIX, JOIN_ID_ENV } from '../../src/etcd/replace-plan.js';

type State = { running: object } | { terminated: { exitCode: number } } | { waiting: { reason: string } };

/** A member's pod with join containers (name suffix, member ID, state), oldest first. */
function pod(joins: Array<[string, string, State]>): V1Pod {
  return {
    metadata: { name: 'kube-etcd-0', namespace: 'ns' },
    spec: {
      containers: [{ name: 'etcd' }],
      ephemeralContainers: joins.map(([s, id]) => ({ name: `${JOIN_CONTAINER_PREFIX}${s}`, env: [{ name: JOIN_ID_ENV, value: id }] })),
    },
    status: { ephemeralContainerStatuses: joins.map(([s, , state]) => ({ name: `${JOIN_CONTAINER_PREFIX}${s}`, image: 'etcd', imageID: '', ready: false, restartCount: 0, state })) },
  } as V1Pod;
}

describe('underwayJoin (the join container a replace goes on with)', () => {
  it('a join that ended well with no journal naming it belongs to a finished replace: a --force replace after it starts anew', () => {
    // The CI run that found this: a replace cut off after its swap; the member came back on the
    // swapped data in the same pod, the next run only cleaned up (journal removed), and a later
    // --force replace took the finished join for its own and "replaced" the member as the same ID.
    expect(underwayJoin(pod([['a', '4ca639e2742fbb46', { terminated: { exitCode: 0 } }]]), undefined)).toBeUndefined();
    expect(underwayJoin(pod([['a', '4ca639e2742fbb46', { terminated: { exitCode: 0 } }]]), { newId: '1111' })).toBeUndefined();
  });

  it('a join that ended well is under way while the journal names its member', () => {
    const u = underwayJoin(pod([['a', '1111', { terminated: { exitCode: 1 } }], ['b', '2222', { terminated: { exitCode: 0 } }]]), { newId: '2222' });
    expect(u).toMatchObject({ name: `${JOIN_CONTAINER_PREFIX}b`, id: '2222', state: { kind: 'terminated', exitCode: 0 } });
  });

  it('a running or starting join is under way, journal or not; a failed or stuck one is not', () => {
    expect(underwayJoin(pod([['a', '2222', { running: {} }]]), undefined)?.id).toBe('2222');
    expect(underwayJoin(pod([['a', '2222', { waiting: { reason: 'ContainerCreating' } }]]), undefined)?.id).toBe('2222');
    expect(underwayJoin(pod([['a', '2222', { waiting: { reason: 'ErrImagePull' } }]]), { newId: '2222' })).toBeUndefined();
    expect(underwayJoin(pod([['a', '2222', { terminated: { exitCode: 1 } }]]), { newId: '2222' })).toBeUndefined();
    expect(underwayJoin(pod([]), { newId: '2222' })).toBeUndefined();
  });
});
