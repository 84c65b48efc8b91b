'use strict';
// Server-rendered HTML for the demo pages. Dynamic parts (step-up prompt,
// results) are drawn by public/app.js from the backend's JSON replies.

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const vnd = (n) => new Intl.NumberFormat('vi-VN', { style: 'currency', currency: 'VND' }).format(n);

function layout({ title, user, active, body, page }) {
  const nav = user ? `
      <nav class="topnav">
        <a href="/" class="${active === 'transfer' ? 'active' : ''}">Chuyển tiền <span class="en">Transfer</span></a>
        <a href="/enroll" class="${active === 'enroll' ? 'active' : ''}">Xác thực <span class="en">Security</span></a>
      </nav>
      <div class="who">
        <div class="who-name">${esc(user.name)}</div>
        <div class="who-sub">${esc(user.contact)} · ${esc(user.customer)}</div>
      </div>
      <form method="post" action="/logout"><button class="btn-link" type="submit">Đăng xuất</button></form>` : '';
  return `<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Ngân hàng Sông Hồng</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body data-page="${esc(page || '')}">
<header class="bar">
  <div class="brand"><span class="logo">SH</span><div><div class="brand-name">Ngân hàng Sông Hồng</div><div class="brand-sub">Internet Banking Doanh nghiệp &amp; Cá nhân</div></div></div>
  ${nav}
</header>
<main>
${body}
</main>
<footer class="foot">Bản demo tích hợp <strong>authd</strong> — xác thực bước hai cho giao dịch chuyển tiền · Demo of an authd step-up integration. Không dùng cho giao dịch thật.</footer>
<script src="/static/app.js"></script>
</body>
</html>`;
}

function login({ error, username }) {
  return layout({
    title: 'Đăng nhập',
    page: 'login',
    body: `
<section class="card login">
  <h1>Đăng nhập <span class="en">Log in</span></h1>
  ${error ? '<div class="alert alert-bad" role="alert">Tên đăng nhập hoặc mật khẩu không đúng. <span class="en">Wrong user name or password.</span></div>' : ''}
  <form method="post" action="/login">
    <label>Tên đăng nhập <span class="en">User name</span>
      <input name="username" id="username" autocomplete="username" value="${esc(username || 'doanhnghiep')}" required></label>
    <label>Mật khẩu <span class="en">Password</span>
      <input name="password" id="password" type="password" autocomplete="current-password" required></label>
    <button class="btn btn-primary" id="login" type="submit">Đăng nhập</button>
  </form>
  <p class="hint">Tài khoản demo: <code>doanhnghiep</code> (doanh nghiệp / business) hoặc <code>canhan</code> (cá nhân / personal), mật khẩu <code>demo</code>.</p>
</section>`,
  });
}

function accountCard(user, profile) {
  return `
<section class="card account">
  <div class="label">Tài khoản nguồn <span class="en">From account</span></div>
  <div class="acct-no">${esc(user.account.replace(/(\d{4})(?=\d)/g, '$1 '))}</div>
  <div class="acct-type">${user.accountType === 'business' ? 'Tài khoản thanh toán doanh nghiệp · Business current account' : 'Tài khoản thanh toán cá nhân · Personal current account'}</div>
  <div class="label">Số dư khả dụng <span class="en">Available balance</span></div>
  <div class="balance" id="balance">${esc(vnd(profile.balance))}</div>
  <div class="enrolled">
    <span class="chip ${profile.keys ? 'chip-ok' : ''}" id="chip-key">${profile.keys ? '✓' : '○'} Khóa bảo mật</span>
    <span class="chip ${profile.face ? 'chip-ok' : ''}" id="chip-face">${profile.face ? '✓' : '○'} Khuôn mặt</span>
    <a href="/enroll" class="small">Quản lý <span class="en">Manage</span></a>
  </div>
</section>`;
}

function transfer({ user, profile, banks }) {
  const bankOptions = Object.entries(banks).map(([code, name]) => `<option value="${esc(code)}">${esc(name)} (${esc(code)})</option>`).join('');
  const payees = user.payees.map((p) => `<li><button type="button" class="payee" data-account="${esc(p.account)}" data-bank="${esc(p.bank)}" data-name="${esc(p.name)}">${esc(p.name)} · ${esc(banks[p.bank])} ${esc(p.account)}</button></li>`).join('');
  const history = profile.history.slice(0, 5).map((h) => `<tr><td>${esc(h.id)}</td><td>${esc(h.payee.name || h.payee.account)}</td><td class="num">${esc(vnd(h.amount))}</td><td>${esc(h.method)}</td></tr>`).join('');
  return layout({
    title: 'Chuyển tiền',
    user,
    active: 'transfer',
    page: 'transfer',
    body: `
<div class="grid">
  <aside>
    ${accountCard(user, profile)}
    <section class="card">
      <div class="label">Người nhận đã lưu <span class="en">Saved payees</span></div>
      <ul class="payees">${payees}</ul>
    </section>
  </aside>
  <div class="col-main">
    <section class="card" id="form-card">
      <h1>Chuyển tiền liên ngân hàng <span class="en">Interbank transfer</span></h1>
      <form id="transfer-form" autocomplete="off">
        <div class="row">
          <label>Số tài khoản người nhận <span class="en">Payee account</span>
            <input name="payee_account" id="payee_account" inputmode="numeric" required placeholder="VD: 9876543210"></label>
          <label>Ngân hàng <span class="en">Bank</span>
            <select name="payee_bank" id="payee_bank">${bankOptions}</select></label>
        </div>
        <label>Tên người nhận <span class="en">Payee name</span>
          <input name="payee_name" id="payee_name" placeholder="VD: Công ty CP Vật tư Hà Nội"></label>
        <div class="row">
          <label>Số tiền (VND) <span class="en">Amount</span>
            <input name="amount" id="amount" inputmode="numeric" required placeholder="0"></label>
          <div class="amount-preview" id="amount-preview"></div>
        </div>
        <label>Nội dung <span class="en">Description</span>
          <input name="note" id="note" maxlength="140" placeholder="Thanh toán hóa đơn"></label>
        <button class="btn btn-primary" id="submit-transfer" type="submit">Tiếp tục <span class="en">Continue</span></button>
      </form>
    </section>
    <section class="card hidden" id="result-card" aria-live="polite"></section>
    <section class="card hidden" id="stepup-card" aria-live="polite"></section>
    ${history ? `<section class="card"><div class="label">Giao dịch gần đây <span class="en">Recent transfers</span></div>
      <table class="history"><thead><tr><th>Mã GD</th><th>Người nhận</th><th class="num">Số tiền</th><th>Xác thực</th></tr></thead><tbody>${history}</tbody></table></section>` : ''}
  </div>
</div>`,
  });
}

function enroll({ user, profile }) {
  return layout({
    title: 'Phương thức xác thực',
    user,
    active: 'enroll',
    page: 'enroll',
    body: `
<h1 class="page-title">Phương thức xác thực giao dịch <span class="en">Transaction authentication</span></h1>
<p class="lead">Theo Quyết định 2345/QĐ-NHNN, giao dịch của tài khoản doanh nghiệp và giao dịch giá trị lớn phải được xác thực bằng sinh trắc học hoặc khóa bảo mật.
<span class="en">Business transfers and large transfers need a biometric or security-key confirmation.</span></p>
<div class="grid2">
  <section class="card">
    <h2>Khóa bảo mật <span class="en">Security key / passkey</span></h2>
    <p>Khóa FIDO2 (USB, NFC) hoặc passkey trên thiết bị. <span class="en">A FIDO2 key or this device's passkey.</span></p>
    <p class="status" id="key-status">${profile.keys ? `Đã đăng ký ${profile.keys} khóa · ${profile.keys} key(s) enrolled` : 'Chưa đăng ký · Not enrolled'}</p>
    <button class="btn btn-primary" id="enroll-key" type="button">Đăng ký khóa <span class="en">Register a key</span></button>
    <div class="msg" id="key-msg" aria-live="polite"></div>
  </section>
  <section class="card">
    <h2>Khuôn mặt <span class="en">Face</span></h2>
    <p>Nhìn thẳng vào camera, đủ ánh sáng. Ảnh không được lưu, chỉ lưu mẫu sinh trắc đã mã hóa. <span class="en">Images are not stored; only an encrypted template is.</span></p>
    <p class="status" id="face-status">${profile.face ? 'Đã đăng ký · Enrolled' : 'Chưa đăng ký · Not enrolled'}</p>
    <div class="camera hidden" id="enroll-camera"><video id="enroll-video" autoplay muted playsinline></video></div>
    <button class="btn" id="start-face-enroll" type="button">Bật camera <span class="en">Start camera</span></button>
    <button class="btn btn-primary hidden" id="enroll-face" type="button">Chụp &amp; đăng ký <span class="en">Capture &amp; enroll</span></button>
    <div class="msg" id="face-msg" aria-live="polite"></div>
  </section>
</div>`,
  });
}

module.exports = { login, transfer, enroll, vnd };
