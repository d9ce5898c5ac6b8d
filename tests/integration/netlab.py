"""Network namespaces for tests that put evertd and real BitTorrent clients on separate
addresses, and the processes that run in them.

The test runs in a network namespace of its own (ctest starts it under `unshare --net`;
`Lab.ensure_private_namespace()` re-executes a test run by hand that way): the "hub". The hub
holds a bridge whose address is the seed's (SEED_ADDR), so evertd binds there, and every client
host is a named namespace (`ip netns`) joined to the bridge by a veth pair, with an address of
its own (10.99.0.11, .12, ...). Nothing is added to the machine's own namespace but those
names under /run/netns, which carry the test's PID (evm<PID>h<N>) so that parallel runs never
collide. A "lossy" host is joined instead by tests/tools/linkem (two TUN devices and a delay
and loss in between, as this kernel has no sch_netem), on 10.98.<N>.2 with a route to the
bridge's subnet through it.

Everything is removed by name and PID: `Lab.close()` stops the processes it started (SIGTERM,
then SIGKILL after a bounded wait) and deletes its namespaces, also when a test fails; every
process also gets SIGKILL from the kernel if the thread that started it dies (setpriv
--pdeathsig), linkem exits when its standard input closes, and a new Lab removes the namespaces
of earlier runs whose PID is gone (a run killed by ctest's timeout)."""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

SEED_ADDR = "10.99.0.1"
SUBNET = "10.99.0.0/24"
CLONE_NEWNET = 0x40000000
NAME_RE = re.compile(r"^evm(\d+)[a-z]\d+$")
_libc = ctypes.CDLL(None, use_errno=True)


def run(*argv, check=True):
    """Runs a short command (ip, setpriv) with a bounded wait; returns its output."""
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.stdout


def interfaces():
    """The network interfaces of this process's namespace (/proc/self/net/dev is per namespace,
    unlike /sys/class/net, which shows the namespace /sys was mounted in)."""
    with open("/proc/self/net/dev") as f:
        return [line.split(":")[0].strip() for line in f.readlines()[2:]]


def own_namespace_is_private():
    """True in a namespace that holds nothing but its loopback (unshare --net makes one): the
    machine's own always has more. A Lab leaves only the loopback behind when it closes."""
    return interfaces() == ["lo"]


def ensure_private_namespace():
    """A test started by hand (not by ctest) re-executes itself in a network namespace of its
    own, so that its bridge and addresses never touch the machine's."""
    if not own_namespace_is_private():
        if os.environ.get("EVERT_NETLAB_REEXEC"):
            raise RuntimeError("unshare --net gave a namespace with interfaces: %s" % interfaces())
        os.environ["EVERT_NETLAB_REEXEC"] = "1"
        os.execvp("unshare", ["unshare", "--net", sys.executable] + sys.argv)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale_namespaces():
    """Deletes the namespaces of earlier runs whose test process is gone, after killing what
    still runs in them (processes those runs started)."""
    for line in run("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = NAME_RE.match(name)
        if not m or pid_alive(int(m.group(1))):
            continue
        for pid in run("ip", "netns", "pids", name, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run("ip", "netns", "del", name, check=False)


def socket_in(netns, family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A socket created in the network namespace `netns` (a path under /run/netns): a short-lived
    thread enters it (setns changes only the calling thread) and makes the socket, which stays in
    that namespace wherever it is used. This is how the test reaches a client's own loopback
    (Transmission's RPC, qBittorrent's WebUI) without changing what they listen on."""
    out = {}

    def work():
        fd = os.open(netns, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + netns)
            out["socket"] = socket.socket(family, kind)
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["socket"]


class Host:
    """A client's namespace: its name, path and address."""

    def __init__(self, lab, name, addr, lossy=False):
        self.lab = lab
        self.name = name
        self.netns = "/run/netns/" + name
        self.addr = addr
        self.lossy = lossy

    def connect(self, port, host="127.0.0.1", timeout=10):
        s = socket_in(self.netns)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except OSError:
            s.close()
            raise
        return s

    def spawn(self, argv, log=None, home=None, env=None, **kw):
        """Starts argv in this namespace; with `home`, HOME (and so the XDG dirs under it) is
        that folder, so a client reads and writes no state of the machine's user or of another
        test (aria2's DHT table, ~/.rtorrent.rc, Transmission's default download dir)."""
        if home:
            os.makedirs(home, exist_ok=True)
            env = dict(env or os.environ, HOME=home)
            for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_DOWNLOAD_DIR"):
                env.pop(k, None)
        return self.lab.spawn(argv, log=log, netns=self.name, env=env, **kw)


class Lab:
    def __init__(self, root, linkem=None):
        if not own_namespace_is_private():
            raise RuntimeError("run this test in a network namespace of its own (unshare --net); "
                               "this one has %s" % interfaces())
        self.root = root
        self.linkem = linkem
        self.tag = "evm%d" % os.getpid()
        self.hosts = []
        self.procs = []  # (Popen, name) of everything started, stopped in reverse order
        self.linkems = []
        self.next_host = 1
        remove_stale_namespaces()
        run("ip", "link", "set", "lo", "up")
        run("ip", "link", "add", "br0", "type", "bridge")
        # A fixed MAC: a bridge otherwise takes the lowest of its ports' MACs, so a client
        # added later could change it under the feet of the clients that cached the old one in
        # their ARP tables (their packets to the seed then go astray until the entry expires).
        run("ip", "link", "set", "br0", "address", "02:00:0a:63:00:01")
        run("ip", "addr", "add", SEED_ADDR + "/24", "dev", "br0")
        run("ip", "link", "set", "br0", "up")
        # The hub routes between the bridge and the lossy hosts' links (its namespace is the
        # test's own: the machine's forwarding is untouched).
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")

    def spawn(self, argv, log=None, netns=None, stdin=subprocess.DEVNULL, stdout=None,
              env=None, cwd=None):
        """Starts argv (in `netns` when given) with its output in the file `log`; it gets
        SIGKILL if this test's thread that started it dies (setpriv --pdeathsig)."""
        full = ["setpriv", "--pdeathsig", "KILL", "--"] + list(argv)
        if netns:
            full = ["ip", "netns", "exec", netns] + full
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            p = subprocess.Popen(full, stdin=stdin, stdout=stdout if stdout else out,
                                 stderr=out, env=env, cwd=cwd)
        finally:
            if log:
                out.close()
        self.procs.append((p, argv[0]))
        return p

    def add_host(self):
        """A client namespace on the bridge with the next address (10.99.0.11, ...)."""
        n = self.next_host
        self.next_host += 1
        name = "%sh%d" % (self.tag, n)
        host = Host(self, name, "10.99.0.%d" % (10 + n))
        run("ip", "netns", "add", name)
        self.hosts.append(host)
        run("ip", "link", "add", "vh%d" % n, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("ip", "link", "set", "vh%d" % n, "master", "br0", "up")
        run("ip", "-n", name, "addr", "add", host.addr + "/24", "dev", "eth0")
        run("ip", "-n", name, "link", "set", "eth0", "up")
        run("ip", "-n", name, "link", "set", "lo", "up")
        run("ip", "-n", name, "route", "add", "default", "via", SEED_ADDR)  # to lossy hosts
        return host

    def add_lossy_host(self, delay_ms, loss, seed, max_seconds):
        """A client namespace reached through linkem: `delay_ms` one way in each direction,
        `loss` (0..1) of the packets dropped in each direction, for at most `max_seconds`."""
        n = self.next_host
        self.next_host += 1
        name = "%sl%d" % (self.tag, n)
        host = Host(self, name, "10.98.%d.2" % n, lossy=True)
        run("ip", "netns", "add", name)
        self.hosts.append(host)
        host.linkem_log = os.path.join(self.root, "linkem-%d.log" % n)
        log = open(host.linkem_log, "ab")
        p = subprocess.Popen([self.linkem, "--a", "lk%d" % n, "--b", "eth0@" + host.netns,
                              "--delay-ms", str(delay_ms), "--loss", str(loss), "--seed", str(seed),
                              "--max-seconds", str(max_seconds)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=log, text=True)
        log.close()
        self.linkems.append(p)
        line = p.stdout.readline()  # "ready" once both devices exist (or EOF when it failed)
        if line.strip() != "ready":
            p.wait(timeout=10)
            with open(os.path.join(self.root, "linkem-%d.log" % n)) as f:
                raise RuntimeError("linkem did not start: " + f.read())
        run("ip", "addr", "add", "10.98.%d.1/24" % n, "dev", "lk%d" % n)
        run("ip", "link", "set", "lk%d" % n, "up")
        run("ip", "-n", name, "addr", "add", host.addr + "/24", "dev", "eth0")
        run("ip", "-n", name, "link", "set", "eth0", "up")
        run("ip", "-n", name, "link", "set", "lo", "up")
        run("ip", "-n", name, "route", "add", SUBNET, "dev", "eth0")
        host.linkem = p
        return host

    def wait_reachable(self, host, port, timeout=10):
        """Polls until `host` can open a TCP connection to SEED_ADDR:port (the link is up)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                host.connect(port, SEED_ADDR, timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("%s cannot reach %s:%d" % (host.name, SEED_ADDR, port))
                time.sleep(0.02)

    @staticmethod
    def stop(p, timeout=15):
        """Stops one process this lab started: SIGTERM, then SIGKILL after `timeout` s."""
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    @staticmethod
    def linkem_losses(host):
        """The packets the host's link dropped by its --loss, as dicts (direction, t on the
        monotonic clock, proto, src, dst, len, head: the payload's first bytes in hex)."""
        out = []
        try:
            with open(host.linkem_log, errors="replace") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 7 or parts[0] != "lost" or parts[3] not in ("udp", "tcp"):
                        continue
                    src, dst = parts[4].split(">")
                    out.append({"direction": parts[1], "t": float(parts[2][2:]),
                                "proto": parts[3], "src": src, "dst": dst,
                                "len": int(parts[5][4:]), "head": parts[6][5:]})
        except (OSError, ValueError, AttributeError):
            pass
        return out

    def linkem_counters(self, host):
        """Stops the host's linkem (closing its standard input) and returns its counters."""
        p = host.linkem
        try:
            out, _ = p.communicate(timeout=15)  # closes its standard input: linkem ends
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None

    def close(self):
        for p, _ in reversed(self.procs):
            self.stop(p)
        for p in self.linkems:
            if p.poll() is None:
                if p.stdin and not p.stdin.closed:
                    p.stdin.close()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for h in self.hosts:
            # Anything still in the namespace was started by this test (by PID, never by name).
            for pid in run("ip", "netns", "pids", h.name, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", h.name, check=False)
        run("ip", "link", "del", "br0", check=False)


def which(name):
    path = shutil.which(name)
    if not path:
        raise RuntimeError(name + " is not installed (scripts/deps installs it)")
    return path
