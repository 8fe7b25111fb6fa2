"""Fault campaign: exactly once under real faults, measured (issue 8).

Real worker nodes — ``manage.py supervise``, the supervisor with its ``qcluster``, as production runs them
(two separate ones, as two nodes, on PostgreSQL; ``--bare`` for plain ``qcluster``) — send Fortnox
journals of several companies, Dinero documents of several organisations and Nets Easy payouts
(→ Fortnox) over real HTTP to the sandboxes, which run in this process and answer a configurable share
of the API requests — posts and look-ups/reads alike — with a fault: the connection dropped before or
after the request took effect, a 5xx, an answer slower than Kontera's read timeout (the request still
takes effect), a 429. Meanwhile, in turn, a worker process, a whole cluster (its supervisor starts a new
one) or a whole node (supervisor and cluster; started again as systemd would) is killed with SIGKILL. Then the faults stop, the work settles (with a cap), and the
campaign counts from the sandboxes' own state and Kontera's database:

- posted:  vouchers Kontera recorded as posted;
- DOUBLE:  extra copies at the target (the same ``KONTERA-<id>`` reference more than once);
- LOST:    neither posted nor visibly waiting or failed with a reason (failed or waiting without a
           reason, back to draft, or recorded as posted while the target has no copy);
- STUCK:   in "sending" for longer than ``--stuck-after`` seconds when the campaign ends;
- UNSETTLED: queued and due, untouched since it last changed or fell due (the later) for longer than ``--stuck-after`` when the settle cap is
           reached (nothing takes the work: a frozen or silent cluster);
- unrecorded: at the target while Kontera says failed (sending it again would double it);
- faults injected by kind (posts/writes and reads separately), kills, and the recovery: the time from
  each kill to the next voucher Kontera records as posted (the last kill's and the worst).

Exit status 1 when double, lost, stuck, unsettled or unrecorded is above 0. Only processes this script started
are killed (each cluster runs in its own process group).

    .venv/bin/python bench/fault_campaign.py                      # SQLite, ≥ 1,000 vouchers, 1 node
    .venv/bin/python bench/fault_campaign.py --quick              # a smoke run (~200 vouchers, 3 kills)
    .venv/bin/python bench/fault_campaign.py --database-url postgres://postgres@127.0.0.1:5432/kontera_campaign
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.campaign_books import DINERO_CLIENT, FORTNOX_CLIENT, setup_dinero, setup_fortnox, setup_nets  # noqa: E402

FAULT_KINDS = ("drop_before", "drop_after_commit", "5xx", "timeout", "429")
REFERENCE = re.compile(r"KONTERA-(\d+)\b")


# --- faults --------------------------------------------------------------------------------------


class RandomFaults:
    """Stands in for a sandbox's FaultInjector: each API request gets a fault with probability ``rate``.

    Token endpoints are spared (a lost refresh answer is issue 8's cause 6, reported as "needs
    re-authorisation" by design; the campaign measures sending). Counts what it injected."""

    def __init__(self, name: str, *, rate: float, mix: dict[str, float], read_timeout: float,
                 rng: random.Random) -> None:
        self.name, self.rate, self.read_timeout, self.rng = name, rate, read_timeout, rng
        self.log: list[tuple[float, str, str, str, str]] = []  # when, sandbox, method, path, kind
        self.kinds, self.weights = list(mix), list(mix.values())
        self.enabled = False
        self.counts: Counter = Counter()
        self.requests: Counter = Counter()
        self._lock = threading.Lock()

    def take(self, method: str, path: str):
        from integrations.sandboxes.base import Fault

        if any(part in path for part in ("/oauth", "/token", "/connect/")):
            return None
        side = "read" if method.upper() == "GET" else "write"
        with self._lock:
            self.requests[side] += 1
            self.requests[("on", side)] += self.enabled
            if not self.enabled or self.rng.random() >= self.rate:
                return None
            kind = self.rng.choices(self.kinds, self.weights)[0]
            self.counts[(kind, side)] += 1
            self.log.append((time.time(), self.name, method, path, kind))
        if kind == "5xx":
            return Fault("status", status=self.rng.choice([500, 502, 503]), body="Service Unavailable")
        if kind == "429":
            return Fault("status", status=429, body="Too Many Requests")
        if kind == "timeout":  # answered after Kontera gave up; the request still takes effect
            return Fault("delay", seconds=self.read_timeout + 1.5)
        return Fault(kind)

    def inject(self, *args, **kwargs):  # the sandboxes' API, unused here
        raise NotImplementedError

    def clear(self) -> None:
        pass


def parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in FAULT_KINDS:
            raise SystemExit(f"unknown fault kind {name!r}; choose from {', '.join(FAULT_KINDS)}")
        mix[name] = float(weight or 1)
    return mix


# --- the clusters (nodes) ------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def descendants_of(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children_of(parent)]
        found.extend(frontier)
    return found


@dataclass
class Node:
    """One worker node in its own process group: ``manage.py supervise`` (the supervisor with its
    ``qcluster`` child, as the Procfile and the systemd unit run it) or, with ``--bare``, ``qcluster``
    alone. Only these processes are ever killed."""

    name: str
    command: list[str]
    env: dict
    log: Path
    supervised: bool = True
    process: subprocess.Popen | None = None
    restarts: int = 0
    killed_by_us: bool = False

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, env={**self.env, "KONTERA_NODE": self.name}, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_all(self) -> None:
        """kill -9 of the node's every process, as systemd's KillMode=control-group does: the supervisor
        starts its cluster in a process group of its own, so the group alone would leave it running."""
        if self.process is None:
            return
        for pid in [self.process.pid, *descendants_of(self.process.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self) -> None:
        if not self.alive():
            self.kill_all()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
        self.kill_all()

    def cluster(self) -> int | None:
        """The ``qcluster`` process: the supervisor's child, or the node's process itself when bare."""
        if not self.alive():
            return None
        if not self.supervised:
            return self.process.pid
        children = children_of(self.process.pid)
        return children[0] if children else None

    def workers(self) -> list[int]:
        """The worker processes: the sentinel's children other than the monitor and the pusher."""
        cluster = self.cluster()
        if cluster is None:
            return []
        from django_q.status import Stat

        try:
            stats = [s for s in Stat.get_all() if s.pid == cluster]
        except Exception:
            stats = []
        if stats:
            return [pid for pid in stats[0].workers if os.path.exists(f"/proc/{pid}")]
        sentinels = children_of(cluster)
        return [pid for sentinel in sentinels for pid in children_of(sentinel)]


# --- counting ------------------------------------------------------------------------------------


def at_targets(fortnox, dinero) -> tuple[Counter, dict]:
    """How often each voucher id appears at its target, read from the sandboxes' own state."""
    copies: Counter = Counter()
    where: dict[int, str] = {}
    for tenant in list(fortnox.tenants.values()):
        for voucher in list(tenant.vouchers):
            match = REFERENCE.search(voucher.comments or "")
            if match:
                copies[int(match.group(1))] += 1
                where[int(match.group(1))] = "fortnox"
    for org in list(dinero._organizations.values()):
        for item in list(org.purchase_vouchers.values()):
            match = REFERENCE.search(str(item.get("ExternalReference") or ""))
            if match:
                copies[int(match.group(1))] += 1
                where[int(match.group(1))] = "dinero"
    return copies, where


@dataclass
class Kill:
    at: float
    what: str
    recovered_after: float | None = None


@dataclass
class Campaign:
    nodes: list[Node]
    faults: list[RandomFaults]
    rng: random.Random
    kills: list[Kill] = field(default_factory=list)
    unexpected_exits: int = 0

    def keep_alive(self, restart_delay: float) -> None:
        """What systemd does (Restart=always): a node whose process is gone is started again."""
        for node in self.nodes:
            if not node.alive():
                if node.process is not None and not node.killed_by_us:
                    self.unexpected_exits += 1
                node.killed_by_us = False
                time.sleep(restart_delay)
                node.start()
                node.restarts += 1

    def kill_one(self, kind: str) -> None:
        """``worker``: kill -9 of one worker process; ``cluster``: of the whole ``qcluster`` process group
        (under a supervisor, the supervisor sees it and starts a new cluster); ``node``: of the supervisor
        and everything below it (the campaign starts the node again, as systemd's Restart=always would)."""
        node = self.rng.choice([n for n in self.nodes if n.alive()] or self.nodes)
        if kind == "worker":
            workers = node.workers()
            if workers:
                os.kill(self.rng.choice(workers), signal.SIGKILL)
                self.kills.append(Kill(time.time(), f"worker of {node.name}"))
                return
            kind = "cluster"
        cluster = node.cluster()
        if kind == "cluster" and node.supervised and cluster is not None:
            try:
                os.killpg(cluster, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.kills.append(Kill(time.time(), f"cluster of {node.name}"))
            return
        node.killed_by_us = True
        node.kill_all()
        self.kills.append(Kill(time.time(), f"node {node.name}" if node.supervised else f"cluster {node.name}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (a fresh database); default: a new SQLite file")
    parser.add_argument("--fortnox-companies", type=int, default=5)
    parser.add_argument("--journals", type=int, default=150, help="journals per Fortnox company")
    parser.add_argument("--dinero-orgs", type=int, default=4)
    parser.add_argument("--documents", type=int, default=50, help="expense documents per Dinero organisation")
    parser.add_argument("--payouts", type=int, default=10, help="Nets Easy payouts (each with --sales sales)")
    parser.add_argument("--sales", type=int, default=4)
    parser.add_argument("--fault-rate", type=float, default=0.12, help="share of API requests answered with a fault")
    parser.add_argument("--fault-seconds", type=float, default=120.0,
                        help="faults stay on at least this long (and until the last kill's effect shows)")
    parser.add_argument("--fault-cap", type=float, default=900.0,
                        help="faults stay on until the work settles, at most this many seconds from the start")
    parser.add_argument("--mix", default="drop_before=1,drop_after_commit=1,5xx=1,timeout=1,429=1",
                        help="fault kinds and their weights")
    parser.add_argument("--nodes", type=int, default=0, help="qcluster processes (default: 1 on SQLite, 2 on PostgreSQL)")
    parser.add_argument("--workers", type=int, default=3, help="workers per node")
    parser.add_argument("--kills", type=int, default=6,
                        help="kill -9s, in turn: a worker, a whole cluster, a whole node (with --bare: workers and clusters)")
    parser.add_argument("--bare", action="store_true",
                        help="run bare `qcluster` processes instead of `supervise` (the nodes as before issue 8)")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    parser.add_argument("--restart-delay", type=float, default=2.0, help="a killed cluster is started again after this")
    parser.add_argument("--settle-cap", type=float, default=420.0, help="seconds to wait for the work to settle")
    parser.add_argument("--stuck-after", type=float, default=90.0, help="'sending' longer than this at the end is stuck")
    parser.add_argument("--read-timeout", type=float, default=4.0, help="Kontera's HTTP read timeout in the campaign")
    parser.add_argument("--port", type=int, default=9510, help="the sandboxes' port")
    parser.add_argument("--explain", type=int, default=3, help="print the audit trail of this many doubled vouchers")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a smoke run: ~200 vouchers, 3 kills, short waits")
    if "--quick" in sys.argv[1:]:  # smaller defaults; anything given on the command line still wins
        parser.set_defaults(fortnox_companies=2, journals=60, dinero_orgs=2, documents=15, payouts=3, sales=3,
                            kills=3, kill_every=10.0, settle_cap=240.0, fault_seconds=40.0, fault_cap=400.0)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also into a file
    rng = random.Random(args.seed)
    mix = parse_mix(args.mix)
    tmp = Path(tempfile.mkdtemp(prefix="kontera-campaign-"))

    from cryptography.fernet import Fernet

    from integrations.sandboxes.base import ServerThread, mount
    from integrations.sandboxes.dinero import DineroSandbox
    from integrations.sandboxes.fortnox import FortnoxSandbox
    from integrations.sandboxes.netseasy import NetsEasySandbox

    fortnox, dinero, nets = FortnoxSandbox(), DineroSandbox(), NetsEasySandbox()
    fortnox.register_client(FORTNOX_CLIENT[0], FORTNOX_CLIENT[1], [FORTNOX_CLIENT[2]])
    dinero.register_client(*DINERO_CLIENT)
    injectors = []
    for name, sandbox in (("fortnox", fortnox), ("dinero", dinero), ("netseasy", nets)):
        sandbox.faults = RandomFaults(name, rate=args.fault_rate, mix=mix, read_timeout=args.read_timeout,
                                      rng=random.Random(rng.random()))
        injectors.append(sandbox.faults)
    server = ServerThread(mount({"/fortnox": fortnox, "/dinero": dinero, "/netseasy": nets}), port=args.port).start()
    url = server.url
    database_url = args.database_url or f"sqlite:///{tmp / 'campaign.sqlite3'}"
    env = {
        "DATABASE_URL": database_url, "REDIS_URL": "", "SECRET_KEY": "campaign",
        "KONTERA_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "EMAIL_URL": "dummymail://",
        "FORTNOX_API_URL": f"{url}/fortnox/3", "FORTNOX_OAUTH_URL": f"{url}/fortnox/oauth-v1",
        "FORTNOX_CLIENT_ID": FORTNOX_CLIENT[0], "FORTNOX_CLIENT_SECRET": FORTNOX_CLIENT[1],
        "FORTNOX_REDIRECT_URI": FORTNOX_CLIENT[2],
        "DINERO_API_URL": f"{url}/dinero", "DINERO_AUTH_URL": f"{url}/dinero/dineroapi/oauth/token",
        "DINERO_CLIENT_ID": DINERO_CLIENT[0], "DINERO_CLIENT_SECRET": DINERO_CLIENT[1],
        "NETS_EASY_API_URL": f"{url}/netseasy",
        "HTTP_CONNECT_TIMEOUT": "2", "HTTP_READ_TIMEOUT": str(args.read_timeout),
        "KONTERA_WORKERS": str(args.workers), "LOG_LEVEL": "WARNING", "KONTERA_NO_BOOTSTRAP": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from bookkeeping.models import Voucher, VoucherState
    from bookkeeping.services.vouchers import vouchers_queue

    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
        call_command("migrate", verbosity=0)  # flush empties what migrations seeded (groups, cache table rows)
    call_command("setup_schedules", stdout=io.StringIO())
    nodes_wanted = args.nodes or (2 if connection.vendor == "postgresql" else 1)
    today = timezone.localdate()
    started = time.time()
    nets_company = setup_nets(fortnox, nets, args, today)
    fortnox_companies = setup_fortnox(fortnox, args, today)
    dinero_companies = setup_dinero(dinero, args, today)
    queued = vouchers_queue(vouchers=list(Voucher.objects.filter(state=VoucherState.DRAFT)), actor="campaign")
    ours = Voucher.objects.exclude(kind="test")
    total = ours.count()
    print(f"database: {connection.vendor} ({'file ' + str(tmp) if not args.database_url else 'given URL'}); "
          f"sandboxes: {url}; nodes: {nodes_wanted} × {args.workers} workers "
          f"({'bare qcluster' if args.bare else 'supervise'}); load: {os.getloadavg()[0]:.2f}")
    print(f"set up in {time.time() - started:.0f} s: {total} vouchers — "
          f"{ours.filter(system='fortnox', source_system='ledger').count()} Fortnox journals "
          f"({len(fortnox_companies)} companies), {ours.filter(system='dinero').count()} Dinero documents "
          f"({len(dinero_companies)} organisations), {ours.filter(company_id=nets_company).count()} Nets Easy "
          f"sales and payouts → Fortnox; queued now: {queued.queued} (refused {queued.failed})")

    python = [sys.executable, str(ROOT / "manage.py")]
    node_command = [*python, "qcluster"] if args.bare else [*python, "supervise", "--stop-grace", "20"]
    nodes = [Node(f"node{i + 1}", node_command, {**os.environ}, tmp / f"node{i + 1}.log", supervised=not args.bare)
             for i in range(nodes_wanted)]
    campaign = Campaign(nodes=nodes, faults=injectors, rng=rng)
    for injector in injectors:
        injector.enabled = True
    chaos_started = time.time()
    for node in nodes:
        node.start()
    kinds = ["worker", "cluster"] if args.bare else ["worker", "cluster", "node"]
    try:
        # the chaos: faults on, a kill every --kill-every seconds, killed clusters started again
        next_kill = chaos_started + args.kill_every
        while len(campaign.kills) < args.kills:
            campaign.keep_alive(args.restart_delay)
            if time.time() >= next_kill:
                campaign.kill_one(kinds[len(campaign.kills) % len(kinds)])
                k = campaign.kills[-1]
                print(f"  {k.at - chaos_started:6.1f} s  kill -9 {k.what}; posted so far: "
                      f"{ours.filter(state=VoucherState.POSTED).count()} / {total}", flush=True)
                next_kill = time.time() + args.kill_every
            time.sleep(0.5)
        # keep the faults on until the work settles — every voucher sent under faults, so the share of
        # faulty answers over the whole run is about --fault-rate — but at least until the last kill has
        # had time to show its effect and for --fault-seconds; at most until --fault-cap
        last_kill = campaign.kills[-1].at if campaign.kills else chaos_started
        minimum = max(last_kill + args.kill_every, chaos_started + args.fault_seconds)
        while time.time() < chaos_started + args.fault_cap:
            campaign.keep_alive(args.restart_delay)
            if time.time() >= minimum and not ours.filter(state__in=[VoucherState.QUEUED, VoucherState.SENDING]).exists():
                break
            time.sleep(1.0)
        faults_off = time.time() - chaos_started
        for injector in injectors:
            injector.enabled = False
        settle_started = time.time()
        while time.time() < settle_started + args.settle_cap:
            campaign.keep_alive(args.restart_delay)
            if not ours.filter(state__in=[VoucherState.QUEUED, VoucherState.SENDING]).exists():
                break
            time.sleep(1.0)
        settled = time.time() - settle_started
    finally:
        for node in nodes:
            node.stop()
    report = count(ours, fortnox, dinero, campaign, args, total, chaos_started, (faults_off, settled), injectors)
    server.stop()
    with open(tmp / "faults.tsv", "w") as out:  # every injected fault, to line up with the audit trail
        for when, name, method, path, kind in sorted(f for injector in injectors for f in injector.log):
            out.write(f"{datetime.fromtimestamp(when, UTC):%H:%M:%S.%f}\t{name}\t{method}\t{path}\t{kind}\n")
    print(f"logs of the nodes: {tmp}")
    return 1 if report else 0


def count(ours, fortnox, dinero, campaign, args, total, chaos_started, phases, injectors) -> int:
    from django.utils import timezone

    from bookkeeping.models import AuditEvent
    from bookkeeping.models import VoucherState as S

    copies, _where = at_targets(fortnox, dinero)
    now = timezone.now()
    rows = list(ours.values_list("pk", "state", "last_error", "next_attempt_at", "updated_at", "posted_at", "system"))
    posted = [r for r in rows if r[1] == S.POSTED]
    double_vouchers = [pk for pk, _n in copies.items() if _n > 1]
    extra = sum(n - 1 for n in copies.values() if n > 1)
    stuck = [r for r in rows if r[1] == S.SENDING and (now - r[4]).total_seconds() > args.stuck_after]
    lost = []
    for pk, state, error, *_rest in rows:
        if state == S.POSTED:
            if copies[pk] == 0:
                lost.append((pk, "recorded as posted, not at the target"))
        elif state in (S.FAILED, S.AWAITING_AUTHORISATION) and not error:
            lost.append((pk, f"{state} without a reason"))
        elif state in (S.DRAFT,):
            lost.append((pk, "back to draft"))
    # queued, due and untouched for longer than --stuck-after when the cap is reached: nothing takes it.
    # Counted from when it fell due, if later than its last change: a voucher on a long back-off (8 min after
    # its fifth failure) that fell due seconds before the cap was taken for one nobody takes.
    unsettled = [r for r in rows if r[1] == S.QUEUED and (r[3] is None or r[3] <= now)
                 and (now - max(r[4], r[3] or r[4])).total_seconds() > args.stuck_after]
    unrecorded = [r for r in rows if r[1] in (S.FAILED, S.HANDLED_OUTSIDE) and copies[r[0]] > 0]
    waiting = [r for r in rows if r[1] not in (S.POSTED, S.SENDING, S.FAILED)]
    failed = [r for r in rows if r[1] == S.FAILED]
    # recovery: from each kill to the next voucher recorded as posted
    posted_times = sorted(r[5].timestamp() for r in posted if r[5])
    for kill in campaign.kills:
        after = [t for t in posted_times if t > kill.at]
        kill.recovered_after = (after[0] - kill.at) if after else None
    by_kind: Counter = Counter()
    requests: Counter = Counter()
    for injector in injectors:
        by_kind.update(injector.counts)
        requests.update(injector.requests)
    injected = sum(by_kind.values())
    print()
    print(f"vouchers:          {total} ({sum(1 for r in rows if r[6] == 'fortnox')} Fortnox, "
          f"{sum(1 for r in rows if r[6] == 'dinero')} Dinero)")
    print(f"posted:            {len(posted)}")
    print(f"failed (a reason): {len(failed)}   waiting (a reason): {len(waiting)}")
    print(f"DOUBLE:            {extra} extra copies of {len(double_vouchers)} vouchers"
          + (f"  e.g. KONTERA-{', KONTERA-'.join(map(str, double_vouchers[:8]))}" if double_vouchers else ""))
    for pk in double_vouchers[:args.explain]:  # what happened to a doubled voucher, in its own words
        print(f"  KONTERA-{pk}:")
        for at, action, message in AuditEvent.objects.filter(voucher_id=pk).order_by("id").values_list(
                "created_at", "action", "message"):
            if action.startswith(("state:", "remote:")):
                print(f"    {at:%H:%M:%S.%f} {action:24} {message[:110]}")
    print(f"LOST:              {len(lost)}" + (f"  e.g. {lost[:5]}" if lost else ""))
    print(f"STUCK:             {len(stuck)} (sending for more than {args.stuck_after:.0f} s)"
          + (f"  e.g. {[r[0] for r in stuck[:8]]}" if stuck else ""))
    print(f"UNSETTLED:         {len(unsettled)} (queued and due, untouched for more than {args.stuck_after:.0f} s)"
          + (f"  e.g. {[r[0] for r in unsettled[:8]]}" if unsettled else ""))
    print(f"unrecorded:        {len(unrecorded)} (at the target, failed here)"
          + (f"  e.g. {[r[0] for r in unrecorded[:8]]}" if unrecorded else ""))
    api = requests["read"] + requests["write"]
    api_on = requests[("on", "read")] + requests[("on", "write")]
    print(f"faults injected:   {injected} of the {api_on} API requests while faults were on "
          f"({100 * injected / max(api_on, 1):.1f} %; --fault-rate {100 * args.fault_rate:.0f} %), "
          f"{100 * injected / max(api, 1):.1f} % of all {api}")
    for kind in FAULT_KINDS:
        if by_kind[(kind, "write")] or by_kind[(kind, "read")]:
            print(f"  {kind:18} {by_kind[(kind, 'write')]:5} on posts/writes  {by_kind[(kind, 'read')]:5} on reads")
    kinds = Counter(k.what.split()[0] for k in campaign.kills)
    print(f"kills (kill -9):   {len(campaign.kills)} ({kinds['worker']} worker, {kinds['cluster']} whole cluster, "
          f"{kinds['node']} whole node); nodes started again {sum(n.restarts for n in campaign.nodes)}; unexpected exits "
          f"{campaign.unexpected_exits}")
    for kill in campaign.kills:
        after = f"{kill.recovered_after:.1f} s" if kill.recovered_after is not None else "never"
        print(f"  {datetime.fromtimestamp(kill.at, UTC):%H:%M:%S} {kill.what:22} next post after {after}")
    recoveries = [k.recovered_after for k in campaign.kills]
    last = recoveries[-1] if recoveries else None
    worst = None if any(r is None for r in recoveries) else max(recoveries, default=None)
    print(f"recovery:          last kill → next post {'never' if last is None else f'{last:.1f} s'}; worst "
          f"{'never' if worst is None else f'{worst:.1f} s'} (target < 30 s)")
    last_post = max(posted_times, default=chaos_started)
    print(f"time:              {last_post - chaos_started:.0f} s from the first node's start to the last post; "
          f"faults on for the first {phases[0]:.0f} s, then settling {phases[1]:.0f} s; load average {os.getloadavg()[0]:.2f}")
    return extra + len(lost) + len(stuck) + len(unsettled) + len(unrecorded)


if __name__ == "__main__":
    sys.exit(main())
