// Moved to contracts/ so the control plane (MCP tokens) refuses weak secrets by the same rules.
export { strongSecret, weakSecretMessage, weakSecretReason } from '@fluxgate/contracts';
