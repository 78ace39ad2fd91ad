# Python original of examples/tcp_server.lua: accepts one client, prints its message, replies, exits.
# Run: python3 examples/python/tcp_server.py [port]
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345
server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('127.0.0.1', port))
server_socket.listen(5)
print(f"Listening on 127.0.0.1:{port}")
client_socket, address = server_socket.accept()
data = client_socket.recv(1024)
print(f"Received: {data.decode()}")
client_socket.send(b'Hello, Client!')
client_socket.close()
server_socket.close()
