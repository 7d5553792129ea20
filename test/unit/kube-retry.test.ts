import { describe, expect, it } from 'vitest';
import { ForbiddenError, NotFoundError, PluginError, TransientError } from '../../src/errors.js';
import { apiError, isTransient } from '../../src/kube/errors.js';
import { retrying } from '../../src/kube/retry.js';

// Which failures a restore retries is decided on error types, never on message text.

/** An error as node-fetch (client-node's transport) throws it for a refused connection. */
function fetchError(type: string, code?: string): Error {
  return Object.assign(new Error('request to https://127.0.0.1:6443/api failed, reason: connect ECONNREFUSED'), { name: 'FetchError', type, code });
}

/** An error as client-node throws it for an HTTP status. */
function apiException(code: number): Error {
  return Object.assign(new Error(`HTTP-Code: ${code}`), { code, body: JSON.stringify({ kind: 'Status', status: 'Failure', code, message: 'nope' }) });
}

describe('isTransient', () => {
  it.each([
    ['a TransientError', new TransientError('exec ended before the command reported an exit status'), true],
    ['a refused connection (FetchError system)', fetchError('system', 'ECONNREFUSED'), true],
    ['a reset socket (code on the cause)', Object.assign(new Error('socket hang up'), { cause: { code: 'ECONNRESET' } }), true],
    ['a 503 mapped by apiError', apiError(apiException(503), 'get pod'), true],
    ['a request that timed out', apiError(Object.assign(new Error('aborted'), { name: 'AbortError' }), 'get pod'), true],
    ['a 404', apiError(apiException(404), 'get pod'), false],
    ['a 403', apiError(apiException(403), 'get pod'), false],
    ['a plugin error whose text says "network"', new PluginError('timed out after 300s waiting for the network'), false],
    ['a programming error', new TypeError('cannot read properties of undefined'), false],
    ['a FetchError for invalid JSON', fetchError('invalid-json'), false],
  ])('%s: %s', (_name, err, transient) => {
    expect(isTransient(err)).toBe(transient);
  });

  it('apiError types what it maps', () => {
    expect(apiError(apiException(404), 'get pod')).toBeInstanceOf(NotFoundError);
    expect(apiError(apiException(403), 'get pod')).toBeInstanceOf(ForbiddenError);
    expect(apiError(fetchError('system', 'ECONNREFUSED'), 'get pod')).toBeInstanceOf(TransientError);
  });
});

describe('retrying', () => {
  it('retries a transient failure and returns the result', async () => {
    let calls = 0;
    const got = await retrying(async () => {
      calls += 1;
      if (calls < 3) throw new TransientError('connection reset');
      return 'ok';
    });
    expect([got, calls]).toEqual(['ok', 3]);
  });

  it('throws anything else at once', async () => {
    let calls = 0;
    const denied = new ForbiddenError('user "u" cannot create "pods/exec"');
    await expect(retrying(async () => { calls += 1; throw denied; })).rejects.toBe(denied);
    expect(calls).toBe(1);
  });
});
