/** Bad command line: print the message and the usage, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `usage: fluxgate <command> [options]

  keys create --email <email> [--name <name>] [--tier <tier>] [--json]
                              create a key (and the user, if new); prints the secret once
  keys list [--email <email>] [--json]
                              list keys (never secrets)
  keys revoke <key id>        revoke for good, and tell every replica
  keys suspend <key id>       suspend (reversible), and tell every replica
  keys activate <key id>      lift a suspension
  users promote --email <email> --role user|operator|admin
                              set an account's role (operators see incidents)
  db migrate [--init-sql <path>]
                              apply init.sql (idempotent)
  tiers list [--json]         every tier's limits (penalty levels included)
  tiers set <id> [--requests-per-window n] [--tokens-per-window n] [--window-seconds n]
                 [--concurrent-streams n] [--burst n]
                              create a tier (all five limits) or change the limits given;
                              every replica reloads at once
  penalty set <key id> --level penalty-1|2|3 [--duration 900|90m|24h] [--reason <text>]
                 [--force] [--dry-run] [--json]
                              throttle a key; past MCP_MAX_PENALTY (86400 s) only with --force
  penalty lift <key id> [--reason <text>] [--dry-run] [--json]
                              pardon; a guard penalty also gives the key grace from the guard
  penalty list [--json]       every live penalty
  allowlist add key:<id>|account:<user id or email>|cidr:<ip or cidr> [--reason <text>]
                 [--expires-in 7d] [--json]
                              never penalised by the guard (shadow incidents instead)
  allowlist list [--json]
  allowlist remove <entry id>|<kind>:<value> [--reason <text>] [--json]
  detectors list [--json]     each detector's run-time mode (or "configured")
  detectors mode <detector> enforce|shadow|clear [--reason <text>] [--json]
                              change a detector's mode at run time (the guard's next poll)

options:
  --database-url <url>        default: $DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres
  --redis-url <url>           default: $REDIS_URL, else redis://127.0.0.1:6379
  -h, --help

--dry-run answers what would change and writes nothing. Every change made by penalty set/lift,
allowlist add/remove and detectors mode is audited and recorded as an incident of source
operator, as cli:<$USER> with the --reason given. MCP_MAX_PENALTY, GUARD_PARDON_GRACE_SECONDS
and INCIDENT_CAPACITY are read from the environment (defaults 86400, 1800, 10000).

exit codes: 0 ok, 1 failure, 2 usage, 3 not found or refused, 4 changed but replicas not notified`;
