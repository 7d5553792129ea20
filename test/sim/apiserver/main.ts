// Entry point of the simulated API server: `node --import tsx test/sim/apiserver/main.ts --dir DIR`.
// Serves until SIGTERM. Differences from a real API server: see the top of each module here.
import { runApiServer } from './run.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--dir');
  const dir = i >= 0 ? args[i + 1] : undefined;
  if (!dir) {
    console.error('error: --dir is required; run it as `apiserver/main.ts --dir DIR`');
    process.exit(2);
  }
  const srv = await runApiServer(dir);
  console.log(`${new Date().toISOString()} apiserver listening (pid ${process.pid})`);
  const stop = () => {
    setTimeout(() => process.exit(0), 3000).unref();
    void srv.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
