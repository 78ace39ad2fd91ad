// The seed's Node echo server, with the port as optional first argument.
const net = require('net');
const port = Number(process.argv[2]) || 3000;

const server = net.createServer((socket) => {
  console.log('Client connected');

  socket.on('data', (data) => {
    console.log('Received:', data.toString());
    socket.write('Echo: ' + data);
  });

  socket.on('close', () => {
    console.log('Client disconnected');
  });
});

server.listen(port, '0.0.0.0', () => {
  console.log('Server on port ' + port);
});
