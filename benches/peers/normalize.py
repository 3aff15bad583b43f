#!/usr/bin/env python3
"""Reads dig's output on stdin and prints what the answer check compares, on one line:
rcode, the AA flag, and the answer and authority sections as name/type/data (sorted,
lower-case), without TTLs, and without the apex NS some servers add to positive answers. The TTLs and the ECS scope follow after a '#', for the eye."""
import re
import sys

status, flags, records, ttls, scope = "?", "", [], [], "-"
section = None
for line in sys.stdin:
    line = line.rstrip("\n")
    m = re.search(r"status: (\w+)", line)
    if m:
        status = m.group(1)
    m = re.match(r";; flags: ([a-z ]+);", line)
    if m:
        flags = "aa" if "aa" in m.group(1).split() else "-"
    m = re.match(r"; CLIENT-SUBNET: (\S+)", line)
    if m:
        scope = m.group(1).rsplit("/", 1)[-1]
    m = re.match(r";; (\w+) SECTION:", line)
    if m:
        section = m.group(1)
        continue
    if not line or line.startswith(";"):
        if not line:
            section = None
        continue
    if section in ("ANSWER", "AUTHORITY"):
        parts = line.split()
        if len(parts) >= 5:
            name, ttl, _cls, rtype = parts[0], parts[1], parts[2], parts[3]
            data = " ".join(parts[4:])
            if rtype == "SOA":
                data = " ".join(parts[4:7])
            if section == "AUTHORITY" and rtype == "NS" and status == "NOERROR":
                # BIND's default adds the apex NS to positive answers: a choice, not data.
                continue
            records.append(f"{section[:2]}:{name.lower()}/{rtype}/{data.lower()}")
            ttls.append(ttl)
records.sort()
print(f"{status} {flags} {' '.join(records)}  # ttl {','.join(ttls) or '-'} scope {scope}")
