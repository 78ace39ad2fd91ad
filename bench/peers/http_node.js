// Node peer of examples/http_hello.lua using the net module (not http), so it
// does the same wire work: keep-alive HTTP/1.1, fixed response, Connection:
// close and Content-Length bodies honoured, one write per 'data' event.
// Run: node bench/peers/http_node.js PORT
'use strict';
const net = require('net');
const port = Number(process.argv[2]) || 8080;
const body = 'Hello, World!\n';
const response = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ' +
  body.length + '\r\n\r\n' + body);
const headerRe = /^([^:]+):\s*(.*?)\s*$/;

const server = net.createServer({ noDelay: true }, (conn) => {
  let rest = '';
  let skip = 0;
  conn.setNoDelay(true);
  conn.on('data', (chunk) => {
    let buf = rest.length ? rest + chunk.toString('latin1') : chunk.toString('latin1');
    if (buf.length > 1024 * 1024) { conn.destroy(); return; }
    let pos = 0;
    let n = 0;
    let close = false;
    while (true) {
      if (skip > 0) {
        const avail = buf.length - pos;
        if (avail <= skip) { skip -= avail; pos = buf.length; break; }
        pos += skip; skip = 0;
      }
      const e = buf.indexOf('\r\n\r\n', pos);
      if (e < 0) break;
      let length = 0;
      const hs = buf.indexOf('\r\n', pos) + 2;
      const lines = hs < e ? buf.slice(hs, e).split('\r\n') : [];
      for (const header of lines) {
        const m = headerRe.exec(header);
        if (!m) continue;
        const name = m[1].toLowerCase();
        if (name === 'content-length') length = Number(m[2]) || 0;
        if (name === 'connection' && m[2].toLowerCase() === 'close') close = true;
      }
      n++;
      pos = e + 4;
      if (length > 0) skip = length;
      if (close) break;
    }
    rest = close ? '' : buf.slice(pos);
    if (n === 1) conn.write(response);
    else if (n > 1) conn.write(Buffer.concat(Array(n).fill(response)));
    if (close) conn.end();
  });
  conn.on('error', () => conn.destroy());
});
server.listen({ port, host: '0.0.0.0', backlog: 511 }, () => {
  console.log('node HTTP on port ' + port);
});
