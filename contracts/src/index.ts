export * from './redis-keys.js';
export * from './usage.js';
export * from './tiers.js';
export * from './incident.js';
export * from './events.js';
