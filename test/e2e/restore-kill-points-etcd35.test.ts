// The representative kill points on etcd 3.5 (`single:etcd=3.5`: the restore runs etcdutl with a
// bumped revision): SIGKILL of `kubectl etcd restore` after the first utility pod, after the swap
// and after etcd is back, then --resume to the verified end and, from new restores, --abort back
// to the pre-restore keys (kill-points.ts says how), for the default order: the order does not
// change the tool, and an --in-place restore on 3.5 runs end to end in restore-cold-start.test.ts.
// Every step, both orders, on 3.4: restore-kill-points.test.ts.
import { killPointTests } from './kill-points.js';

killPointTests({
  name: 'restore-kill-etcd35',
  fixtures: ['single:etcd=3.5'],
  resumeAfter: { scaled: 'key' },
  abortAfter: { scaled: 'key' },
  tool: { binary: 'etcdutl', bumpRevision: 1_000_000_000 },
});
