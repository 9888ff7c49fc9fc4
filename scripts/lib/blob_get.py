#!/usr/bin/env python3
"""A blob GET load client that reads like a registry client does: N
keep-alive connections GET one URL over and over for D seconds, reading
each body with 1 MiB reads (wrk reads 8 KiB at a time with an ioctl before
each read, which on a small machine costs more than the server it
measures). Checks each response's status and length; prints MB/s.

With --splice the body is not read into the client at all: it is spliced
from the socket into a pipe and from the pipe into /dev/null, so the
client's cost per byte is as small as the kernel allows and what is left
is the server's (and the loopback's) work.

    blob_get.py [--splice] URL CONNECTIONS SECONDS
"""
import fcntl
import os
import socket
import sys
import threading
import time
import urllib.parse


def main():
    args = sys.argv[1:]
    splice = args[0] == "--splice"
    if splice:
        args = args[1:]
    url, conns, seconds = args[0], int(args[1]), float(args[2])
    u = urllib.parse.urlsplit(url)
    request = f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode()
    received = [0] * conns
    failures = []
    stop = time.monotonic() + seconds

    def worker(i):
        try:
            s = socket.create_connection((u.hostname, u.port))
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            if splice:
                pipe_r, pipe_w = os.pipe()
                # 1 MiB a splice, as the reads above (the default pipe is 64 KiB)
                fcntl.fcntl(pipe_w, fcntl.F_SETPIPE_SZ, 1 << 20)
                devnull = os.open(os.devnull, os.O_WRONLY)
            while time.monotonic() < stop:
                s.sendall(request)
                head = b""
                while b"\r\n\r\n" not in head:
                    n = s.recv_into(view)
                    if n == 0:
                        raise RuntimeError("connection closed in the headers")
                    head += bytes(view[:n])
                status, rest = head.split(b"\r\n\r\n", 1)
                lines = status.split(b"\r\n")
                if not lines[0].startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(lines[0].decode())
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in lines
                    if line.lower().startswith(b"content-length:")
                )
                got = len(rest)
                while got < length:
                    if splice:
                        n = os.splice(s.fileno(), pipe_w, min(1 << 20, length - got))
                        left = n
                        while left:
                            left -= os.splice(pipe_r, devnull, left)
                    else:
                        n = s.recv_into(view, min(len(view), length - got))
                    if n == 0:
                        raise RuntimeError(f"body cut at {got} of {length} bytes")
                    got += n
                if got != length:
                    raise RuntimeError("pipelined bytes after the body")
                received[i] += length
        except Exception as e:  # reported once all threads end
            failures.append(str(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    if failures:
        sys.exit(f"blob_get: {failures[0]}")
    print(f"{sum(received) / elapsed / 1048576:.1f}")


if __name__ == "__main__":
    main()
