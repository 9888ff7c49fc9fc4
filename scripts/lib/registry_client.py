"""A small registry client for the benchmark scripts that fill a registry
with many repositories and tags: one keep-alive connection to 127.0.0.1,
basic auth when given, a failed request ends the script naming it."""
import base64
import hashlib
import http.client
import sys


def sha(blob):
    return "sha256:" + hashlib.sha256(blob).hexdigest()


class Registry:
    def __init__(self, port, cred=""):
        self.conn = http.client.HTTPConnection("127.0.0.1", int(port))
        self.auth = {}
        if cred:
            token = base64.b64encode(cred.encode()).decode()
            self.auth = {"Authorization": "Basic " + token}

    def req(self, method, path, body=b"", headers=None):
        self.conn.request(method, path, body=body, headers={**self.auth, **(headers or {})})
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
        return r
