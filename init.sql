-- Fluxgate schema (PostgreSQL 15+ and PGlite).
--
-- Idempotent: applied at every boot by the data plane (inside one transaction that holds an
-- advisory lock, see data-plane/src/store/migrate.ts) and by the Postgres container's
-- docker-entrypoint-initdb.d on first start. Applying it twice changes nothing. So it must not
-- contain BEGIN/COMMIT or psql meta-commands, and it uses built-ins only (gen_random_uuid() is
-- core since PostgreSQL 13; no extensions, so PGlite runs it unchanged).

-- Rate tiers. Penalty levels are tiers too (is_penalty), applied by the control plane as a
-- Redis override; users and keys are never given a penalty tier directly (checked by the app).
--
-- What a row means (one definition for the row, the x-ratelimit-* headers and what is admitted;
-- README "Rate limits"): each limit is a bucket refilled continuously at
-- per_window / window_seconds.
--   burst               the request bucket's capacity: the most requests admitted at once, and
--                       exactly what x-ratelimit-limit-requests reports. At least 1.
--   requests_per_window the sustained request rate: over any T seconds at most
--                       burst + requests_per_window * T / window_seconds requests.
--   tokens_per_window   the token bucket's capacity (x-ratelimit-limit-tokens) and, per
--                       window_seconds, its refill.
--   concurrent_streams  open requests at once, per replica.
-- Each limit applies per API key (under its effective tier: a live penalty, else the key's own
-- tier) and, summed over its keys, per account (users.id, under the key's own tier: the key's
-- override, else the owner's tier; never a penalty). concurrent_streams too: per key, and per
-- account across its keys.
CREATE TABLE IF NOT EXISTS tiers (
  id                  text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  requests_per_window integer NOT NULL CHECK (requests_per_window > 0),
  tokens_per_window   bigint  NOT NULL CHECK (tokens_per_window > 0),
  window_seconds      integer NOT NULL CHECK (window_seconds > 0),
  concurrent_streams  integer NOT NULL CHECK (concurrent_streams > 0),
  burst               integer NOT NULL CHECK (burst >= 1),
  is_penalty          boolean NOT NULL DEFAULT false,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
-- Until issue 12, burst meant nginx's "extra requests above one" (burst 0 = one at a time, and
-- burst + 1 at once). Rows from then say 0 where they meant one at a time: 1 now admits exactly
-- what they admitted before. Re-stating the check each boot keeps this file idempotent.
UPDATE tiers SET burst = 1 WHERE burst < 1;
ALTER TABLE tiers ALTER COLUMN burst DROP DEFAULT;
ALTER TABLE tiers DROP CONSTRAINT IF EXISTS tiers_burst_check;
ALTER TABLE tiers ADD CONSTRAINT tiers_burst_check CHECK (burst >= 1);

-- Seeded with contracts/src/tiers.ts DEFAULT_TIERS (a test compares them). DO NOTHING: an
-- operator's later edit of a tier's limits survives reboots.
INSERT INTO tiers (id, requests_per_window, tokens_per_window, window_seconds, concurrent_streams, burst, is_penalty) VALUES
  ('free',             60,     100000,   60,   4,   10, false),
  ('pro',             600,    2000000,   60,  32,  100, false),
  ('enterprise',     6000,   20000000,   60, 256, 1000, false),
  ('penalty-1',        10,      10000,   60,   2,    1, true),
  ('penalty-2',         2,       2000,   60,   1,    1, true),
  ('penalty-3',         1,          1, 3600,   1,    1, true)
ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Stored as entered (trimmed); uniqueness and lookups are case-insensitive via lower(email).
  email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320 AND position('@' IN email) > 1),
  -- Argon2id PHC string. NULL = no password yet (user created by the CLI): cannot log in.
  password_hash text,
  tier          text NOT NULL DEFAULT 'free' REFERENCES tiers (id) ON UPDATE CASCADE,
  role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'operator', 'admin')),
  -- Set when an operator disables the account: logins and the account's keys stop working.
  disabled_at   timestamptz,
  last_login_at timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email));
CREATE INDEX IF NOT EXISTS users_tier_idx ON users (tier);

CREATE TABLE IF NOT EXISTS api_keys (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name           text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
  -- The key's recognisable start (e.g. fgk_Ab3dE9xQ), safe to show in lists and logs.
  display_prefix text NOT NULL CHECK (length(display_prefix) BETWEEN 4 AND 32),
  -- Hex SHA-256 of the whole secret; the secret itself is never stored.
  key_hash       text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked', 'suspended')),
  -- Per-key tier override; NULL = the owner's tier.
  tier           text REFERENCES tiers (id) ON UPDATE CASCADE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  last_used_at   timestamptz,
  revoked_at     timestamptz,
  CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
  CONSTRAINT api_keys_revoked_at_check CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
-- The portal lists one user's keys, newest first.
CREATE INDEX IF NOT EXISTS api_keys_user_created_idx ON api_keys (user_id, created_at DESC);

-- Who did what to which account or key (CLI, portal, operators). Append-only.
CREATE TABLE IF NOT EXISTS audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  -- 'cli', 'portal:<user id>', 'operator:<user id>', 'guard'.
  actor      text NOT NULL,
  action     text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
  user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
  key_id     uuid REFERENCES api_keys (id) ON DELETE SET NULL,
  detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_user_at_idx ON audit_log (user_id, at DESC);
CREATE INDEX IF NOT EXISTS audit_log_key_at_idx ON audit_log (key_id, at DESC);

-- updated_at follows every UPDATE, whoever writes the row.
CREATE OR REPLACE FUNCTION fluxgate_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER tiers_touch_updated_at BEFORE UPDATE ON tiers
  FOR EACH ROW EXECUTE FUNCTION fluxgate_touch_updated_at();
CREATE OR REPLACE TRIGGER users_touch_updated_at BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION fluxgate_touch_updated_at();
-- Not on last_used_at alone: that column is batch-updated all day and is not an edit.
CREATE OR REPLACE TRIGGER api_keys_touch_updated_at BEFORE UPDATE OF name, status, tier, revoked_at ON api_keys
  FOR EACH ROW EXECUTE FUNCTION fluxgate_touch_updated_at();

-- Control plane: the incident archive. The Redis stream is a ring buffer (INCIDENT_CAPACITY);
-- this table keeps every incident for good. Written only by the control plane (its one Postgres
-- write), upserted by id as the episode goes on; `record` is the full contracts/ Incident JSON.
-- No foreign key on key_id: an incident outlives the key it names.
CREATE TABLE IF NOT EXISTS incident_archive (
  id             text PRIMARY KEY CHECK (id ~ '^inc_[0-9a-z]{6,12}_[0-9a-f]{8}$'),
  at             timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  source         text NOT NULL CHECK (source IN ('guard', 'operator')),
  key_id         text,
  key_prefix     text,
  owner_email    text,
  client_ip      text,
  detector       text,
  mode           text NOT NULL CHECK (mode IN ('enforce', 'shadow')),
  action         text NOT NULL,
  level          text,
  status         text NOT NULL,
  expires_at     timestamptz,
  summary        text,
  summary_source text CHECK (summary_source IN ('model', 'template')),
  record         jsonb NOT NULL
);
-- Issue 18: an operator's action (source 'operator') names the detector it answers, or none (an
-- allowlist change); the guard's incidents always name one. On a database made before this, the
-- column loses its NOT NULL here (a no-op when it has none), so init.sql stays idempotent.
ALTER TABLE incident_archive ALTER COLUMN detector DROP NOT NULL;
ALTER TABLE incident_archive DROP CONSTRAINT IF EXISTS incident_archive_detector_check;
ALTER TABLE incident_archive ADD CONSTRAINT incident_archive_detector_check CHECK (detector IS NOT NULL OR source = 'operator');
CREATE INDEX IF NOT EXISTS incident_archive_at_idx ON incident_archive (at DESC);
CREATE INDEX IF NOT EXISTS incident_archive_key_at_idx ON incident_archive (key_id, at DESC);
CREATE INDEX IF NOT EXISTS incident_archive_detector_at_idx ON incident_archive (detector, at DESC);

-- Control plane: what the guard never penalises (issue 18). kind 'key' = an API key id,
-- 'account' = a user id or email, 'cidr' = client addresses (an IP or a CIDR). The guard re-reads
-- it every poll; a match still records what it would have done, as a shadow incident.
CREATE TABLE IF NOT EXISTS guard_allowlist (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind       text NOT NULL CHECK (kind IN ('key', 'account', 'cidr')),
  value      text NOT NULL CHECK (length(value) BETWEEN 1 AND 320),
  reason     text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
  created_by text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  CONSTRAINT guard_allowlist_kind_value_key UNIQUE (kind, value)
);
