'use strict';
// Browser side of the demo: the transfer form, the step-up prompt (WebAuthn
// or camera), the result, and enrollment. Talks only to the bank backend,
// never to authd.

// ---- helpers --------------------------------------------------------------

const $ = (sel) => document.querySelector(sel);
const vnd = (n) => new Intl.NumberFormat('vi-VN', { style: 'currency', currency: 'VND' }).format(n);

// h('div', {class: 'x'}, 'text', child, ...) — builds DOM without innerHTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
const en = (text) => h('span', { class: 'en' }, text);

// Line icons (inline SVG: no icon font, no emoji, same look on every system).
const ICONS = {
  shield: 'M12 2 4 5v6c0 5 3.4 9.4 8 11 4.6-1.6 8-6 8-11V5l-8-3zm-1 13-3.5-3.5 1.4-1.4L11 12.2l4.6-4.6L17 9l-6 6z',
  key: 'M7 14a3 3 0 1 1 0-6 3 3 0 0 1 0 6zm5.6-4A6 6 0 1 0 12.6 14H16v3h3v-3h2v-4h-8.4z',
  face: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zM8.5 11a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zm7 0a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zM12 17.5c2.3 0 4.3-1.4 5.1-3.5H6.9c.8 2.1 2.8 3.5 5.1 3.5z',
};
function icon(name, cls = 'ico') {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(NS, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.append(p);
  return svg;
}
// append() that skips null/false, like h().
const put = (el, ...children) => el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));

// base64url <-> bytes (authd's binary fields are base64url without padding).
function b64uToBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
function bytesToB64u(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function api(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}) });
  const data = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(data.error + (data.detail ? ` (${data.detail})` : ''));
  return data;
}

const REASONS = {
  business_high_risk: ['Giao dịch doanh nghiệp được hệ thống đánh dấu rủi ro (người nhận mới)', 'Business transfer flagged by the bank’s fraud rules (new payee)'],
  business_overseas: ['Không xác định được vị trí truy cập trong nước', 'Access not located in Viet Nam'],
  business_new_entity: ['Doanh nghiệp mới thành lập, giao dịch giá trị lớn', 'New business, large amount'],
  personal_amount: ['Giao dịch trên 10.000.000 ₫', 'Transfer above 10,000,000 ₫'],
  personal_daily_total: ['Tổng giao dịch trong ngày trên 20.000.000 ₫', 'Daily total above 20,000,000 ₫'],
  new_device: ['Thiết bị mới', 'New device'],
  overseas: ['Truy cập từ nước ngoài', 'Access from abroad'],
  src_ip_private: ['Địa chỉ mạng nội bộ', 'Private network address'],
  src_ip_unlocated: ['Không xác định được vị trí', 'Address could not be located'],
  src_ip_invalid: ['Địa chỉ không hợp lệ', 'Invalid address'],
  account_frozen: ['Tài khoản đang bị phong tỏa', 'Account is frozen'],
  customer_locked: ['Xác thực bị khóa do sai nhiều lần', 'Locked after failed attempts'],
  no_match: ['Khuôn mặt không khớp với mẫu đã đăng ký', 'Face does not match the enrolled one'],
  no_face: ['Không thấy khuôn mặt', 'No face found'],
  multiple_faces: ['Có nhiều khuôn mặt trong khung hình', 'More than one face'],
  face_too_small: ['Khuôn mặt quá nhỏ — lại gần camera hơn', 'Face too small: come closer'],
  too_blurry: ['Ảnh bị mờ', 'Image too blurry'],
  presentation_attack: ['Phát hiện ảnh giả mạo', 'Presentation attack detected'],
  not_enrolled: ['Chưa đăng ký phương thức này', 'Method not enrolled'],
};
const reasonItem = (r) => { const t = REASONS[r] || [r, '']; return h('li', {}, t[0], ' ', en(t[1]), ' ', h('code', {}, r)); };

const CHECKS = {
  signature: ['Chữ ký số (JWKS của authd)', 'Signature against authd’s JWKS'],
  issuer_audience: ['Bên phát hành & đối tượng', 'iss = authd, aud = bank-backend'],
  expiry: ['Còn hiệu lực', 'Not expired (exp)'],
  subject: ['Đúng khách hàng', 'sub = this customer'],
  acr: ['Đã xác thực bước hai', 'acr = step-up'],
  txn_id: ['Đúng mã giao dịch', 'txn.id = this transfer'],
  txn_hash: ['Khớp nội dung giao dịch (tính lại txn_hash)', 'txn.hash recomputed from the transfer'],
  redeem: ['Dùng một lần (redeem)', 'Single use (redeem)'],
};

function transferSummary(t) {
  return h('table', { class: 'summary' },
    h('tr', {}, h('th', {}, 'Mã giao dịch ', en('Reference')), h('td', {}, h('code', {}, t.id))),
    h('tr', {}, h('th', {}, 'Từ tài khoản ', en('From')), h('td', {}, t.account)),
    h('tr', {}, h('th', {}, 'Người nhận ', en('To')), h('td', {}, h('strong', {}, t.payee.name || '—'), h('br'), `${t.bank_name} · ${t.payee.account}`)),
    h('tr', {}, h('th', {}, 'Số tiền ', en('Amount')), h('td', { class: 'amount' }, vnd(t.amount))));
}

function show(card) { card.classList.remove('hidden'); card.scrollIntoView({ block: 'nearest' }); }
function hide(card) { card.classList.add('hidden'); card.replaceChildren(); }

// ---- transfer page ----------------------------------------------------------

let current = null; // the step-up the page is showing
let camera = null;  // MediaStream while the camera is on

function initTransferPage() {
  const form = $('#transfer-form');
  const amount = $('#amount');
  const preview = $('#amount-preview');
  amount.addEventListener('input', () => {
    const n = Number(amount.value.replace(/[^0-9]/g, ''));
    preview.textContent = n ? vnd(n) : '';
  });
  document.querySelectorAll('.payee').forEach((b) => b.addEventListener('click', () => {
    $('#payee_account').value = b.dataset.account;
    $('#payee_bank').value = b.dataset.bank;
    $('#payee_name').value = b.dataset.name;
  }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('#submit-transfer');
    btn.disabled = true;
    hide($('#result-card'));
    hide($('#stepup-card'));
    try {
      const data = Object.fromEntries(new FormData(form));
      const r = await api('/api/transfers', data);
      handleOutcome(r);
    } catch (e) {
      showResult({ result: 'error', error: e.message });
    } finally {
      btn.disabled = false;
    }
  });
}

function handleOutcome(r) {
  if (r.result === 'step_up') return showStepUp(r);
  hide($('#stepup-card'));
  showResult(r);
  if (r.reassessed) {
    if (r.reassessed.result === 'step_up') showStepUp(r.reassessed, { changed: true });
    else showResult(r.reassessed);
  }
}

function showStepUp(s, { changed } = {}) {
  current = s;
  const card = $('#stepup-card');
  card.replaceChildren();
  const canKey = s.methods.includes('fido2');
  const canFace = s.methods.includes('face');
  const secs = () => Math.max(0, s.expires_at - Math.floor(Date.now() / 1000));
  const timer = h('span', { class: 'timer', id: 'stepup-timer' }, `${secs()} giây`);
  const tick = setInterval(() => { if (!document.body.contains(timer)) return clearInterval(tick); timer.textContent = `${secs()} giây`; }, 1000);

  put(card,
    h('div', { class: 'stepup-head' },
      h('div', { class: 'shield' }, icon('shield')),
      h('div', {},
        h('h2', { id: 'stepup-title' }, changed ? 'Giao dịch đã thay đổi — cần xác thực lại ' : 'Xác thực giao dịch ', en(changed ? 'Changed transfer: confirm again' : 'Confirm this transfer')),
        h('div', { class: 'muted' }, 'Hết hạn sau ', timer, ' ', en('until this confirmation expires')))),
    h('div', { class: 'alert alert-warn' },
      h('strong', {}, 'Giao dịch này cần xác thực bổ sung. '), en('This transfer needs your confirmation:'),
      h('ul', { class: 'reasons' }, s.reasons.map(reasonItem))),
    transferSummary(s.transfer),
    h('p', { class: 'muted small' }, 'Thiết bị của bạn sẽ ký đúng giao dịch này (mã băm ', h('code', {}, s.transfer.txn_hash.slice(0, 12) + '…'), '). ',
      en('Your authenticator signs this exact transfer.')),
    h('div', { class: 'methods' },
      h('button', { class: 'btn btn-primary method', id: 'approve-key', type: 'button', disabled: !canKey || !s.enrolled.fido2, onclick: approveWithKey },
        icon('key'), h('span', {}, 'Khóa bảo mật', h('br'), en('Security key'))),
      h('button', { class: 'btn method', id: 'approve-face', type: 'button', disabled: !canFace || !s.enrolled.face, onclick: startFaceStepUp },
        icon('face'), h('span', {}, 'Khuôn mặt', h('br'), en('Face')))),
    (!s.enrolled.fido2 || !s.enrolled.face) ? h('p', { class: 'muted small' }, 'Chưa đăng ký? ', h('a', { href: '/enroll' }, 'Đăng ký phương thức xác thực'), ' ', en('Not enrolled yet?')) : null,
    h('div', { class: 'camera hidden', id: 'stepup-camera' }, h('video', { id: 'stepup-video', autoplay: true, muted: true, playsinline: true }),
      h('div', { class: 'oval' })),
    h('button', { class: 'btn btn-primary hidden', id: 'capture-face', type: 'button', onclick: approveWithFace }, 'Chụp & xác thực ', en('Capture & confirm')),
    h('div', { class: 'msg', id: 'stepup-msg', 'aria-live': 'polite' }),
    h('div', { class: 'actions' }, h('button', { class: 'btn-text', type: 'button', onclick: newTransfer }, 'Hủy giao dịch ', en('Cancel'))));
  $('#form-card').classList.add('hidden');
  show(card);
}

function stepUpMessage(kind, ...content) {
  const m = $('#stepup-msg');
  m.className = `msg msg-${kind}`;
  m.replaceChildren(...content);
}

// The amount the customer confirms; sent back so the backend checks what it executes.
const confirmed = () => ({ amount: current.transfer.amount });

async function approveWithKey() {
  const s = current;
  stepUpMessage('info', 'Chạm vào khóa bảo mật… ', en('Touch your security key…'));
  let cred;
  try {
    cred = await navigator.credentials.get({
      publicKey: {
        challenge: b64uToBytes(s.fido2.challenge), // bound by authd to this transfer
        rpId: s.fido2.rp_id,
        allowCredentials: s.fido2.allow_credentials.map((id) => ({ type: 'public-key', id: b64uToBytes(id) })),
        userVerification: s.fido2.user_verification,
        timeout: s.fido2.timeout_ms,
      },
    });
  } catch (e) {
    return stepUpMessage('bad', 'Không nhận được xác nhận từ khóa. ', en(`${e.name}: ${e.message}`));
  }
  const r = cred.response;
  await submitVerify({
    method: 'fido2',
    fido2: {
      credential_id: bytesToB64u(cred.rawId),
      authenticator_data: bytesToB64u(r.authenticatorData),
      client_data_json: bytesToB64u(r.clientDataJSON),
      signature: bytesToB64u(r.signature),
      user_handle: r.userHandle && r.userHandle.byteLength ? bytesToB64u(r.userHandle) : undefined,
    },
    confirm: confirmed(),
  });
}

async function startCamera(video, wrap) {
  camera = await navigator.mediaDevices.getUserMedia({ audio: false, video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' } });
  video.srcObject = camera;
  wrap.classList.remove('hidden');
  await video.play().catch(() => {});
  const t0 = Date.now();
  while (!video.videoWidth && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
}

function stopCamera() {
  if (camera) camera.getTracks().forEach((t) => t.stop());
  camera = null;
}

// Captures `n` frames, `gapMs` apart, as base64url JPEG (what enroll_face/verify take).
async function captureFrames(video, n, gapMs = 250) {
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  const frames = [];
  for (let i = 0; i < n; i++) {
    if (i) await new Promise((r) => setTimeout(r, gapMs));
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.92));
    frames.push(bytesToB64u(await blob.arrayBuffer()));
  }
  return frames;
}

async function startFaceStepUp() {
  try {
    await startCamera($('#stepup-video'), $('#stepup-camera'));
    $('#capture-face').classList.remove('hidden');
    stepUpMessage('info', 'Đưa khuôn mặt vào khung hình rồi bấm Chụp. ', en('Centre your face, then capture.'));
  } catch (e) {
    stepUpMessage('bad', 'Không mở được camera. ', en(`${e.name}: ${e.message}`));
  }
}

async function approveWithFace() {
  const n = Math.min(3, current.face?.max_images || 3);
  $('#capture-face').disabled = true;
  stepUpMessage('info', 'Đang xác thực khuôn mặt… ', en('Checking your face…'));
  const images = await captureFrames($('#stepup-video'), n);
  stopCamera();
  $('#stepup-camera').classList.add('hidden');
  $('#capture-face').classList.add('hidden');
  $('#capture-face').disabled = false;
  await submitVerify({ method: 'face', face: { images }, confirm: confirmed() });
}

async function submitVerify(body) {
  let r;
  try {
    r = await api(`/api/transfers/${encodeURIComponent(current.transfer_id)}/verify`, body);
  } catch (e) {
    return stepUpMessage('bad', 'Lỗi: ', e.message);
  }
  if (r.result === 'rejected') {
    return stepUpMessage('bad', h('strong', { id: 'verify-rejected' }, 'Xác thực không thành công. '), en('Not approved.'),
      h('ul', { class: 'reasons' }, (r.reasons || []).map(reasonItem)),
      `Còn ${r.attempts_left} lần thử · ${r.attempts_left} attempts left`);
  }
  handleOutcome(r);
}

function showResult(r) {
  const card = $('#result-card');
  card.replaceChildren();
  card.dataset.result = r.result;
  const banner = {
    executed: ['ok', '✓', 'Chuyển tiền thành công', 'Transfer completed'],
    refused: ['bad', '✕', 'Giao dịch bị từ chối', 'Transfer refused'],
    deny: ['bad', '✕', 'Giao dịch không được thực hiện', 'Transfer denied'],
    locked: ['bad', '✕', 'Xác thực bị khóa do sai quá số lần cho phép — vui lòng liên hệ ngân hàng', 'Locked after too many failed attempts'],
    expired: ['bad', '⏱', 'Phiên xác thực đã hết hạn — vui lòng tạo lại giao dịch', 'The confirmation expired'],
    error: ['bad', '!', 'Có lỗi xảy ra', 'Something went wrong'],
  }[r.result] || ['bad', '!', r.result, ''];
  $('#form-card').classList.add('hidden');
  put(card, h('div', { class: `banner banner-${banner[0]}`, id: 'result-banner' },
    h('span', { class: 'banner-ico' }, banner[1]), h('div', {}, h('div', { class: 'banner-title' }, banner[2]), en(banner[3]))));
  if (r.error) card.append(h('p', {}, r.error));
  if (r.tampered) {
    card.append(h('div', { class: 'alert alert-bad', id: 'tamper-note' },
      h('strong', {}, 'Số tiền đã bị thay đổi sau khi xác thực: '),
      `đã duyệt ${vnd(r.tampered.approved_amount)}, yêu cầu thực hiện ${vnd(r.tampered.submitted_amount)}. `,
      en('The amount was changed after approval; the approval does not cover it.')));
  }
  if (r.token_burned) {
    card.append(h('p', { class: 'muted small', id: 'token-burned' },
      'Token phê duyệt đã bị hủy và không thể dùng cho giao dịch nào. ',
      en('The approval token was burned (redeemed without executing): it cannot approve any transfer.')));
  }
  if (r.transfer) card.append(transferSummary(r.transfer));
  if (r.result === 'executed' && r.claims) {
    const how = (r.claims.amr || []).includes('face') ? 'khuôn mặt · face' : (r.claims.amr || []).includes('hwk') ? 'khóa bảo mật · security key' : 'không cần xác thực bổ sung · no step-up needed';
    card.append(h('p', { class: 'muted small', id: 'approved-by' }, `Phê duyệt bằng ${how} lúc ${new Date(r.claims.iat * 1000).toLocaleTimeString('vi-VN')}`));
  }
  if (r.result === 'deny' && r.reasons) card.append(h('ul', { class: 'reasons' }, r.reasons.map(reasonItem)));
  if (r.balance !== undefined && r.result === 'executed') {
    const b = $('#balance');
    if (b) b.textContent = vnd(r.balance);
  }
  if (r.checks) {
    card.append(h('h3', {}, 'Kiểm tra của ngân hàng ', en('Backend verification of the authd token')),
      h('ul', { class: 'checks', id: 'checks' }, r.checks.map((c) => {
        const t = CHECKS[c.name] || [c.name, ''];
        return h('li', { class: c.ok ? 'ok' : 'bad', 'data-check': c.name },
          h('span', { class: 'mark' }, c.ok ? '✓' : '✕'), h('span', {}, t[0], ' ', en(t[1]), h('div', { class: 'detail' }, c.detail)));
      })));
  }
  if (r.claims) {
    card.append(h('details', { open: r.result === 'executed' },
      h('summary', {}, 'Nội dung token phê duyệt ', en('Approval token claims')),
      h('pre', { class: 'claims', id: 'claims' }, JSON.stringify(r.claims, null, 2))));
  }
  if (!r.reassessed) card.append(h('div', { class: 'actions' }, h('button', { class: 'btn', id: 'new-transfer', type: 'button', onclick: newTransfer }, 'Giao dịch mới ', en('New transfer'))));
  show(card);
}

function newTransfer() {
  stopCamera();
  hide($('#stepup-card'));
  hide($('#result-card'));
  current = null;
  $('#transfer-form').reset();
  $('#amount-preview').textContent = '';
  $('#form-card').classList.remove('hidden');
}

// ---- enrollment page ----------------------------------------------------------

function initEnrollPage() {
  $('#enroll-key').addEventListener('click', enrollKey);
  $('#start-face-enroll').addEventListener('click', async () => {
    try {
      await startCamera($('#enroll-video'), $('#enroll-camera'));
      $('#enroll-face').classList.remove('hidden');
      $('#start-face-enroll').classList.add('hidden');
    } catch (e) {
      $('#face-msg').textContent = `Không mở được camera: ${e.name}: ${e.message}`;
    }
  });
  $('#enroll-face').addEventListener('click', enrollFace);
}

function setMsg(el, kind, ...content) { el.className = `msg msg-${kind}`; el.replaceChildren(...content); }

async function enrollKey() {
  const msg = $('#key-msg');
  setMsg(msg, 'info', 'Chạm vào khóa bảo mật… ', en('Touch your key…'));
  try {
    const { enrollment_id, registration: reg } = await api('/api/enroll/fido2/begin');
    const cred = await navigator.credentials.create({
      publicKey: {
        challenge: b64uToBytes(reg.challenge),
        rp: { id: reg.rp.id, name: reg.rp.name },
        user: { id: b64uToBytes(reg.user.id), name: reg.user.name, displayName: reg.user.display_name || reg.user.name },
        pubKeyCredParams: reg.pub_key_cred_params.map((alg) => ({ type: 'public-key', alg })),
        attestation: reg.attestation || 'none',
        authenticatorSelection: { userVerification: reg.user_verification || 'required', residentKey: 'discouraged' },
        timeout: reg.timeout_ms || 120000,
      },
    });
    const r = await api('/api/enroll/fido2/finish', {
      enrollment_id,
      fido2: {
        credential_id: bytesToB64u(cred.rawId),
        client_data_json: bytesToB64u(cred.response.clientDataJSON),
        attestation_object: bytesToB64u(cred.response.attestationObject),
      },
    });
    if (r.result !== 'enrolled') throw new Error((r.reasons || []).join(', ') || r.result);
    setMsg(msg, 'ok', h('strong', { id: 'key-enrolled' }, 'Đã đăng ký khóa bảo mật. '), en('Security key registered.'));
    $('#key-status').textContent = 'Đã đăng ký · Enrolled';
  } catch (e) {
    setMsg(msg, 'bad', 'Không đăng ký được: ', en(e.message));
  }
}

async function enrollFace() {
  const msg = $('#face-msg');
  $('#enroll-face').disabled = true;
  setMsg(msg, 'info', 'Đang xử lý… ', en('Processing…'));
  try {
    const images = await captureFrames($('#enroll-video'), 3);
    stopCamera();
    $('#enroll-camera').classList.add('hidden');
    const r = await api('/api/enroll/face', { images });
    if (r.result !== 'enrolled') {
      setMsg(msg, 'bad', 'Không đăng ký được: ', h('ul', { class: 'reasons' }, (r.reasons || []).map(reasonItem)));
      $('#start-face-enroll').classList.remove('hidden');
      $('#enroll-face').classList.add('hidden');
      return;
    }
    setMsg(msg, 'ok', h('strong', { id: 'face-enrolled' }, 'Đã đăng ký khuôn mặt. '), en(`Face enrolled (${r.quality?.accepted ?? images.length} image(s) accepted).`));
    $('#face-status').textContent = 'Đã đăng ký · Enrolled';
    $('#enroll-face').classList.add('hidden');
  } catch (e) {
    setMsg(msg, 'bad', 'Lỗi: ', e.message);
  } finally {
    $('#enroll-face').disabled = false;
  }
}

// ---------------------------------------------------------------------------

if (document.body.dataset.page === 'transfer') initTransferPage();
if (document.body.dataset.page === 'enroll') initEnrollPage();
