"""asyncio peer of examples/http_hello.lua: an asyncio.Protocol (the fast path
of the standard event loop), keep-alive HTTP/1.1, fixed response, Connection:
close and Content-Length bodies honoured, one write per data_received.
Run: python3 bench/peers/http_asyncio.py PORT"""
import asyncio
import re
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
BODY = b"Hello, World!\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
HEADER = re.compile(rb"^([^:]+):\s*(.*?)\s*$")


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.rest = b""
        self.skip = 0

    def data_received(self, data):
        buf = self.rest + data if self.rest else data
        if len(buf) > 1024 * 1024:
            self.transport.close()
            return
        pos = n = 0
        close = False
        while True:
            if self.skip:
                avail = len(buf) - pos
                if avail <= self.skip:
                    self.skip -= avail
                    pos = len(buf)
                    break
                pos += self.skip
                self.skip = 0
            e = buf.find(b"\r\n\r\n", pos)
            if e < 0:
                break
            length = 0
            hs = buf.find(b"\r\n", pos) + 2
            if hs < e:
                for header in buf[hs:e].split(b"\r\n"):
                    m = HEADER.match(header)
                    if not m:
                        continue
                    name = m.group(1).lower()
                    if name == b"content-length":
                        try:
                            length = int(m.group(2))
                        except ValueError:
                            length = 0
                    if name == b"connection" and m.group(2).lower() == b"close":
                        close = True
            n += 1
            pos = e + 4
            if length > 0:
                self.skip = length
            if close:
                break
        self.rest = b"" if close else buf[pos:]
        if n:
            self.transport.write(RESPONSE * n)
        if close:
            self.transport.close()


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "0.0.0.0", PORT, backlog=511, reuse_address=True)
    print("asyncio HTTP on port %d" % PORT, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
