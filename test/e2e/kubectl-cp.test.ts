/**
 * Real `kubectl cp` (1.32 and 1.30) into and out of a pod of the local test cluster: a 100 MB
 * file of random bytes goes in, the pod's own sha256sum agrees, it comes back out byte for byte.
 * This is the manual runbook's copy step, so the simulator's exec streams must carry it intact.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from './backup-support.js';
import { KUBECTLS, ok, requireCommand, requireRoot, startCluster, type SimCluster } from '../sim/harness.js';

const SIZE = 100 * 1024 * 1024;
const POD = `
apiVersion: v1
kind: Namespace
metadata: {name: cp}
---
apiVersion: v1
kind: Pod
metadata: {name: box, namespace: cp}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, '100000']
`;

let c: SimCluster;
let work: string;
let source: string;
let sourceSha: string;

beforeAll(async () => {
  requireRoot();
  for (const [, bin] of KUBECTLS) requireCommand(bin, 'install kubectl 1.30 and 1.32 (google-cloud-sdk kubectl packages)');
  work = mkdtempSync(join(tmpdir(), 'kubectl-cp-e2e-'));
  source = join(work, 'big.bin');
  // Written in 1 MiB pieces so the test itself never holds 100 MB.
  writeFileSync(source, '');
  const h = createHash('sha256');
  for (let i = 0; i < SIZE / (1024 * 1024); i++) {
    const chunk = randomBytes(1024 * 1024);
    h.update(chunk);
    writeFileSync(source, chunk, { flag: 'a' });
  }
  sourceSha = h.digest('hex');
  c = await startCluster();
  ok(await c.kubectl(['create', '-f', '-'], { input: POD }));
  ok(await c.kubectl(['-n', 'cp', 'wait', '--for=condition=Ready', 'pod/box', '--timeout=120s'], { timeoutMs: 150_000 }));
}, 300_000);

afterAll(async () => {
  await c?.down();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

describe.each(KUBECTLS)('kubectl %s cp', (version, bin) => {
  const inPod = `/tmp/big-${version}.bin`;
  const back = () => join(work, `back-${version}.bin`);

  it('copies a 100 MB file in; the pod computes the same sha256 and size', async () => {
    ok(await c.kubectl(['cp', source, `cp/box:${inPod}`, '-c', 'main'], { bin, timeoutMs: 300_000 }));
    const out = ok(await c.kubectl(['-n', 'cp', 'exec', 'box', '--', 'sh', '-c', 'sha256sum "$1" && wc -c < "$1"', 'sh', inPod], { bin }));
    const [line, size] = out.trim().split('\n');
    expect(line!.split(/\s+/)[0]).toBe(sourceSha);
    expect(Number(size)).toBe(SIZE);
  }, 360_000);

  it('copies it back out byte for byte', async () => {
    ok(await c.kubectl(['cp', `cp/box:${inPod}`, back(), '-c', 'main'], { bin, timeoutMs: 300_000 }));
    expect(statSync(back()).size).toBe(SIZE);
    expect(await sha256File(back())).toBe(sourceSha);
  }, 360_000);
});
