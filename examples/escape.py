# Hostile on purpose: each attempt below must fail inside the sandbox.
#   crucible run examples/escape.py
import os
import socket

def attempt(name, fn):
    try:
        fn()
        print(f"{name}: NOT contained")
    except Exception as e:
        print(f"{name}: contained ({type(e).__name__})")

attempt("read /etc/shadow", lambda: open("/etc/shadow").read())
attempt("list /root", lambda: os.listdir("/root"))
attempt("connect 127.0.0.1:22", lambda: socket.create_connection(("127.0.0.1", 22), timeout=1))
attempt("write /usr", lambda: open("/usr/crucible-was-here", "w"))
print("environment:", sorted(os.environ))
