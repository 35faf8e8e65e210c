import type { Sql } from '../store/db.js';
import { createKey, createKeyForUser, type KeyInfo } from '../store/keys.js';
import { generateKey } from './key-format.js';

export interface IssuedKey {
  /** Shown to the owner once; never stored, never logged. */
  secret: string;
  key: KeyInfo;
  userCreated: boolean;
}

/** Generates a key and stores its hash for the user with this email (created when absent). */
export async function issueKey(sql: Sql, input: { email: string; name?: string; tier?: string }): Promise<IssuedKey> {
  const material = generateKey();
  const { key, userCreated } = await createKey(sql, { ...input, key: material });
  return { secret: material.secret, key, userCreated };
}

/** Generates a key for an existing user (the portal). Null when the user does not exist. */
export async function issueKeyForUser(
  sql: Sql,
  input: { userId: string; name?: string; tier?: string },
): Promise<Omit<IssuedKey, 'userCreated'> | null> {
  const material = generateKey();
  const key = await createKeyForUser(sql, { ...input, key: material });
  return key && { secret: material.secret, key };
}
