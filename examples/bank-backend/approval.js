'use strict';
// Checking an authd approval token before executing a transfer.
//
// authd signs a JWS (DESIGN.md §5) when a transfer is allowed outright or
// after a successful step-up. The backend must not take authd's "approved"
// at face value: it verifies the token itself, with a standard JWT library
// and authd's public keys (the `jwks` op), against the transfer it is about
// to execute, and then redeems it once.
//
//   checks (each shown on the demo's result page):
//     signature  ES256/EdDSA over the token, key from authd's JWKS (kid)
//     iss/aud    "authd" / "bank-backend" (the [token] issuer and audience)
//     exp        not expired (authd tokens live 120 s by default)
//     typ        "authd-approval+jwt" (not some other JWT signed by the same key)
//     sub        the customer who is transferring
//     acr        urn:authd:acr:stepup when the decision required step-up
//     txn.id     the transfer id we assessed
//     txn.hash   SHA-256 of the transfer we are about to execute, recomputed here
//     redeem     authd records the jti: a token executes at most one transfer
//
// A token the backend refuses is burned: redeemed with authd without
// executing anything, so it can never approve a transfer here or at any other
// backend that shares authd's store. Whoever tampered with the transfer must
// not be left holding an approval that is still good for up to 120 s. (The
// token is never sent to the browser either: server.js keeps it.)

const crypto = require('node:crypto');
const { jwtVerify, createLocalJWKSet, errors: joseErrors } = require('jose');

const ISSUER = 'authd';
const AUDIENCE = 'bank-backend';

/**
 * txn_hash as DESIGN.md §4 defines it, base64url without padding:
 * SHA-256 over "authd-txn-v1\n" + id + "\n" + customer + "\n" + account + "\n"
 * + amount + "\n" + currency + "\n" + payee.account + "\n" + payee.bank.
 */
function txnHash(txn) {
  const input = ['authd-txn-v1', txn.id, txn.customer, txn.account, String(txn.amount), txn.currency,
    txn.payee.account, txn.payee.bank].join('\n');
  return crypto.createHash('sha256').update(input, 'utf8').digest('base64url');
}

/** Caches authd's JWKS; refetches when a token names a key we have not seen (after rotate_key). */
class AuthdKeys {
  constructor(authd, { maxAgeMs = 5 * 60 * 1000 } = {}) {
    this.authd = authd;
    this.maxAgeMs = maxAgeMs;
    this.fetchedAt = 0;
    this.keySet = null;
    this.jwks = null;
  }

  async get(force = false) {
    if (force || !this.keySet || Date.now() - this.fetchedAt > this.maxAgeMs) {
      const reply = await this.authd.call('jwks');
      this.jwks = { keys: reply.keys };
      this.keySet = createLocalJWKSet(this.jwks);
      this.fetchedAt = Date.now();
    }
    return this.keySet;
  }
}

/**
 * Burns a refused token: redeems it so that it can never be used. Returns
 * { burned, detail }; never throws. burned is false when authd would not
 * redeem it: not an authd token or a bad signature (bad_request), already
 * expired, already redeemed (conflict), or its account frozen since it was
 * issued (conflict; it stays unused until unfreeze, and only this backend
 * has it).
 */
async function burnToken(authd, token) {
  try {
    await authd.call('redeem', { token });
    return { burned: true, detail: 'redeemed without executing: it can no longer be used' };
  } catch (e) {
    return { burned: false, detail: `not burned: ${e.code || e.name}: ${e.message}` };
  }
}

/**
 * Verifies `token` for `order` (the transfer about to be executed) and, when
 * every check passes, redeems it; when a check fails, burns it (burnToken).
 * Never throws for a bad token: returns
 * { ok, checks: [{name, ok, detail}], claims, header, burn } where burn is
 * burnToken's result on a refusal (absent when the redeem check itself
 * failed: then authd has already refused the token).
 *
 * @param {object} opts
 * @param {AuthdClient} opts.authd
 * @param {AuthdKeys} opts.keys
 * @param {string} opts.token
 * @param {object} opts.order       the transaction object as it will be executed
 * @param {boolean} opts.stepUpRequired  true when authd asked for step-up on this transfer
 */
async function verifyAndRedeem({ authd, keys, token, order, stepUpRequired }) {
  const checks = [];
  const check = (name, ok, detail) => { checks.push({ name, ok: !!ok, detail }); return !!ok; };

  // 1. Signature, issuer, audience, expiry, typ: one call to jose.
  let claims = null;
  let header = null;
  const options = {
    issuer: ISSUER,
    audience: AUDIENCE,
    typ: 'authd-approval+jwt',
    algorithms: ['ES256', 'EdDSA'],
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'txn'],
    clockTolerance: 5,
  };
  try {
    let result;
    try {
      result = await jwtVerify(token, await keys.get(), options);
    } catch (e) {
      if (!(e instanceof joseErrors.JWKSNoMatchingKey)) throw e;
      result = await jwtVerify(token, await keys.get(true), options); // key rotated since we cached
    }
    claims = result.payload;
    header = result.protectedHeader;
    check('signature', true, `${header.alg}, kid ${header.kid}`);
    check('issuer_audience', true, `iss ${claims.iss}, aud ${claims.aud}`);
    check('expiry', true, `exp ${new Date(claims.exp * 1000).toISOString()} (${claims.exp - Math.floor(Date.now() / 1000)} s left)`);
  } catch (e) {
    check('signature', false, `${e.code || e.name}: ${e.message}`);
    return { ok: false, checks, claims, header, burn: await burnToken(authd, token) };
  }

  // 2. The token is for this customer and this transfer.
  let ok = check('subject', claims.sub === order.customer, `sub ${claims.sub}`);
  if (stepUpRequired)
    ok = check('acr', claims.acr === 'urn:authd:acr:stepup', `${claims.acr}, amr ${JSON.stringify(claims.amr)}`) && ok;
  ok = check('txn_id', claims.txn?.id === order.id, `token ${claims.txn?.id}, transfer ${order.id}`) && ok;
  const expected = txnHash(order);
  ok = check('txn_hash', claims.txn?.hash === expected,
    claims.txn?.hash === expected ? `${expected}` : `token ${claims.txn?.hash} ≠ transfer ${expected}`) && ok;
  if (!ok) return { ok: false, checks, claims, header, burn: await burnToken(authd, token) };

  // 3. Single use: authd records the jti; a second redeem is a conflict.
  try {
    await authd.call('redeem', { token });
    check('redeem', true, `jti ${claims.jti} redeemed`);
  } catch (e) {
    // conflict: already redeemed, or the account was frozen after the token was issued.
    check('redeem', false, e.message);
    return { ok: false, checks, claims, header };
  }
  return { ok: true, checks, claims, header };
}

module.exports = { txnHash, AuthdKeys, verifyAndRedeem, burnToken, ISSUER, AUDIENCE };
