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

options:
  --database-url <url>        default: $DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres
  --redis-url <url>           default: $REDIS_URL, else redis://127.0.0.1:6379
  -h, --help

exit codes: 0 ok, 1 failure, 2 usage, 3 not found or refused, 4 changed but replicas not notified`;
