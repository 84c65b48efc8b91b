'use strict';
// A minimal client for authd's socket protocol (docs/protocol.md).
//
//   frame   = 4-byte big-endian length, then that many bytes of UTF-8 JSON
//   request = {"v":1,"id":"<string>","op":"<name>", ...fields}
//   reply   = {"v":1,"id":"<same>","ok":true, ...} | {..., "ok":false, "error":{"code","message"}}
//
// Requests may be pipelined on one connection and replies come back in
// request order, so each connection keeps a FIFO of the requests still
// waiting for their reply and hands each reply to the oldest one.
//
//   const authd = new AuthdClient('/run/authd/authd.sock');
//   const r = await authd.call('assess', { txn });   // resolves to the reply object
//
// call() resolves with the reply when ok is true and rejects with an
// AuthdError (err.code = 'conflict', 'expired', ...) when ok is false.
// Business outcomes such as result "step_up", "deny" or "rejected" are
// successful replies: look at reply.result.

const net = require('node:net');

class AuthdError extends Error {
  constructor(code, message, reply) {
    super(`authd ${code}: ${message}`);
    this.name = 'AuthdError';
    this.code = code;
    this.reply = reply;
  }
}

class AuthdClient {
  /**
   * @param {string} socketPath  authd's Unix socket
   * @param {object} [opts]
   * @param {number} [opts.timeoutMs=30000]  per-request deadline; on expiry the
   *   connection is dropped (every pending request fails) and the next call
   *   reconnects. A face verification can take a second or two: keep this generous.
   */
  constructor(socketPath, { timeoutMs = 30000 } = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = timeoutMs;
    this.seq = 0;
    this.conn = null; // { socket, pending: [{id, resolve, reject, timer}], buf }
  }

  /** Sends one request; resolves with the reply (ok:true) or rejects. */
  call(op, fields = {}) {
    const id = `req-${++this.seq}`;
    const body = Buffer.from(JSON.stringify({ ...fields, v: 1, id, op }), 'utf8');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length, 0);

    const conn = this.conn || this.connect();
    return new Promise((resolve, reject) => {
      const entry = { id, op, resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        this.fail(conn, new AuthdError('timeout', `no reply to '${op}' within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      conn.pending.push(entry);
      conn.socket.write(Buffer.concat([header, body]));
    });
  }

  /** Closes the connection; pending requests fail. */
  close() {
    if (this.conn) this.fail(this.conn, new AuthdError('closed', 'client closed'));
  }

  connect() {
    const socket = net.createConnection(this.socketPath);
    const conn = { socket, pending: [], buf: Buffer.alloc(0) };
    this.conn = conn;
    socket.on('data', (chunk) => this.onData(conn, chunk));
    socket.on('error', (err) => this.fail(conn, new AuthdError('unavailable', err.message)));
    // authd closes idle connections after 60 s; the next call() reconnects.
    socket.on('close', () => this.fail(conn, new AuthdError('unavailable', 'connection closed by authd')));
    return conn;
  }

  onData(conn, chunk) {
    conn.buf = conn.buf.length ? Buffer.concat([conn.buf, chunk]) : chunk;
    // Replies have no size limit (an audit export can be large): accept any 32-bit length.
    while (conn.buf.length >= 4) {
      const len = conn.buf.readUInt32BE(0);
      if (conn.buf.length < 4 + len) break;
      const payload = conn.buf.subarray(4, 4 + len);
      conn.buf = conn.buf.subarray(4 + len);
      let reply;
      try {
        reply = JSON.parse(payload.toString('utf8'));
      } catch (e) {
        return this.fail(conn, new AuthdError('internal', `unparseable reply: ${e.message}`));
      }
      const entry = conn.pending.shift();
      if (!entry) return this.fail(conn, new AuthdError('internal', 'reply with no request pending'));
      clearTimeout(entry.timer);
      // Replies come back in order. A reply whose id is null answers a frame
      // authd could not read; anything else with a different id means we lost track.
      if (reply.id !== entry.id && reply.id !== null) {
        entry.reject(new AuthdError('internal', `reply id ${reply.id} for request ${entry.id}`));
        return this.fail(conn, new AuthdError('internal', 'reply out of order'));
      }
      if (reply.ok) entry.resolve(reply);
      else entry.reject(new AuthdError(reply.error?.code || 'internal', reply.error?.message || 'error', reply));
    }
  }

  fail(conn, err) {
    if (this.conn === conn) this.conn = null;
    for (const entry of conn.pending.splice(0)) {
      clearTimeout(entry.timer);
      entry.reject(err);
    }
    conn.socket.destroy();
  }
}

module.exports = { AuthdClient, AuthdError };
