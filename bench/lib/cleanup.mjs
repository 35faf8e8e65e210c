// Everything the bench starts registers here, so it is undone on success, failure or Ctrl-C.
// Each entry has an async `stop` (normal path) and a synchronous `sync` (process 'exit').
const entries = [];
let running = null;

export function onCleanup(name, stop, sync = () => {}) {
  const entry = { name, stop, sync, done: false };
  entries.push(entry);
  return async () => {
    if (entry.done) return;
    entry.done = true;
    await stop();
  };
}

/** Undo everything still registered, newest first. Safe to call more than once. */
export function cleanupAll() {
  running ??= (async () => {
    for (const e of entries.slice().reverse()) {
      if (e.done) continue;
      e.done = true;
      try {
        await Promise.race([e.stop(), new Promise((r) => setTimeout(r, 10_000).unref())]);
      } catch (err) {
        process.stderr.write(`cleanup ${e.name}: ${err.message}\n`);
      }
    }
  })();
  return running;
}

function syncAll() {
  for (const e of entries.slice().reverse()) {
    if (e.done) continue;
    e.done = true;
    try {
      e.sync();
    } catch {}
  }
}

export function installHandlers() {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up…\n`);
      cleanupAll().finally(() => process.exit(130));
    });
  }
  process.on('exit', syncAll);
  process.on('uncaughtException', (err) => {
    process.stderr.write(`uncaught: ${err.stack ?? err}\n`);
    cleanupAll().finally(() => process.exit(1));
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`unhandled rejection: ${err?.stack ?? err}\n`);
    cleanupAll().finally(() => process.exit(1));
  });
}
