// The pure parts of `kubectl etcd schedule`: names, the volume's default size, --max-age and the
// age check, and the CronJob's pod (no API token, the certificate files readable by its user only).
import { describe, expect, it } from 'vitest';
import { CheckFailedError, UsageError } from '../../src/errors.js';
import { checkScheduleName, defaultClaimBytes } from '../../src/schedule/create.js';
import { cronJobManifest, type ScheduleSpec } from '../../src/schedule/manifests.js';
import { checkAge, parseMaxAge, type ScheduleState } from '../../src/schedule/ops.js';

const GiB = 2 ** 30;

describe('schedule', () => {
  it('names: a CronJob name of at most 52 DNS-label characters', () => {
    expect(() => checkScheduleName('kube-etcd-backup')).not.toThrow();
    expect(() => checkScheduleName('a'.repeat(52))).not.toThrow();
    expect(() => checkScheduleName('a'.repeat(53))).toThrow(UsageError);
    expect(() => checkScheduleName('Bad_Name')).toThrow(/not a schedule name/);
    expect(() => checkScheduleName('-x')).toThrow(UsageError);
  });

  it('the volume holds keep+1 copies of the largest db and a quarter more, at least 1Gi', () => {
    expect(defaultClaimBytes(7, 1000)).toBe(GiB);
    expect(defaultClaimBytes(3, 2 * GiB)).toBe(10 * GiB);
  });

  it('--max-age takes Go durations and whole days; anything else is a usage error', () => {
    expect(parseMaxAge('90m')).toBe(90 * 60_000);
    expect(parseMaxAge('1h30m')).toBe(90 * 60_000);
    expect(parseMaxAge('2d')).toBe(2 * 86_400_000);
    for (const bad of ['', '1', '1w', '-1h', '0s', '1h ']) expect(() => parseMaxAge(bad), bad).toThrow(UsageError);
  });

  it('the age check fails (exit 3) with the last failure when the newest good backup is too old or missing', () => {
    const base: ScheduleState = { name: 's', namespace: 'n', schedule: '0 * * * *', suspended: false, active: 0 };
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(() => checkAge({ ...base, lastSuccess: '2026-12-06T11:30:00Z' }, 3_600_000, now)).not.toThrow();
    const old = { ...base, lastSuccess: '2026-12-06T10:00:00Z', lastFailure: { job: 's-1', at: '2026-12-06T11:00:00Z', reason: 'no etcd member answered: x (exit code 10)' } };
    expect(() => checkAge(old, 3_600_000, now)).toThrow(CheckFailedError);
    expect(() => checkAge(old, 3_600_000, now)).toThrow(/from 2026-12-06T10:00:00Z, 2h00m ago \(more than 1h00m\); last failure \(2026-12-06T11:00:00Z\): no etcd member answered/);
    try { checkAge(base, 3_600_000, now); } catch (err) { expect((err as CheckFailedError).exitCode).toBe(3); expect((err as Error).message).toMatch(/no good backup yet/); }
    expect(() => checkAge(base, 3_600_000, now)).toThrow(CheckFailedError);
  });

  it('the pod mounts no API token, and the certificate files only for its user', () => {
    const spec: ScheduleSpec = {
      name: 's', namespace: 'n', every: '0 * * * *', timeZone: 'Etc/UTC', image: 'etcd:3.5', script: 'exit 0',
      tls: { ca: { secretName: 'c', key: 'ca.crt' }, cert: { secretName: 'c', key: 'tls.crt' }, key: { secretName: 'k', key: 'tls.key' } },
      volume: { claimName: 'v' }, deadlineSeconds: 3600, workload: 'etcd', keep: 3,
    };
    const pod = (s: ScheduleSpec) => (cronJobManifest(s).spec.jobTemplate.spec.template.spec as unknown) as {
      automountServiceAccountToken: boolean; volumes: Array<{ name: string; projected?: { defaultMode: number; sources: unknown[] } }>;
    };
    expect(pod(spec).automountServiceAccountToken).toBe(false);
    const tlsVolume = (s: ScheduleSpec) => pod(s).volumes.find((v) => v.projected)!.projected!;
    expect(tlsVolume(spec).defaultMode).toBe(0o400);
    expect(tlsVolume(spec).sources).toHaveLength(3);
    expect(tlsVolume({ ...spec, securityContext: { runAsUser: 1001 }, podSecurityContext: { fsGroup: 1001 } }).defaultMode).toBe(0o440);
    const m = cronJobManifest(spec);
    expect(m.spec).toMatchObject({ concurrencyPolicy: 'Forbid', jobTemplate: { spec: { backoffLimit: 0, activeDeadlineSeconds: 3600 } } });
    expect(m.metadata.annotations).toEqual({ 'kubectl-etcd/workload': 'etcd', 'kubectl-etcd/volume': 'v', 'kubectl-etcd/keep': '3' });
  });

  it('the containers take the members\' resources (a quota that wants limits admits them), the sidecar too', () => {
    const resources = { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } };
    const spec: ScheduleSpec = {
      name: 's', namespace: 'n', every: '0 * * * *', timeZone: 'Etc/UTC', image: 'busybox', script: 'exit 0', tools: { image: 'etcd:3.5' },
      volume: { claimName: 'v' }, deadlineSeconds: 3600, workload: 'etcd', keep: 3, resources,
    };
    const pod = cronJobManifest(spec).spec.jobTemplate.spec.template.spec as unknown as { containers: Array<{ resources?: unknown }>; initContainers: Array<{ resources?: unknown }> };
    expect(pod.containers[0]!.resources).toEqual(resources);
    expect(pod.initContainers[0]!.resources).toEqual(resources);
    expect((cronJobManifest({ ...spec, resources: undefined }).spec.jobTemplate.spec.template.spec as unknown as { containers: Array<{ resources?: unknown }> }).containers[0]!.resources).toBeUndefined();
  });
});
