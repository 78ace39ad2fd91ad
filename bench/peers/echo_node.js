// Node echo server for the stream test: pipe() gives backpressure.
// Run: node bench/peers/echo_node.js PORT
'use strict';
const net = require('net');
const port = Number(process.argv[2]) || 3000;
net.createServer({ noDelay: true }, (conn) => {
  conn.on('error', () => conn.destroy());
  conn.pipe(conn);
}).listen({ port, host: '0.0.0.0', backlog: 511 }, () => {
  console.log('node echo on port ' + port);
});
