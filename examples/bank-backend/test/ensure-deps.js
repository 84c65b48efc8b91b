'use strict';
// Makes node_modules/ what package-lock.json pins before the browser test runs
// (ctest's bank_backend_e2e calls it):
//
//   - Node older than 18 (package.json "engines"): fail with a clear message;
//   - node_modules current: nothing to do, no network;
//   - otherwise (missing, an interrupted install, a lockfile changed since the
//     last install, a --omit=dev install): `npm ci`, which starts from an
//     empty node_modules.
//
// "Current" means npm's own record of the installed tree,
// node_modules/.package-lock.json (written when an install completes), lists
// exactly the packages of package-lock.json at the same versions and
// integrity hashes, and every one of them is on disk at that version.
//
//   NPM=/usr/bin/npm node test/ensure-deps.js      (NPM defaults to npm on PATH)

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const EXAMPLE = path.resolve(__dirname, '..');
const MIN_NODE = 18;

function readJson(file) {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return null; }
}

// Why node_modules does not match the lockfile, or null when it does.
function staleReason() {
  const lock = readJson(path.join(EXAMPLE, 'package-lock.json'));
  if (!lock || !lock.packages) return 'package-lock.json is missing or unreadable';
  const installed = readJson(path.join(EXAMPLE, 'node_modules', '.package-lock.json'));
  if (!installed || !installed.packages) return 'node_modules/.package-lock.json is missing (no complete install)';

  const want = Object.keys(lock.packages).filter((k) => k !== '').sort();
  const have = Object.keys(installed.packages).sort();
  if (want.join('\n') !== have.join('\n')) return 'the installed packages are not the ones package-lock.json lists';
  for (const loc of want) {
    const w = lock.packages[loc];
    const h = installed.packages[loc];
    if (w.version !== h.version) return `${loc}: ${h.version} installed, ${w.version} pinned`;
    if (w.integrity && w.integrity !== h.integrity) return `${loc}: integrity differs from package-lock.json`;
    const onDisk = readJson(path.join(EXAMPLE, loc, 'package.json'));
    if (!onDisk || onDisk.version !== w.version) return `${loc}: not on disk at ${w.version}`;
  }
  return null;
}

const major = Number(process.versions.node.split('.')[0]);
if (major < MIN_NODE) {
  console.error(`ensure-deps: node ${process.versions.node} (${process.execPath}) is too old: the example needs Node >= ${MIN_NODE}`);
  process.exit(1);
}

const reason = staleReason();
if (!reason) {
  console.log('ensure-deps: node_modules matches package-lock.json');
  process.exit(0);
}
const npm = process.env.NPM || 'npm';
console.log(`ensure-deps: ${reason}: running ${npm} ci`);
const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: EXAMPLE, stdio: 'inherit' });
if (r.error) {
  console.error(`ensure-deps: cannot run ${npm}: ${r.error.message}`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
const after = staleReason();
if (after) {
  console.error(`ensure-deps: still stale after npm ci: ${after}`);
  process.exit(1);
}
