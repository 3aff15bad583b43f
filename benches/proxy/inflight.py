#!/usr/bin/env python3
"""Every client's response in flight at once: the proxy's memory per response being sent.

    inflight.py PORT CONNECTIONS PATH [HEADER]

CONNECTIONS clients each send one request together and read the response slowly through a
small receive buffer, so that no response finishes before the others have started: the
worst case of that many connections for peak memory (with wrk, how much the responses
overlap varies from run to run). Prints wrk's summary lines, which run.sh reads.
"""
import socket
import sys
import threading
import time

port, conns, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
header = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
request = f"GET {path} HTTP/1.1\r\nHost: example.cn\r\nConnection: close\r\n"
request += (header + "\r\n" if header else "") + "\r\n"
received = []
start = threading.Barrier(conns)


def client():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.connect(("127.0.0.1", port))
    start.wait()
    s.sendall(request.encode())
    total = 0
    while True:
        data = s.recv(4096)
        if not data:
            break
        total += len(data)
        time.sleep(0.002)
    s.close()
    received.append(total)


began = time.monotonic()
threads = [threading.Thread(target=client) for _ in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - began
print(f"  {len(received)} requests in {took:.2f}s, {sum(received) / 1048576:.2f}MB read")
print(f"Requests/sec: {len(received) / took:.2f}")
print(f"Transfer/sec: {sum(received) / took / 1048576:.2f}MB")
