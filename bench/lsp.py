#!/usr/bin/env python3
"""Keystroke latency of `ftc lsp`: opens a library file of about 300 lines, then types into it one
character at a time (full-text `didChange`, as the VS Code extension sends), timing each change
until its diagnostics are published, and each hover. Not part of CI.

    python3 bench/lsp.py [path/to/ftc] [FILE.ftl] [--keys N]
"""
import json
import pathlib
import statistics
import subprocess
import sys
import time

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
ROOT = pathlib.Path(__file__).resolve().parent.parent
FTC = ARGS[0] if ARGS else str(ROOT / "target/release/ftc")
FILE = pathlib.Path(ARGS[1] if len(ARGS) > 1 else ROOT / "stdlib/objectives/rloo.ftl").resolve()
KEYS = int(sys.argv[sys.argv.index("--keys") + 1]) if "--keys" in sys.argv else 100


class Client:
    def __init__(self):
        self.proc = subprocess.Popen([FTC, "lsp", "--lib", str(ROOT / "stdlib")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.id = 0

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def read(self):
        length = 0
        while True:
            line = self.proc.stdout.readline().strip()
            if not line:
                break
            if line.startswith(b"Content-Length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.proc.stdout.read(length))

    def request(self, method, params):
        self.id += 1
        self.send({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params})
        while True:
            msg = self.read()
            if msg.get("id") == self.id:
                return msg.get("result")

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def diagnostics(self):
        while True:
            msg = self.read()
            if msg.get("method") == "textDocument/publishDiagnostics":
                return msg["params"]["diagnostics"]


def main():
    text = FILE.read_text()
    uri = FILE.as_uri()
    c = Client()
    c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    c.notify("textDocument/didOpen",
             {"textDocument": {"uri": uri, "languageId": "ftl", "version": 0, "text": text}})
    c.diagnostics()
    # Type a comment at the end of the first declaration's body, one character at a time.
    at = text.index("\n}\n") + 1
    typed = "    // the quick brown fox jumps over the lazy dog " * 4
    change, hover = [], []
    line = text[:at].count("\n") - 1
    for k in range(KEYS):
        new = text[:at] + typed[: k + 1] + "\n" + text[at:]
        t = time.perf_counter()
        c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": k + 1},
                                            "contentChanges": [{"text": new}]})
        c.diagnostics()
        change.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        c.request("textDocument/hover", {"textDocument": {"uri": uri},
                                         "position": {"line": line, "character": 8}})
        hover.append((time.perf_counter() - t) * 1e3)
    c.request("shutdown", None)
    c.notify("exit", None)
    c.proc.wait()
    print(f"{FILE.name}: {text.count(chr(10))} lines, {KEYS} keystrokes")
    for name, ts in (("change → diagnostics", change), ("hover", hover)):
        ts.sort()
        print(f"  {name:22s} median {statistics.median(ts):.2f} ms, p95 {ts[int(0.95 * len(ts))]:.2f} ms, "
              f"max {ts[-1]:.2f} ms")


if __name__ == "__main__":
    main()
