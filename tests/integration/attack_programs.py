"""The attack suite's hostile programs, one copy for every backend
(test_sandbox_attacks.py runs them under bwrap, test_docker_attacks.py in
containers). Each is the program text, or a function making it from what it
needs to name (a port, a path, a marker)."""


def network(tcp_port, udp_port):
    """Connects to a host listener on loopback (TCP), sends a datagram to
    one (UDP) and tries the internet. Prints TCP-CONNECTED / INTERNET when
    it gets through, "tcp failed ..." when not."""
    return f"""
import socket
try:
    s = socket.create_connection(("127.0.0.1", {tcp_port}), timeout=2)
    print("TCP-CONNECTED")
except OSError as e:
    print("tcp failed", e)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"UDP-LEAK", ("127.0.0.1", {udp_port}))
    print("udp sent locally")
except OSError as e:
    print("udp failed", e)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("INTERNET")
except OSError as e:
    print("internet failed", e)
"""


SECRET_PATHS = ["/etc/shadow", "/root/.bash_history", "/home", "/root", "/etc/ssl/private"]


def secrets(secret_file):
    """Reads (or lists) secret_file and SECRET_PATHS, printing "PATH denied
    ERROR" for each it cannot; then /etc's names and /etc/passwd."""
    return f"""
import os
for p in [{secret_file!r}] + {SECRET_PATHS!r}:
    try:
        if os.path.isdir(p):
            print(p, os.listdir(p))
        else:
            print(p, open(p).read())
    except OSError as e:
        print(p, "denied", type(e).__name__)
print(sorted(os.listdir("/etc")))
print(open("/etc/passwd").read())
"""


# The environment of the program and of every process it can see.
ENVIRONMENT = """
import os, glob
print(dict(os.environ))
for p in glob.glob('/proc/*/environ'):
    try:
        print(p, open(p, 'rb').read())
    except OSError as e:
        print(p, e)
"""

# The pids it can see: a list literal.
HOST_PROCESSES = "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"

# Forks until refused (children sleep): prints "fork failed after N".
FORK_BOMB = """
import os, time
n = 0
while n < 100000:
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    except OSError:
        print("fork failed after", n, flush=True)
        break
"""

MEMORY_BOMB = "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n"

CPU_SPIN = "while True:\n    pass\n"

# Python's stop signal under bwrap is SIGABRT (faulthandler says where it
# was): the program ignores both.
WALL_SIGTERM_IGNORED = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                        "signal.signal(signal.SIGABRT, signal.SIG_IGN)\n"
                        "print('ready', flush=True)\ntime.sleep(60)\n")


def daemon(marker):
    """Leaves a double-forked, setsid'd sleep named marker behind and exits."""
    return f"""
import os, time, subprocess
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", [{marker!r}, "300"])
    os._exit(0)
print("started", flush=True)
time.sleep(0.3)
"""


OUTPUT_FLOOD = "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n"

# Fills the scratch dir, then /tmp: prints "stopped N ERROR" (N MiB written).
DISK_FILL = """
import os
n = 0
try:
    with open("big", "wb") as f:
        while True:
            f.write(b"z" * (1 << 20)); f.flush(); n += 1
except OSError as e:
    print("stopped", n, e)
try:
    with open("/tmp/big", "wb") as f:
        while True:
            f.write(b"z" * (1 << 20)); f.flush()
except OSError as e:
    print("tmp stopped", e)
raise SystemExit(1)
"""

# Says it is up, then waits to be cancelled (or its client to vanish).
SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(120)\n"
