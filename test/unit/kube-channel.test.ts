import { describe, expect, it } from 'vitest';
import { Channel, decodeFrame, encodeClose, encodeFrame, execOutcome } from '../../src/kube/channel.js';
import { isTransient, KubeletUnreachableError, kubeletUnreachable, parseForbidden, parseStatus, statusError } from '../../src/kube/errors.js';
import { ForbiddenError, NotFoundError, formatError } from '../../src/errors.js';

describe('channel frames', () => {
  it('prefixes the channel byte and decodes it back without copying', () => {
    const frame = encodeFrame(Channel.stdin, Buffer.from('abc'));
    expect([...frame]).toEqual([0, 97, 98, 99]);
    const decoded = decodeFrame(Buffer.from([2, 120, 121]))!;
    expect(decoded.channel).toBe(Channel.stderr);
    expect(decoded.data.toString()).toBe('xy');
    expect(decodeFrame(Buffer.alloc(0))).toBeUndefined();
  });

  it('encodes the v5 CLOSE frame for stdin as 255 0', () => {
    expect([...encodeClose(Channel.stdin)]).toEqual([255, 0]);
  });
});

describe('execOutcome', () => {
  it.each([
    [{ metadata: {}, status: 'Success' }, { exitCode: 0 }],
    [
      {
        status: 'Failure',
        reason: 'NonZeroExitCode',
        message: 'command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7',
        details: { causes: [{ reason: 'ExitCode', message: '7' }] },
      },
      { exitCode: 7 },
    ],
    [
      { status: 'Failure', reason: 'InternalError', message: 'exec: "sh": executable file not found in $PATH' },
      { failure: 'exec: "sh": executable file not found in $PATH', reason: 'InternalError' },
    ],
  ])('%j → %j', (status, outcome) => {
    expect(execOutcome(status)).toEqual(outcome);
  });
});

describe('Status parsing and errors', () => {
  const forbidden = {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'pods "kube-etcd-0" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "uc1"',
    reason: 'Forbidden',
    details: { name: 'kube-etcd-0', kind: 'pods' },
    code: 403,
  };

  it('parses a Status from JSON text or a Buffer and ignores other bodies', () => {
    expect(parseStatus(JSON.stringify(forbidden))?.reason).toBe('Forbidden');
    expect(parseStatus(Buffer.from(JSON.stringify(forbidden)))?.code).toBe(403);
    expect(parseStatus('<html>')).toBeUndefined();
    expect(parseStatus({ kind: 'Pod' })).toBeUndefined();
  });

  it('reads who may not do what from a Forbidden message', () => {
    expect(parseForbidden(forbidden.message)).toEqual({ user: 'bob', verb: 'create', resource: 'pods/exec', group: '', namespace: 'uc1' });
  });

  it('turns a 403 into one line naming the missing permission', () => {
    const err = statusError(403, forbidden, 'exec in pod "uc1/kube-etcd-0"');
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(formatError(err)).toBe(
      'error: user "bob" cannot create "pods/exec" in namespace "uc1"; ask a cluster admin for pods/exec permission',
    );
  });

  it('names the API group and cluster scope when the message has them', () => {
    const msg = 'statefulsets.apps "kube-etcd" is forbidden: User "eve" cannot patch resource "statefulsets/scale" in API group "apps" in the namespace "uc1"';
    expect(formatError(statusError(403, { message: msg }, 'scale'))).toBe(
      'error: user "eve" cannot patch "statefulsets/scale.apps" in namespace "uc1"; ask a cluster admin for statefulsets/scale.apps permission',
    );
    const cluster = 'nodes is forbidden: User "eve" cannot list resource "nodes" in API group "" at the cluster scope';
    expect(formatError(statusError(403, { message: cluster }, 'list nodes'))).toContain('cannot list "nodes" at cluster scope');
  });

  it('a kubelet the API server cannot dial is KubeletUnreachableError (transient), whether told before an upgrade or on a v5 exec\'s status channel', () => {
    const before = statusError(500, { message: 'error dialing backend: dial tcp 10.0.0.7:10250: connect: connection refused' }, 'exec in pod "kube-system/x"');
    expect(before).toBeInstanceOf(KubeletUnreachableError);
    expect(isTransient(before)).toBe(true);
    expect(before.message).toBe('exec in pod "kube-system/x" failed: the kubelet of the pod\'s node does not answer (dial tcp 10.0.0.7:10250: connect: connection refused)');
    const logs = statusError(500, { message: 'Get "https://10.0.0.7:10250/containerLogs/kube-system/x/etcd": dial tcp 10.0.0.7:10250: connect: connection refused' }, 'logs');
    expect(logs).toBeInstanceOf(KubeletUnreachableError);
    const v5 = kubeletUnreachable(500, 'Internal error occurred: error sending request: Post "https://10.0.0.7:10250/exec/kube-system/x/etcd?command=true&output=1": dial tcp 10.0.0.7:10250: connect: connection refused', 'exec');
    expect(v5?.message).toBe('exec failed: the kubelet of the pod\'s node does not answer (dial tcp 10.0.0.7:10250: connect: connection refused)');
    // Other 500s stay what they were.
    expect(statusError(500, { message: 'etcdserver: request timed out' }, 'get')).not.toBeInstanceOf(KubeletUnreachableError);
    expect(kubeletUnreachable(500, 'error executing command in container: OCI runtime exec failed', 'exec')).toBeUndefined();
  });

  it('turns a 404 into a NotFoundError keeping the server text', () => {
    const err = statusError(404, { message: 'pods "nope" not found', reason: 'NotFound' }, 'exec');
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe('pods "nope" not found');
  });
});
