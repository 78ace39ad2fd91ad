// The seed's Node echo client, with the port as optional first argument.
const net = require('net');
const port = Number(process.argv[2]) || 3000;

const client = net.createConnection({ port: port, host: '127.0.0.1' }, () => {
  console.log('Connected');
  client.write('Hello Server!');
});

client.on('data', (data) => {
  console.log('Reply:', data.toString());
  client.end();
});
