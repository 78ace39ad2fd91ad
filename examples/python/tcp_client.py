# Python original of examples/tcp_client.lua: connects, sends 'Hello, Server!', prints the reply.
# Run: python3 examples/python/tcp_client.py [port]
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345
client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client_socket.connect(('127.0.0.1', port))
client_socket.send(b'Hello, Server!')
data = client_socket.recv(1024)
print(f"Received: {data.decode()}")
client_socket.close()
