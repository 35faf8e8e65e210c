/**
 * Preloaded into each plane by the supervisor (`node --import …/lifeline.js main.js`): the IPC
 * channel to the supervisor is the plane's lifeline. When it closes because the supervisor is
 * gone, even killed with SIGKILL (which it cannot pass on), the plane stops as on SIGTERM (its
 * own drain) instead of running on unsupervised and holding its ports against the next start.
 * The planes themselves know nothing of this.
 */
if (process.channel) {
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  // The channel alone must not keep a plane alive that has decided to exit.
  process.channel.unref();
}
export {};
