'use strict';
// Example internet-banking backend using authd for transfer step-up.
//
//   AUTHD_SOCKET=/tmp/authd.sock PORT=8080 node server.js
//   open http://localhost:8080   (demo logins: doanhnghiep / demo, canhan / demo)
//
// The flow an integrator copies (see docs/integration.md):
//
//   1. POST /api/transfers         the backend builds the transaction object from
//                                  the form and its own data (customer, account,
//                                  risk flag, client address) and calls `assess`.
//                                  It keeps the transfer server-side.
//        allow   -> verify the token, redeem it, execute
//        step_up -> send the challenge to the page (WebAuthn options / face)
//        deny    -> refuse
//   2. POST /api/transfers/:id/verify
//                                  the page sends the security-key assertion or
//                                  camera frames; the backend calls `verify`.
//        approved -> verify the token against the transfer it is about to
//                    execute (txn.hash recomputed here), redeem, execute;
//                    a token that fails a check is burned (redeemed without
//                    executing) and the transfer refused
//      The token itself never goes to the browser.
//
// Enrollment (/enroll): `enroll_fido2_begin`/`enroll_fido2_finish` wrap
// navigator.credentials.create; `enroll_face` takes camera frames. A real bank
// lets a customer enroll only after strong authentication (branch, OTP, an
// already enrolled key); this demo lets a logged-in customer enroll directly.
//
// Demo shortcuts, not for production: users, balances, sessions and history
// live in memory; plain HTTP on localhost (WebAuthn allows it there only).

const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { AuthdClient, AuthdError } = require('./authd-client');
const { AuthdKeys, txnHash, verifyAndRedeem } = require('./approval');
const views = require('./views');

const AUTHD_SOCKET = process.env.AUTHD_SOCKET || '/run/authd/authd.sock';
const PORT = Number(process.env.PORT || 8080);
const HOST = process.env.HOST || '127.0.0.1';

const authd = new AuthdClient(AUTHD_SOCKET);
const keys = new AuthdKeys(authd);

// ---------------------------------------------------------------------------
// Demo data: two customers of "Ngân hàng Sông Hồng".

const CUSTOMERS = {
  doanhnghiep: {
    password: 'demo',
    customer: 'C-BIZ-0042',
    name: 'Công ty TNHH Thương mại Sông Hồng',
    contact: 'Trần Thị Mai (kế toán trưởng)',
    account: '0123456789',
    accountType: 'business',
    accountOpened: Date.UTC(2019, 2, 1) / 1000,
    balance: 4_850_000_000,
    // Known payees. A transfer to anyone else is flagged by the bank's own
    // fraud rules (risk_flag), which for a business account means step-up.
    payees: [{ account: '9876543210', bank: 'VCB', name: 'Công ty CP Vật tư Hà Nội' }],
  },
  canhan: {
    password: 'demo',
    customer: 'C-77',
    name: 'Nguyễn Thị Lan',
    contact: 'Nguyễn Thị Lan',
    account: '0011223344',
    accountType: 'personal',
    accountOpened: Date.UTC(2015, 5, 1) / 1000,
    balance: 86_400_000,
    payees: [{ account: '5556667778', bank: 'TCB', name: 'Nguyễn Văn Bình' }],
  },
};

const BANKS = {
  VCB: 'Vietcombank', TCB: 'Techcombank', BIDV: 'BIDV', CTG: 'VietinBank',
  ACB: 'ACB', MBB: 'MB Bank', VPB: 'VPBank', TPB: 'TPBank',
};

// Per-customer state the backend keeps (enrollment status, executed transfers).
const profiles = new Map();
function profile(user) {
  if (!profiles.has(user.customer))
    profiles.set(user.customer, { keys: 0, face: false, history: [], balance: user.balance });
  return profiles.get(user.customer);
}

// ---------------------------------------------------------------------------
// Sessions: a random cookie naming an in-memory record.

const sessions = new Map();
const SESSION_TTL_MS = 30 * 60 * 1000;

function getSession(req) {
  const m = /(?:^|;\s*)sid=([A-Za-z0-9_-]+)/.exec(req.headers.cookie || '');
  const s = m && sessions.get(m[1]);
  if (!s || Date.now() - s.seen > SESSION_TTL_MS) return null;
  s.seen = Date.now();
  return s;
}

function newSession(res, username) {
  const sid = crypto.randomBytes(18).toString('base64url');
  const s = {
    sid, username, user: CUSTOMERS[username], seen: Date.now(),
    // The browser's device id as the bank's device binding would report it.
    deviceId: 'web-' + crypto.randomBytes(6).toString('hex'),
    pending: new Map(), // transfer id -> { txn, challenge, reasons, created }
  };
  sessions.set(sid, s);
  res.setHeader('Set-Cookie', `sid=${sid}; HttpOnly; SameSite=Strict; Path=/`);
  return s;
}

// ---------------------------------------------------------------------------
// Building the transaction object authd assesses (DESIGN.md §4).

function clientAddress(req) {
  // Behind a reverse proxy, take the address your proxy reports instead.
  const a = req.socket.remoteAddress || '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function newTransferId() {
  return 'T-' + new Date().toISOString().slice(0, 10).replace(/-/g, '') + '-' +
    crypto.randomBytes(5).toString('hex').toUpperCase();
}

function buildTxn(session, req, form) {
  const u = session.user;
  const payee = { account: form.payee_account, bank: form.payee_bank, name: form.payee_name || undefined };
  const known = u.payees.some((p) => p.account === payee.account && p.bank === payee.bank);
  return {
    id: newTransferId(),
    customer: u.customer,
    account: u.account,
    account_type: u.accountType,
    account_opened: u.accountOpened,
    amount: form.amount,
    currency: 'VND',
    payee,
    channel: 'internet_banking',
    src_ip: clientAddress(req),
    device_id: session.deviceId,
    risk_flag: !known, // the bank's own fraud signal: a payee never paid before
    ts: Math.floor(Date.now() / 1000),
  };
}

function parseTransferForm(body, user) {
  const amount = Number(String(body.amount ?? '').replace(/[^0-9]/g, ''));
  const payee_account = String(body.payee_account ?? '').replace(/\s/g, '');
  const payee_bank = String(body.payee_bank ?? '');
  const payee_name = String(body.payee_name ?? '').trim().slice(0, 120);
  if (!Number.isSafeInteger(amount) || amount < 1000) throw new HttpError(400, 'Số tiền không hợp lệ / Invalid amount');
  if (!/^[0-9]{6,19}$/.test(payee_account)) throw new HttpError(400, 'Số tài khoản không hợp lệ / Invalid account number');
  if (!BANKS[payee_bank]) throw new HttpError(400, 'Ngân hàng không hợp lệ / Unknown bank');
  if (payee_account === user.account) throw new HttpError(400, 'Không thể chuyển cho chính tài khoản này / Same account');
  return { amount, payee_account, payee_bank, payee_name };
}

// What the page needs to run the step-up: never the whole authd reply.
function stepUpForPage(id, p) {
  const ch = p.challenge;
  const prof = profile(p.user);
  return {
    result: 'step_up',
    transfer_id: id,
    transfer: publicTransfer(p.txn),
    reasons: p.reasons,
    expires_at: ch.expires_at,
    methods: ch.methods,
    enrolled: { fido2: (ch.fido2?.allow_credentials || []).length > 0, face: prof.face },
    fido2: ch.fido2,
    face: ch.face,
  };
}

function publicTransfer(t) {
  return { id: t.id, account: t.account, amount: t.amount, currency: t.currency, payee: t.payee,
    bank_name: BANKS[t.payee.bank], txn_hash: txnHash(t) };
}

// ---------------------------------------------------------------------------
// Executing: only after the token checks pass.
//
// The token stays here: the page gets the checks and the (non-secret) claims,
// never the token itself. A refused token is burned by verifyAndRedeem, so a
// tampered request leaves nobody holding a usable approval.

async function execute(session, order, token, stepUpRequired) {
  const verification = await verifyAndRedeem({ authd, keys, token, order, stepUpRequired });
  if (verification.ok) {
    const prof = profile(session.user);
    prof.balance -= order.amount;
    prof.history.unshift({ id: order.id, amount: order.amount, payee: order.payee, at: Date.now(),
      method: (verification.claims.amr || []).join('+') || 'none' });
    session.pending.delete(order.id);
  } else {
    const failed = verification.checks.filter((c) => !c.ok).map((c) => c.name).join(',');
    console.warn(`transfer ${order.id} refused (${failed}); token jti ${verification.claims?.jti ?? '?'} ` +
      (verification.burn ? verification.burn.detail : 'was refused by redeem'));
  }
  const out = {
    result: verification.ok ? 'executed' : 'refused',
    transfer: publicTransfer(order),
    checks: verification.checks,
    claims: verification.claims,
    header: verification.header,
    balance: profile(session.user).balance,
  };
  if (!verification.ok) out.token_burned = !!verification.burn?.burned;
  return out;
}

// ---------------------------------------------------------------------------
// API handlers (JSON in, JSON out).

async function apiCreateTransfer(session, req, body) {
  const form = parseTransferForm(body, session.user);
  const txn = buildTxn(session, req, form);
  return assessAndReply(session, txn);
}

async function assessAndReply(session, txn) {
  const r = await authd.call('assess', { txn });
  if (r.result === 'deny')
    return { result: 'deny', reasons: r.reasons, transfer: publicTransfer(txn) };
  if (r.result === 'allow') {
    const out = await execute(session, txn, r.token, false);
    return { ...out, reasons: r.reasons };
  }
  // step_up: keep the transfer server-side until the customer approves it
  // (challenges expire after 120 s; forget abandoned ones after 10 minutes).
  for (const [id, old] of session.pending) if (Date.now() - old.created > 10 * 60 * 1000) session.pending.delete(id);
  const p = { txn, challenge: r.challenge, reasons: r.reasons, user: session.user, created: Date.now() };
  session.pending.set(txn.id, p);
  return stepUpForPage(txn.id, p);
}

async function apiVerify(session, id, body) {
  const p = session.pending.get(id);
  if (!p) throw new HttpError(404, 'Không tìm thấy giao dịch chờ xác thực / No pending transfer');
  const method = body.method;
  if (method !== 'fido2' && method !== 'face') throw new HttpError(400, 'method must be fido2 or face');
  const proof = method === 'fido2' ? pickFido2(body.fido2) : { images: pickImages(body.face, p.challenge.face?.max_images || 3) };

  let r;
  try {
    r = await authd.call('verify', { challenge_id: p.challenge.id, method, [method]: proof });
  } catch (e) {
    if (e instanceof AuthdError && (e.code === 'expired' || e.code === 'not_found')) {
      session.pending.delete(id);
      return { result: 'expired' };
    }
    throw e;
  }
  if (r.result === 'rejected') return { result: 'rejected', reasons: r.reasons, attempts_left: r.attempts_left };
  if (r.result === 'locked') { session.pending.delete(id); return { result: 'locked' }; }

  // Approved. The order we execute is the one the customer confirmed on the
  // page: the pending transfer, with the amount the page sent back. If
  // anything changed it after the challenge was issued (malware in the
  // browser, a tampered request), its txn_hash no longer matches the
  // token's txn.hash: the transfer is refused and the token burned.
  const order = { ...p.txn };
  if (body.confirm && body.confirm.amount !== undefined) order.amount = Number(body.confirm.amount);
  const out = await execute(session, order, r.token, true);
  if (out.result === 'executed') return out;

  session.pending.delete(id);
  if (order.amount !== p.txn.amount) {
    // The changed transfer is a different transfer: it gets its own id, its
    // own assessment and its own challenge. It can only go through if the
    // customer approves it, for this amount, with their key or face.
    const changed = { ...p.txn, id: newTransferId(), amount: order.amount, ts: Math.floor(Date.now() / 1000) };
    if (Number.isSafeInteger(changed.amount) && changed.amount > 0) {
      out.tampered = { approved_amount: p.txn.amount, submitted_amount: order.amount };
      out.reassessed = await assessAndReply(session, changed);
    }
  }
  return out;
}

const ASSERTION_FIELDS = ['credential_id', 'authenticator_data', 'client_data_json', 'signature', 'user_handle'];
const REGISTRATION_FIELDS = ['credential_id', 'client_data_json', 'attestation_object'];

// Passes on only the base64url fields authd takes (docs/protocol.md, verify and enroll_fido2_finish).
function pickFido2(f, fields = ASSERTION_FIELDS) {
  if (!f || typeof f !== 'object') throw new HttpError(400, 'fido2 response missing');
  const out = {};
  for (const k of fields)
    if (typeof f[k] === 'string' && f[k]) out[k] = f[k];
  return out;
}

function pickImages(face, max) {
  const images = face && Array.isArray(face.images) ? face.images : [];
  if (images.length < 1 || images.length > max || !images.every((s) => typeof s === 'string' && /^[A-Za-z0-9_-]+$/.test(s)))
    throw new HttpError(400, `face.images: 1 to ${max} base64url images`);
  return images;
}

async function apiEnrollFido2Begin(session) {
  const u = session.user;
  const r = await authd.call('enroll_fido2_begin', { customer: u.customer, display_name: u.contact });
  session.enrollment = r.enrollment_id;
  return { enrollment_id: r.enrollment_id, registration: r.registration };
}

async function apiEnrollFido2Finish(session, body) {
  if (!session.enrollment || body.enrollment_id !== session.enrollment)
    throw new HttpError(400, 'Phiên đăng ký không hợp lệ / Unknown enrollment');
  session.enrollment = null;
  const r = await authd.call('enroll_fido2_finish', { enrollment_id: body.enrollment_id, fido2: pickFido2(body.fido2, REGISTRATION_FIELDS) });
  if (r.result === 'enrolled') profile(session.user).keys++;
  return { result: r.result, reasons: r.reasons, credential_id: r.credential_id, fmt: r.fmt, alg: r.alg };
}

async function apiEnrollFace(session, body) {
  const images = pickImages(body, 5);
  const r = await authd.call('enroll_face', { customer: session.user.customer, images });
  if (r.result === 'enrolled') profile(session.user).face = true;
  return { result: r.result, reasons: r.reasons, quality: r.quality };
}

// ---------------------------------------------------------------------------
// HTTP plumbing.

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

const MAX_BODY = 6 * 1024 * 1024; // three camera frames as base64

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new HttpError(413, 'request too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function readJson(req) {
  const text = await readBody(req);
  try { return text ? JSON.parse(text) : {}; } catch { throw new HttpError(400, 'invalid JSON'); }
}

function send(res, status, body, type = 'application/json; charset=utf-8') {
  const data = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    // Camera for face step-up, WebAuthn for security keys; nothing else.
    'Permissions-Policy': 'camera=(self), publickey-credentials-get=(self), publickey-credentials-create=(self)',
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  });
  res.end(data);
}

function redirect(res, location) {
  res.writeHead(303, { Location: location });
  res.end();
}

const STATIC = {
  '/static/style.css': ['style.css', 'text/css; charset=utf-8'],
  '/static/app.js': ['app.js', 'text/javascript; charset=utf-8'],
};

async function route(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const p = url.pathname;
  const session = getSession(req);

  if (req.method === 'GET' && STATIC[p]) {
    const [file, type] = STATIC[p];
    return send(res, 200, fs.readFileSync(path.join(__dirname, 'public', file)), type);
  }
  if (req.method === 'GET' && p === '/healthz') {
    const h = await authd.call('health');
    return send(res, 200, { backend: 'ok', authd: h.status, plugins: h.plugins });
  }

  if (p === '/login') {
    if (req.method === 'GET') return send(res, 200, views.login({}), 'text/html; charset=utf-8');
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const u = CUSTOMERS[form.get('username')];
      if (!u || form.get('password') !== u.password)
        return send(res, 401, views.login({ error: true, username: form.get('username') }), 'text/html; charset=utf-8');
      newSession(res, form.get('username'));
      return redirect(res, '/');
    }
  }
  if (p === '/logout' && req.method === 'POST') {
    if (session) sessions.delete(session.sid);
    res.setHeader('Set-Cookie', 'sid=; Max-Age=0; Path=/');
    return redirect(res, '/login');
  }

  if (!session) {
    if (p.startsWith('/api/')) return send(res, 401, { error: 'Vui lòng đăng nhập / Please log in' });
    return redirect(res, '/login');
  }
  const u = session.user;
  const prof = profile(u);
  const pageData = { user: u, profile: prof, banks: BANKS };

  if (req.method === 'GET' && p === '/') return send(res, 200, views.transfer(pageData), 'text/html; charset=utf-8');
  if (req.method === 'GET' && p === '/enroll') return send(res, 200, views.enroll(pageData), 'text/html; charset=utf-8');

  if (req.method === 'POST' && p.startsWith('/api/')) {
    // Same-origin check for state-changing calls (with the SameSite cookie).
    const origin = req.headers.origin;
    if (origin && origin !== `http://${req.headers.host}`) return send(res, 403, { error: 'cross-origin request' });
    const body = await readJson(req);
    let m;
    if (p === '/api/transfers') return send(res, 200, await apiCreateTransfer(session, req, body));
    if ((m = /^\/api\/transfers\/([A-Za-z0-9-]+)\/verify$/.exec(p))) return send(res, 200, await apiVerify(session, m[1], body));
    if (p === '/api/enroll/fido2/begin') return send(res, 200, await apiEnrollFido2Begin(session));
    if (p === '/api/enroll/fido2/finish') return send(res, 200, await apiEnrollFido2Finish(session, body));
    if (p === '/api/enroll/face') return send(res, 200, await apiEnrollFace(session, body));
  }
  return send(res, 404, { error: 'not found' });
}

const server = http.createServer((req, res) => {
  route(req, res).catch((e) => {
    if (e instanceof HttpError) return send(res, e.status, { error: e.message });
    if (e instanceof AuthdError) {
      console.error(`authd error: ${e.code}: ${e.message}`);
      const status = e.code === 'unavailable' || e.code === 'timeout' ? 503 : e.code === 'conflict' ? 409 : 502;
      return send(res, status, { error: `authd: ${e.code}`, detail: e.message });
    }
    console.error(e);
    send(res, 500, { error: 'internal error' });
  });
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  console.log(`bank-backend listening on http://localhost:${port} (authd at ${AUTHD_SOCKET})`);
});

function shutdown() {
  server.close();
  authd.close();
  server.closeAllConnections?.();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

module.exports = { server, txnHash };
