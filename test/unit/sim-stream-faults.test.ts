// The sim's stream fault flags (test/sim/fault.ts): what each asks for, and one clear line for bad input.
import { describe, expect, it } from 'vitest';
import { parseStreamFault } from '../sim/fault.js';

describe('sim fault stream', () => {
  it.each([
    [['--cut-after', '10'], { action: 'cut', afterBytes: 10 }],
    [['--stall', '--after', '5', '--kind', 'exec'], { action: 'stall', afterBytes: 5, kind: 'exec' }],
    [['--idle-timeout', '20', '--kind', 'exec'], { action: 'idle', afterBytes: 0, idleSeconds: 20, kind: 'exec' }],
    [['--idle-timeout', '1.5', '--pod', 'uc1/kube-etcd-0'], { action: 'idle', afterBytes: 0, idleSeconds: 1.5, pod: 'uc1/kube-etcd-0' }],
    [['--blackhole', '--kind', 'portforward'], { action: 'blackhole', afterBytes: 0, kind: 'portforward' }],
  ])('%j', (args, fault) => {
    expect(parseStreamFault(args)).toEqual(fault);
  });

  it.each([
    [[], /exactly one of --cut-after BYTES, --stall, --idle-timeout SECONDS or --blackhole/],
    [['--cut-after', '1', '--idle-timeout', '2'], /exactly one of/],
    [['--stall', '--blackhole'], /exactly one of/],
    [['--idle-timeout', '0'], /^invalid idle timeout "0"; pass a number of seconds above 0$/],
    [['--idle-timeout', 'soon'], /^invalid idle timeout "soon"/],
    [['--cut-after', '-1'], /^invalid byte count "-1"/],
  ])('refuses %j', (args, message) => {
    expect(() => parseStreamFault(args)).toThrow(message);
  });
});
