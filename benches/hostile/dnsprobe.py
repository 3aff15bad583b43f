#!/usr/bin/env python3
"""Sends one DNS query over UDP and prints the query and response sizes.

    dnsprobe.py PORT NAME TYPE [EDNS_SIZE]     (EDNS_SIZE 0: no OPT record)

Prints: query_bytes response_bytes ratio tc ancount rcode. Standard library only, so
that benches/hostile/ needs nothing beyond python3 and the packages it names.
"""
import random
import socket
import struct
import sys

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "ANY": 255}


def query(name: str, qtype: int, edns: int) -> bytes:
    qid = random.randrange(65536)
    header = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if edns else 0)
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    question = qname + struct.pack(">HH", qtype, 1)
    opt = b"\0" + struct.pack(">HHIH", 41, edns, 0, 0) if edns else b""
    return header + question + opt


def main() -> None:
    port, name, qtype = int(sys.argv[1]), sys.argv[2], TYPES[sys.argv[3]]
    edns = int(sys.argv[4]) if len(sys.argv) > 4 else 1232
    q = query(name, qtype, edns)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q, ("127.0.0.1", port))
        r, _ = s.recvfrom(65535)
    if r[:2] != q[:2]:
        sys.exit("response ID does not match the query's")
    flags, ancount = struct.unpack(">H", r[2:4])[0], struct.unpack(">H", r[6:8])[0]
    tc = "TC" if flags & 0x0200 else "-"
    print(f"{len(q)} {len(r)} {len(r) / len(q):.1f} {tc} {ancount} {flags & 0xF}")


if __name__ == "__main__":
    main()
