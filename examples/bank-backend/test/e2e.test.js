'use strict';
// End to end in a real browser: Debian's Chromium (driven by playwright-core,
// no browser download) against server.js against a real authd.
//
//   - security key: Chromium's own WebAuthn stack with a DevTools virtual
//     authenticator enrolls a credential and approves a flagged business
//     transfer; authd verifies the assertion, jose verifies the token;
//   - a transfer whose amount is changed after the challenge is refused, its
//     token burned (never sent to the browser), and the changed transfer gets
//     a challenge of its own;
//   - face: Chromium's fake camera plays a video made from a photo; enroll
//     from obama_1, approve with obama_2, a different person (biden_1) is rejected.
//
// Env: AUTHD_BUILD_DIR (default ../../build from the example), AUTHD_FACES_DIR
// (default ../../../shared/faces/dev), CHROMIUM (default /usr/bin/chromium),
// E2E_ARTIFACTS_DIR (default test-artifacts/ in the example: screenshots, logs).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { chromium } = require('playwright-core');
const { jwtVerify, createLocalJWKSet } = require('jose');
const { AuthdClient } = require('../authd-client');

const EXAMPLE = path.resolve(__dirname, '..');
const BUILD = path.resolve(process.env.AUTHD_BUILD_DIR || path.join(EXAMPLE, '..', '..', 'build'));
const FACES = path.resolve(process.env.AUTHD_FACES_DIR || path.join(EXAMPLE, '..', '..', '..', 'shared', 'faces', 'dev'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.E2E_ARTIFACTS_DIR || path.join(EXAMPLE, 'test-artifacts'));

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const env = {}; // tmp, port, origin, authd, tap, server, videos, client
const browsers = new Set();

// ---------------------------------------------------------------------------
// helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(what, fn, timeoutMs = 15000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeoutMs) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function canConnect(sock) {
  return new Promise((resolve) => {
    const c = net.createConnection(sock);
    c.on('connect', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  });
}

function startProcess(name, cmd, args, opts) {
  const log = fs.createWriteStream(path.join(ARTIFACTS, `${name}.log`));
  const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  p.output = '';
  const onData = (d) => { log.write(d); p.output += d; };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  p.exited = new Promise((resolve) => p.on('exit', (code, sig) => { log.end(); resolve({ code, sig }); }));
  return p;
}

async function stopProcess(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10000);
  await p.exited;
  clearTimeout(t);
}

// A video file Chromium's fake camera plays in a loop: the photo fitted into
// 640×480 on a plain grey background. (Black letterbox bars look like the
// bezel of a screen held up to the camera, and the liveness model rightly
// scores that as a presentation attack.)
function makeVideo(image) {
  const out = path.join(env.tmp, `${path.parse(image).name}.y4m`);
  execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-loop', '1', '-i', path.join(FACES, image),
    '-vf', 'scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2:color=0x808080,format=yuv420p',
    '-r', '10', '-t', '1', out], { timeout: 60000 });
  return out;
}

async function launch({ camera } = {}) {
  const args = [...CHROMIUM_ARGS];
  if (camera) args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${camera}`);
  // playwright gives every launch a fresh temporary --user-data-dir.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 30000 });
  browsers.add(browser);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'vi-VN' });
  if (camera) await context.grantPermissions(['camera'], { origin: env.origin });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => console.error('page error:', e.message));
  if (camera) {
    // Keep the frames the page captured from the fake camera, for inspection.
    page.on('request', (req) => {
      if (req.method() !== 'POST' || !/\/api\/(enroll\/face|transfers\/[^/]+\/verify)$/.test(req.url())) return;
      const body = JSON.parse(req.postData() || '{}');
      const images = body.images || body.face?.images || [];
      images.forEach((b64, i) => fs.writeFileSync(path.join(ARTIFACTS, `camera-${path.parse(camera).name}-${i}.jpg`), Buffer.from(b64, 'base64url')));
    });
  }
  return { browser, context, page };
}

async function closeBrowser(browser) {
  browsers.delete(browser);
  await browser.close().catch(() => {});
}

async function login(page, user = 'doanhnghiep') {
  await page.goto(`${env.origin}/login`);
  await page.fill('#username', user);
  await page.fill('#password', 'demo');
  await Promise.all([page.waitForURL(`${env.origin}/`), page.click('#login')]);
}

// Fills and submits the transfer form; resolves with the backend's JSON reply.
async function submitTransfer(page, { account = '1122334455', bank = 'BIDV', name = 'Công ty TNHH Xây dựng Minh Phát', amount }) {
  await page.fill('#payee_account', account);
  await page.selectOption('#payee_bank', bank);
  await page.fill('#payee_name', name);
  await page.fill('#amount', String(amount));
  await page.fill('#note', 'Thanh toán hợp đồng HĐ-2026/118');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/transfers') && r.request().method() === 'POST'),
    page.click('#submit-transfer'),
  ]);
  return resp.json();
}

function clickAndGetVerifyReply(page, selector) {
  return Promise.all([
    page.waitForResponse((r) => /\/api\/transfers\/[^/]+\/verify$/.test(r.url()), { timeout: 60000 }),
    page.click(selector),
  ]).then(([resp]) => resp.json());
}

// Our own check of the token, independent of the backend's: jose + authd's JWKS,
// txn.hash recomputed from the transfer as DESIGN.md §4 defines it.
async function verifyTokenIndependently(token, transfer, customer) {
  const { keys } = await env.client.call('jwks');
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet({ keys }), {
    issuer: 'authd', audience: 'bank-backend', typ: 'authd-approval+jwt', algorithms: ['ES256', 'EdDSA'],
  });
  const input = ['authd-txn-v1', transfer.id, customer, transfer.account, String(transfer.amount), transfer.currency,
    transfer.payee.account, transfer.payee.bank].join('\n');
  assert.equal(payload.txn.hash, crypto.createHash('sha256').update(input).digest('base64url'));
  assert.equal(payload.txn.id, transfer.id);
  assert.equal(payload.sub, customer);
  assert.ok(payload.exp > Date.now() / 1000 - 5 && payload.exp <= payload.iat + 120);
  assert.equal(protectedHeader.typ, 'authd-approval+jwt');
  return payload;
}

// A pass-through between server.js and authd's socket that keeps every token
// authd hands out (assess `allow`, verify `approved`). The backend never sends
// a token to the browser, so this is where the test gets the tokens it checks
// independently, and tries again to redeem.
function startTap(listenPath, targetPath) {
  const tap = { tokens: [] };
  const frames = (onFrame) => {
    let buf = Buffer.alloc(0);
    return (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        onFrame(buf.subarray(4, 4 + len));
        buf = buf.subarray(4 + len);
      }
    };
  };
  tap.server = net.createServer((down) => {
    const up = net.createConnection(targetPath);
    up.on('data', frames((f) => {
      try {
        const reply = JSON.parse(f.toString('utf8'));
        if (typeof reply.token === 'string') tap.tokens.push(reply.token);
      } catch { /* not ours to judge: server.js sees the same bytes */ }
    }));
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  return new Promise((resolve, reject) => {
    tap.server.once('error', reject);
    tap.server.listen(listenPath, () => resolve(tap));
  });
}

// The token authd issued for transfer `txnId`, as the tap saw it.
function issuedToken(txnId) {
  const token = env.tap.tokens.find((t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url')).txn?.id === txnId);
  assert.ok(token, `authd issued no token for ${txnId}`);
  return token;
}

// The page gets the checks and claims, never the token.
function assertNoToken(reply, token) {
  assert.equal(reply.token, undefined);
  assert.ok(!JSON.stringify(reply).includes(token.split('.')[2]), 'the token reached the browser');
}

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });

// ---------------------------------------------------------------------------
// setup: authd + server.js on a free port

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of [path.join(BUILD, 'bin', 'authd'), CHROMIUM, path.join(FACES, 'obama_1.jpg')])
    assert.ok(fs.existsSync(f), `missing ${f}`);

  env.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'authd-e2e-'));
  env.port = await freePort();
  env.origin = `http://localhost:${env.port}`;
  env.sock = path.join(env.tmp, 'authd.sock');
  const conf = path.join(env.tmp, 'authd.conf');
  fs.writeFileSync(conf, [
    '[policy]',
    'new_device = off', // the demo browser is new every run
    '[fido2]',
    'rp_id = localhost',
    `origins = ${env.origin}`,
    '',
  ].join('\n'));

  env.authd = startProcess('authd', path.join(BUILD, 'bin', 'authd'),
    ['--state-dir', path.join(env.tmp, 'state'), '--socket', env.sock, '--foreground', '--config', conf], {});
  await waitFor('authd socket', async () => {
    if (env.authd.exitCode !== null) throw new Error(`authd exited:\n${env.authd.output}`);
    return canConnect(env.sock);
  });
  env.client = new AuthdClient(env.sock, { timeoutMs: 15000 });
  const health = await env.client.call('health');
  assert.deepEqual([...health.plugins].sort(), ['face', 'fido2'], `plugins: ${JSON.stringify(health)}`);

  env.tap = await startTap(path.join(env.tmp, 'tap.sock'), env.sock);
  env.server = startProcess('server', process.execPath, [path.join(EXAMPLE, 'server.js')],
    { env: { ...process.env, AUTHD_SOCKET: path.join(env.tmp, 'tap.sock'), PORT: String(env.port), HOST: '127.0.0.1' } });
  await waitFor('server.js to listen', async () => {
    if (env.server.exitCode !== null) throw new Error(`server.js exited:\n${env.server.output}`);
    return /listening on/.test(env.server.output);
  });

  env.videos = {
    obama_1: makeVideo('obama_1.jpg'),
    obama_2: makeVideo('obama_2.jpg'),
    biden_1: makeVideo('biden_1.jpg'),
  };
});

after(async () => {
  for (const b of [...browsers]) await closeBrowser(b);
  env.client?.close();
  await stopProcess(env.server);
  env.tap?.server.close();
  await stopProcess(env.authd);
  if (env.tmp) fs.rmSync(env.tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// security key

test('security key: enroll with a virtual authenticator, approve a flagged business transfer', { timeout: 120000 }, async () => {
  const { browser, context, page } = await launch();
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true,
      },
    });

    await login(page);
    await page.goto(`${env.origin}/enroll`);
    const [finish] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/enroll/fido2/finish')),
      page.click('#enroll-key'),
    ]);
    const enrolled = await finish.json();
    assert.equal(enrolled.result, 'enrolled', JSON.stringify(enrolled));
    await page.waitForSelector('#key-enrolled');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(Buffer.from(credentials[0].credentialId, 'base64').toString('base64url'), enrolled.credential_id);

    // A business transfer to a payee never paid before: the bank flags it.
    await page.goto(`${env.origin}/`);
    const s = await submitTransfer(page, { amount: 250000000 });
    assert.equal(s.result, 'step_up', JSON.stringify(s));
    assert.ok(s.reasons.includes('business_high_risk'), s.reasons.join());
    assert.deepEqual(s.fido2.allow_credentials, [enrolled.credential_id]);
    await page.waitForSelector('#stepup-card:not(.hidden) #approve-key:not([disabled])');
    assert.match(await page.textContent('#stepup-card .summary .amount'), /250\.000\.000/);
    await shot(page, 'stepup-prompt.png');

    const r = await clickAndGetVerifyReply(page, '#approve-key');
    assert.equal(r.result, 'executed', JSON.stringify(r));
    assert.ok(r.checks.every((c) => c.ok), JSON.stringify(r.checks));
    await page.waitForSelector('#result-card[data-result="executed"]');
    await page.waitForSelector('#checks li[data-check="txn_hash"].ok');

    const token = issuedToken(r.transfer.id);
    assertNoToken(r, token);
    const claims = await verifyTokenIndependently(token, r.transfer, 'C-BIZ-0042');
    assert.equal(claims.acr, 'urn:authd:acr:stepup');
    assert.deepEqual(claims.amr, ['hwk', 'user']);
    assert.ok(claims.rsn.includes('business_high_risk'));
    // the backend redeemed it: a second use is refused by authd
    await assert.rejects(env.client.call('redeem', { token }), (e) => e.code === 'conflict');
    await shot(page, 'approved-fido2.png');
  } finally {
    await closeBrowser(browser);
  }
});

test('tampered transfer: amount changed after the challenge is refused, the changed one needs its own approval', { timeout: 120000 }, async () => {
  const { browser, context, page } = await launch();
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    await login(page);
    await page.goto(`${env.origin}/enroll`);
    await page.click('#enroll-key');
    await page.waitForSelector('#key-enrolled');
    await page.goto(`${env.origin}/`);

    const s = await submitTransfer(page, { account: '3344556677', bank: 'ACB', name: 'Công ty TNHH Thiết bị Phương Nam', amount: 25000000 });
    assert.equal(s.result, 'step_up');
    await page.waitForSelector('#approve-key:not([disabled])');

    // Malware in the browser rewrites the amount on its way to the bank,
    // after the customer's key signed the challenge for 25,000,000 ₫.
    await page.route('**/api/transfers/*/verify', async (route) => {
      const body = JSON.parse(route.request().postData());
      body.confirm.amount = 250000000;
      await route.continue({ postData: JSON.stringify(body) });
    });
    const r = await clickAndGetVerifyReply(page, '#approve-key');
    await page.unroute('**/api/transfers/*/verify');

    assert.equal(r.result, 'refused', JSON.stringify(r));
    const hashCheck = r.checks.find((c) => c.name === 'txn_hash');
    assert.equal(hashCheck.ok, false);
    assert.ok(!r.checks.some((c) => c.name === 'redeem'), 'a refused transfer is not executed: no redeem check');
    assert.deepEqual(r.tampered, { approved_amount: 25000000, submitted_amount: 250000000 });
    // The token authd issued is for the original transfer, not the changed one.
    // The browser (where the malware is) never gets it, and the backend burned
    // it: nobody can use it for the original transfer either.
    const token = issuedToken(s.transfer.id);
    assertNoToken(r, token);
    assert.equal(r.token_burned, true, JSON.stringify(r));
    const claims = await verifyTokenIndependently(token, { ...r.transfer, id: s.transfer.id, amount: 25000000 }, 'C-BIZ-0042');
    assert.equal(claims.txn.id, s.transfer.id);
    await assert.rejects(env.client.call('redeem', { token }), (e) => e.code === 'conflict');

    // Assessing the changed transfer: a new step-up, with a new challenge bound to the new amount.
    const n = r.reassessed;
    assert.equal(n.result, 'step_up', JSON.stringify(n));
    assert.notEqual(n.transfer_id, s.transfer_id);
    assert.notEqual(n.fido2.challenge, s.fido2.challenge);
    assert.equal(n.transfer.amount, 250000000);
    await page.waitForSelector('#tamper-note');
    await page.waitForSelector('#token-burned');
    await page.waitForSelector('#result-card[data-result="refused"]');
    await page.waitForSelector('#stepup-card:not(.hidden) #approve-key');
    assert.match(await page.textContent('#stepup-card .summary .amount'), /250\.000\.000/);
    await shot(page, 'tampered-refused.png');
  } finally {
    await closeBrowser(browser);
  }
});

// ---------------------------------------------------------------------------
// face, one browser per fake camera file

test('face: enroll from obama_1 through the fake camera', { timeout: 120000 }, async () => {
  const { browser, page } = await launch({ camera: env.videos.obama_1 });
  try {
    await login(page);
    await page.goto(`${env.origin}/enroll`);
    await page.click('#start-face-enroll');
    await page.waitForFunction(() => document.querySelector('#enroll-video').videoWidth > 0);
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/enroll/face'), { timeout: 60000 }),
      page.click('#enroll-face'),
    ]);
    const r = await resp.json();
    assert.equal(r.result, 'enrolled', JSON.stringify(r));
    assert.ok(r.quality.accepted >= 1);
    await page.waitForSelector('#face-enrolled');
    await shot(page, 'enroll-face.png');
  } finally {
    await closeBrowser(browser);
  }
});

async function faceStepUp(video, amount) {
  const { browser, page } = await launch({ camera: video });
  await login(page);
  const s = await submitTransfer(page, { account: '7788990011', bank: 'VPB', name: 'Công ty CP Logistics Hải Phòng', amount });
  assert.equal(s.result, 'step_up');
  assert.ok(s.enrolled.face);
  await page.click('#approve-face');
  await page.waitForFunction(() => document.querySelector('#stepup-video').videoWidth > 0);
  await page.waitForSelector('#capture-face:not(.hidden)');
  return { browser, page, s };
}

test('face: approve with obama_2 (same person)', { timeout: 120000 }, async () => {
  const { browser, page, s } = await faceStepUp(env.videos.obama_2, 180000000);
  try {
    await shot(page, 'stepup-face-camera.png');
    const r = await clickAndGetVerifyReply(page, '#capture-face');
    assert.equal(r.result, 'executed', JSON.stringify(r));
    assert.equal(r.transfer.id, s.transfer.id);
    const token = issuedToken(r.transfer.id);
    assertNoToken(r, token);
    const claims = await verifyTokenIndependently(token, r.transfer, 'C-BIZ-0042');
    assert.deepEqual(claims.amr, ['face']);
    assert.equal(claims.acr, 'urn:authd:acr:stepup');
    await page.waitForSelector('#result-card[data-result="executed"]');
    await shot(page, 'approved-face.png');
  } finally {
    await closeBrowser(browser);
  }
});

test('face: a different person (biden_1) is rejected', { timeout: 120000 }, async () => {
  const { browser, page } = await faceStepUp(env.videos.biden_1, 95000000);
  try {
    const r = await clickAndGetVerifyReply(page, '#capture-face');
    assert.equal(r.result, 'rejected', JSON.stringify(r));
    assert.ok(r.reasons.includes('no_match'), r.reasons.join());
    assert.equal(r.attempts_left, 4);
    await page.waitForSelector('#verify-rejected');
    await shot(page, 'rejected-face.png');
  } finally {
    await closeBrowser(browser);
  }
});
