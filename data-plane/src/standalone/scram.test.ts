import { describe, expect, it } from 'vitest';
import { ScramExchange, scramVerifier } from './scram.js';

// RFC 7677 §3: user "user", password "pencil".
const SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
const CLIENT_FIRST = 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO';
const SERVER_NONCE = '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
const CLIENT_FINAL = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';

describe('SCRAM-SHA-256 server', () => {
  it('reproduces the RFC 7677 example exchange', () => {
    const x = new ScramExchange(scramVerifier('pencil', SALT, 4096), () => SERVER_NONCE);
    expect(x.first(CLIENT_FIRST)).toEqual({
      ok: true,
      reply: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    });
    expect(x.final(CLIENT_FINAL)).toEqual({ ok: true, reply: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=' });
  });

  it('refuses the same proof for another password, another nonce, or channel binding it cannot do', () => {
    const wrong = new ScramExchange(scramVerifier('pencil2', SALT, 4096), () => SERVER_NONCE);
    wrong.first(CLIENT_FIRST);
    expect(wrong.final(CLIENT_FINAL)).toEqual({ ok: false, reason: 'password authentication failed' });
    const replay = new ScramExchange(scramVerifier('pencil', SALT, 4096));
    replay.first(CLIENT_FIRST);
    expect(replay.final(CLIENT_FINAL)).toMatchObject({ ok: false, reason: 'SCRAM channel binding or nonce mismatch' });
    expect(new ScramExchange(scramVerifier('pencil')).first('p=tls-server-end-point,,n=user,r=abc')).toMatchObject({ ok: false });
    const early = new ScramExchange(scramVerifier('pencil'));
    expect(early.final(CLIENT_FINAL)).toMatchObject({ ok: false });
  });
});
