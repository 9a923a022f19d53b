#!/usr/bin/env python3
"""Boot a kernel under QEMU and collect what the guest reports.

  ksmt.py test  --kernel BZIMAGE --initrd INITRD [--only a,b] [--repeat N] [--jobs N]
               [--logdir D]
  ksmt.py boot  --kernel BZIMAGE --initrd INITRD --mode demo|shell|bench|nested [--args a,b]
               [--nested SECS]   (demo: then the nested QEMU workload, ksm_nested.sh)

`test` boots once per test of tests.list (skipping those in skip.list),
turns every result into PASS/FAIL/SKIP lines and ends with the closing line
`N passed, N failed[, N skipped]`; it exits 1 if anything failed. With
--repeat N it goes through the list N times, a fresh boot for every test
each time, tags each line with its run, and prints before the closing line
how many of the N boots of each test passed (nothing failed in them).
--jobs N boots N guests at a time (each QEMU has two vCPUs, so on a
2-core host that trades some per-boot speed for wall time); lines still
come in list order.
--record FILE appends one line per finished boot (run, test, verdict) to
FILE, keyed by the git trees the kernel and guest are built from; boots
FILE already holds for the same trees are not repeated but counted, so a
long --repeat run can stop (a session's end) and be resumed, on this
machine or a fresh clone, and still print one matrix for all its runs.
"""
import argparse
import collections
import concurrent.futures
import hashlib
import itertools
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Swap disks of boots that run at the same time (--jobs) need their own names.
SWAP_SEQ = itertools.count()

# Kernel reports that fail a run wherever they appear in the guest's log.
SPLAT = re.compile(
    r"BUG: |WARNING: |Kernel panic|UBSAN|possible circular locking|"
    r"possible recursive locking|inconsistent lock state|Oops|"
    r"general protection fault|INFO: task .* blocked for more|"
    r"suspicious RCU usage|kernel BUG at|list_add corruption|"
    r"list_del corruption|DEBUG_LOCKS_WARN_ON|rcu_sched self-detected stall|"
    r"rcu: INFO|soft lockup|hard LOCKUP|Call Trace:")
TAP = re.compile(r"^(not ok|ok) (\d+)(?: -)? ?(.*?)(?:\s+#\s*(SKIP|skip|TODO)\b(.*))?$")
KUNIT = re.compile(r"^(\s*)(not ok|ok) (\d+) (\S+)(?:\s+#\s*(SKIP|skip)\b(.*))?$")
STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def read_table(path, ncols):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(None, ncols - 1)
            rows.append(parts + [""] * (ncols - len(parts)))
    return rows


def qemu_cmd(a, append, swap):
    mem = a.node_mb
    cmd = ["qemu-system-x86_64", "-accel", a.accel, "-smp", "2,sockets=2,cores=1,threads=1",
           "-m", "%dM,slots=4,maxmem=%dM" % (2 * mem, 2 * mem + 2048),
           "-object", "memory-backend-ram,id=m0,size=%dM" % mem,
           "-numa", "node,nodeid=0,cpus=0,memdev=m0",
           "-object", "memory-backend-ram,id=m1,size=%dM" % mem,
           "-numa", "node,nodeid=1,cpus=1,memdev=m1",
           "-kernel", a.kernel, "-initrd", a.initrd,
           "-append", append, "-no-reboot", "-nic", "none"]
    if a.icount:
        cmd += ["-icount", "shift=1,sleep=off"]
    if swap:
        cmd += ["-drive", "file=%s,format=raw,if=virtio" % swap]
    if a.dimm_mb:
        # A cold-plugged DIMM on node 1: Linux finds it through ACPI memory
        # hotplug and adds its blocks offline (memhp_default_state), so only a
        # test that onlines them (ksm_phys_tests hot_remove) ever uses it.
        cmd += ["-object", "memory-backend-ram,id=hp0,size=%dM" % a.dimm_mb,
                "-device", "pc-dimm,id=dimm0,memdev=hp0,node=1"]
    if a.gdb:
        cmd += ["-s"]
    cmd += a.qemu_extra.split() if a.qemu_extra else []
    return cmd


def kernel_words(a, mode, extra):
    # pci=noacpi: route PCI interrupts without ACPI's _PRT method, whose AML
    # loop times out when TCG runs slowly on a loaded host and leaves the
    # boot hanging. NUMA still comes from the ACPI SRAT.
    words = ["console=ttyS0", "loglevel=4", "log_buf_len=8M", "panic=-1",
             "oops=panic", "pci=noacpi", "KSMT_MODE=" + mode]
    return " ".join(words + (a.append.split() if a.append else []) + extra)


def boot(a, mode, extra, timeout, log, interactive=False):
    """One QEMU run; returns (console text, seconds, timed_out)."""
    swap = None
    if a.swap:
        # A fresh sparse swap disk for each boot, beside the log.
        swap = os.path.join(a.logdir, "swap-%d-%d.img" % (os.getpid(), next(SWAP_SEQ)))
        with open(swap, "wb") as f:
            f.truncate(a.swap_mb << 20)
    try:
        return run_qemu(a, kernel_words(a, mode, extra), swap, timeout, log,
                        interactive)
    finally:
        if swap:
            os.unlink(swap)


def run_qemu(a, append, swap, timeout, log, interactive):
    cmd = qemu_cmd(a, append, swap)
    if interactive:
        return subprocess.call(cmd + ["-nographic"])
    cmd += ["-display", "none", "-monitor", "none", "-serial", "stdio"]
    start = time.time()
    chunks = []
    with open(log, "wb") as out:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)

        # With --quiet-dmesg the terminal gets neither the harness's
        # `@@@` markers nor anything from the guest's dmesg dump on (its
        # poweroff included); the log file gets everything.
        hide = {"on": False}

        def pump():
            for line in iter(p.stdout.readline, b""):
                out.write(line)
                out.flush()
                chunks.append(line)
                if a.quiet_dmesg and line.startswith(b"@@@ DMESG-BEGIN"):
                    hide["on"] = True
                if a.echo and not hide["on"] and \
                        not (a.quiet_dmesg and line.startswith(b"@@@ ")) and \
                        not (a.mode == "demo" and line.startswith((b"NESTED ", b"BENCH "))):
                    sys.stdout.buffer.write(line)
                    sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        while p.poll() is None:
            elapsed = time.time() - start
            started = any(b"@@@ BEGIN" in c or b"KSMT-INIT" in c for c in chunks)
            if elapsed > timeout or (not started and elapsed > a.boot_limit):
                p.kill()
                timed_out = True
                break
            time.sleep(1)
        p.wait()
        reader.join(10)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r", "")
    return text, time.time() - start, timed_out


def split_log(text):
    """Return ({test: (output lines, rc)}, dmesg lines, done)."""
    blocks, dmesg, cur, lines = {}, [], None, []
    in_dmesg = False
    for line in text.split("\n"):
        if line.startswith("@@@ BEGIN "):
            cur, lines = line.split()[2], []
        elif line.startswith("@@@ END ") and cur:
            m = re.search(r"rc=(\d+)", line)
            blocks[cur] = (lines, int(m.group(1)) if m else 1)
            cur = None
        elif line.startswith("@@@ DMESG-BEGIN"):
            in_dmesg = True
        elif line.startswith("@@@ DMESG-END"):
            in_dmesg = False
        elif in_dmesg:
            dmesg.append(STAMP.sub("", line))
        elif cur is not None:
            lines.append(line)
    return blocks, dmesg, "@@@ DONE" in text


def tap_results(name, lines, rc):
    res, plan, seen = [], None, 0
    for line in lines:
        if re.match(r"^1\.\.(\d+)", line):
            plan = int(line[3:].split()[0])
            continue
        if "Planned tests != run tests" in line:
            res.append(("FAIL", name + ":plan", line.strip()))
        m = TAP.match(line)
        if not m:
            continue
        seen += 1
        tname = "%s:%s %s" % (name, m.group(2), m.group(3).strip())
        if m.group(4) and m.group(4).upper() == "SKIP":
            res.append(("SKIP", tname, (m.group(5) or "").strip()))
        elif m.group(1) == "ok":
            res.append(("PASS", tname, ""))
        else:
            res.append(("FAIL", tname, ""))
    if plan is not None and plan != seen:
        res.append(("FAIL", name + ":plan", "planned %d, ran %d" % (plan, seen)))
    if not seen:
        res.append(("FAIL", name, "no TAP results (exit %d)" % rc))
    elif rc != 0:
        res.append(("FAIL", name + ":exit", "exit code %d" % rc))
    return res


def kunit_results(dmesg):
    res, suite = [], None
    for line in dmesg:
        m = re.match(r"^\s*# Subtest: (\S+)", line)
        if m:
            suite = m.group(1)
            continue
        m = KUNIT.match(line)
        if not m or not m.group(1):
            continue      # suite-level lines are reported through their cases
        depth = len(m.group(1))
        if depth != 4:
            continue
        tname = "kunit:%s.%s" % (suite, m.group(4))
        if m.group(5):
            res.append(("SKIP", tname, (m.group(6) or "").strip()))
        else:
            res.append(("PASS" if m.group(2) == "ok" else "FAIL", tname, ""))
    if not res:
        res.append(("FAIL", "kunit", "no KUnit results in the boot log"))
    return res


def run_test(a, name, kind, tmo, logdir, suffix=""):
    log = os.path.join(logdir, name + suffix + ".log")
    extra = ["KSMT_TESTS=" + name, "kunit.enable=%d" % (kind == "kunit")]
    text, secs, timed_out = boot(a, "test", extra, int(tmo) + a.boot_allowance, log)
    res = []
    if "@@@ BEGIN" not in text and not SPLAT.search(text):
        # The guest never reached /init and the kernel reported nothing: under
        # host load TCG firmware and ACPI can stall. Say so and boot once more.
        res.append(("NOTE", name, "guest stalled before /init (%s); booting again" % log))
        os.rename(log, log + ".stalled")
        text, secs, timed_out = boot(a, "test", extra, int(tmo) + a.boot_allowance, log)
    blocks, dmesg, done = split_log(text)
    lines, rc = blocks.get(name, (None, None))
    if lines is None:
        res.append(("FAIL", name, "no result: guest died or timed out (%s)" % log))
    elif kind == "tap":
        res += tap_results(name, lines, rc)
    elif kind == "kunit":
        res += kunit_results(dmesg)
    elif rc == 0:
        res.append(("PASS", name, ""))
    elif rc == 4:
        res.append(("SKIP", name, "the test skipped itself"))
    elif rc == 137:
        res.append(("FAIL", name, "timed out after %s s in the guest" % tmo))
    else:
        res.append(("FAIL", name, "exit code %d" % rc))
    if timed_out:
        res.append(("FAIL", name + ":boot", "QEMU timed out"))
    elif not done:
        res.append(("FAIL", name + ":boot", "the guest did not finish (panic?)"))
    console_splats = [l for l in text.split("\n") if re.search(r"Kernel panic|BUG: |Oops", l)]
    splats = [l for l in dmesg if SPLAT.search(l)] or console_splats
    if splats:
        res.append(("FAIL", name + ":kernel", "kernel report: " + splats[0].strip()))
    return res, secs


def boot_verdict(results):
    """What one boot of a test came to: FAIL, XFAIL, SKIP or PASS."""
    states = [st for st, _tname, _why in results]
    for st in ("FAIL", "XFAIL"):
        if st in states:
            return st
    if "PASS" not in states and "SKIP" in states:
        return "SKIP"
    return "PASS"


def print_matrix(matrix, runs):
    """Passes per test over the runs of --repeat, and what failed where."""
    print("# passes per test in %d fresh boots each" % runs)
    width = max(len(name) for name in matrix)
    for name, boots in matrix.items():
        passed = sum(1 for v, _f in boots if v == "PASS")
        skipped = sum(1 for v, _f in boots if v == "SKIP")
        xfail = sum(1 for v, _f in boots if v == "XFAIL")
        notes = []
        if skipped:
            notes.append("%d skipped" % skipped)
        if xfail:
            notes.append("%d XFAIL" % xfail)
        notes += ["run %d: %s" % (r + 1, ", ".join(f[:3]))
                  for r, (v, f) in enumerate(boots) if v == "FAIL"]
        print("  %-*s %3d/%d%s" % (width, name, passed, runs,
                                   ("  (%s)" % "; ".join(notes)) if notes else ""))


def stress_timeout(a, tmo, cmd):
    """A test that runs ${KSM_STRESS_SECS} seconds gets them on top of its time limit."""
    m = re.search(r"(?:^|\s)KSM_STRESS_SECS=(\d+)", a.append or "")
    if m and "KSM_STRESS_SECS" in cmd:
        return str(int(tmo) + int(m.group(1)))
    return tmo


# What the kernel and the guest's programs are built from: a record made
# for one state of these is not counted for another.
SOURCE_PATHS = ["Documentation", "include", "mm", "patches", "tools", "harness/config",
                "harness/guest", "harness/tests.list", "harness/skip.list",
                "harness/known-base-failures.list", "harness/build-kernel.sh",
                "harness/build-userspace.sh", "harness/mkinitramfs.sh",
                "harness/ref-ksm-functional-fixes.patch", "harness/tree.sh"]


def source_identity(a):
    """Hash of the base package's version and the git trees in SOURCE_PATHS at
    HEAD, or exit if any of those is modified."""
    top = os.path.dirname(HERE)
    paths = [p for p in SOURCE_PATHS if os.path.exists(os.path.join(top, p))]
    dirty = subprocess.run(["git", "-C", top, "status", "--porcelain", "--"] + paths,
                           capture_output=True, text=True, check=True).stdout
    if dirty.strip():
        sys.exit("--record: the sources the kernel is built from have uncommitted "
                 "changes; commit them first:\n" + dirty)
    h = hashlib.sha256(a.variant.encode())
    # The base tree too: a fresh machine may install a later 6.12 package.
    pkg = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "linux-source-6.12"],
                         capture_output=True, text=True).stdout
    h.update(("linux-source-6.12 %s\n" % pkg.strip()).encode())
    for p in paths:
        obj = subprocess.run(["git", "-C", top, "rev-parse", "HEAD:" + p],
                             capture_output=True, text=True, check=True).stdout
        h.update(("%s %s\n" % (p, obj.strip())).encode())
    return h.hexdigest()[:16]


def read_record(path, ident):
    """{(run, test): (verdict, failed names, seconds)} of FILE's lines made for ident."""
    done = {}
    if not os.path.exists(path):
        return done
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if line.startswith("#") or len(parts) < 5 or parts[0] != ident:
                continue
            done[(int(parts[1]), parts[2])] = (parts[3], [x for x in parts[4].split(",") if x],
                                               float(parts[5] or 0))
    return done


def cmd_test(a):
    tests = read_table(os.path.join(HERE, "tests.list"), 4)
    skips = {r[0]: (r[1], r[2]) for r in read_table(os.path.join(HERE, "skip.list"), 3)}
    known = {r[0]: r[2] for r in read_table(os.path.join(HERE, "known-base-failures.list"), 3)
             if r[1] == "all" or r[1] == a.variant}
    only = set(a.only.split(",")) if a.only else None
    os.makedirs(a.logdir, exist_ok=True)
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0, "NOTE": 0}
    runs = max(1, a.repeat)
    matrix = {}
    total = time.time()
    jobs = [(run, row) for run in range(1, runs + 1) for row in tests
            if not only or row[0] in only]
    ident, recorded, lock = None, {}, threading.Lock()
    earlier, earlier_secs = collections.Counter(), [0.0]
    if a.record:
        ident = source_identity(a)
        recorded = read_record(a.record, ident)
        done_before = sum(1 for run, row in jobs if (run, row[0]) in recorded)
        print("# record %s, sources %s: %d of %d boots done before" %
              (a.record, ident, done_before, len(jobs)), flush=True)
        if not os.path.exists(a.record):
            with open(a.record, "w") as f:
                f.write("# sources\trun\ttest\tverdict\tfailed\tseconds\tfinished (UTC)\n")

    def one(job):
        run, (name, kind, tmo, cmd) = job
        suffix = "-run%d" % run if runs > 1 else ""
        tmo = stress_timeout(a, tmo, cmd)
        if (run, name) in recorded:
            return None
        if name in skips and not a.no_skip:
            issue, why = skips[name]
            return [("SKIP", name, "issue %s: %s" % (issue, why))], 0
        results, secs = run_test(a, name, kind, tmo, a.logdir, suffix)
        if a.record:
            verdict = boot_verdict(xfail_known(results, name) if name in known else results)
            failed = [t for st, t, _w in results if st == "FAIL"]
            with lock, open(a.record, "a") as f:
                f.write("%s\t%d\t%s\t%s\t%s\t%.0f\t%s\n" % (
                    ident, run, name, verdict, ",".join(failed), secs,
                    time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
        return results, secs

    def xfail_known(results, name):
        why0 = "known base failure, see harness/known-base-failures.list"
        return [("XFAIL", tname, (why + "; " if why else "") + why0)
                if st == "FAIL" and tname == name else (st, tname, why)
                for st, tname, why in results]

    def report(job, outcome):
        run, (name, _kind, _tmo, _cmd) = job
        tag = "[%d/%d] " % (run, runs) if runs > 1 else ""
        if outcome is None:
            verdict, failed, secs = recorded[(run, name)]
            print("%s%-5s %s (recorded in %s)" % (tag, "DONE", name, a.record), flush=True)
            earlier[verdict] += 1
            earlier_secs[0] += secs
            matrix.setdefault(name, []).append((verdict, failed))
            return
        results, secs = outcome
        if name in known:
            # Still reported, but the test's own verdict is not counted as our
            # failure; kernel reports and dead guests still are.
            results = xfail_known(results, name)
        for st, tname, why in results:
            counts["SKIP" if st == "XFAIL" else st] += 1
            print("%s%-5s %s%s" % (tag, st, tname, (" (%s)" % why) if why else ""),
                  flush=True)
        if secs:
            print("     %s%s took %.0f s" % (tag, name, secs), flush=True)
        matrix.setdefault(name, []).append(
            (boot_verdict(results), [t for st, t, _w in results if st == "FAIL"]))

    if a.jobs <= 1:
        for job in jobs:
            report(job, one(job))
    else:
        # --jobs N: N boots at a time; results are still reported in list
        # order, each as soon as it and everything before it is done.
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
            for job, fut in [(job, pool.submit(one, job)) for job in jobs]:
                report(job, fut.result())
    print("# logs in %s; %.0f s in all" % (a.logdir, time.time() - total))
    if runs > 1 and matrix:
        print_matrix(matrix, runs)
    if earlier:
        # Boots of earlier invocations count by their verdict: one result each.
        print("# boots recorded earlier: %s; %.0f s of boots in them" % (", ".join(
            "%d %s" % (n, v) for v, n in sorted(earlier.items())), earlier_secs[0]))
        counts["PASS"] += earlier["PASS"]
        counts["FAIL"] += earlier["FAIL"]
        counts["SKIP"] += earlier["SKIP"] + earlier["XFAIL"]
    line = "%d passed, %d failed" % (counts["PASS"], counts["FAIL"])
    if counts["SKIP"]:
        line += ", %d skipped" % counts["SKIP"]
    print(line)
    return 1 if counts["FAIL"] else 0


def nested_recap(text):
    """The demo's summary and ksm_nested.sh's checks, to show them once more last."""
    lines = text.split("\n")
    start = max((i for i, l in enumerate(lines) if l.startswith("== stopping the guests")),
                default=None)
    if start is None:
        return []
    demo = [l for l in lines[:start] if l.startswith("== summary:")]
    return [l.replace("== summary:", "== demo summary:") for l in demo] + \
        [l for l in lines[start:] if l.startswith(("  [ ok ]", "  [FAIL]", "== nested summary",
                                                   "== stopping"))]


def cmd_boot(a):
    extra = ["KSMT_ARGS=" + a.args] if a.args else []
    if a.nested:
        extra.append("KSMT_NESTED=%d" % a.nested)
    if a.mode == "shell":
        return boot(a, "shell", extra, 0, None, interactive=True)
    log = os.path.join(a.logdir, a.mode + ".log")
    os.makedirs(a.logdir, exist_ok=True)
    a.echo = True
    # What a person watches (demo, nested): the guest's dmesg goes to the
    # log only, unless something failed; the summary comes last. The demo
    # also keeps ksm_nested.sh's lines for bench.py (NESTED, BENCH) to the log.
    a.quiet_dmesg = a.mode in ("demo", "nested")
    text, secs, timed_out = boot(a, a.mode, extra, a.timeout, log)
    _blocks, dmesg, done = split_log(text)
    splats = [l for l in dmesg if SPLAT.search(l)]
    m = re.search(r"@@@ END %s rc=(\d+)" % a.mode, text)
    rc = int(m.group(1)) if m else 1
    failed = bool(splats or not done or timed_out or rc)
    if failed and a.quiet_dmesg and dmesg:
        print("\n".join(["", "== the guest's dmesg (something failed; also in %s)" % log] +
                        dmesg), flush=True)
    recap = nested_recap(text)
    if recap:
        print("\n".join(["", "== nested QEMU workload (repeated from above; log: %s)" % log] +
                        recap), flush=True)
    if failed:
        print("%s FAILED: rc=%d done=%s timeout=%s splat=%s" %
              (a.mode, rc, done, timed_out, splats[:1]))
        return 1
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["test", "boot"])
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--only", default="")
    p.add_argument("--repeat", type=int, default=1,
                   help="run each test this many times, a fresh boot each")
    p.add_argument("--record", default="", metavar="FILE",
                   help="test: add each boot's verdict to FILE; skip boots FILE holds "
                   "for the same sources (resume a --repeat run)")
    p.add_argument("--jobs", type=int, default=1,
                   help="test: boot this many guests at a time (results in list order)")
    p.add_argument("--mode", default="shell")
    p.add_argument("--args", default="")
    p.add_argument("--nested", type=int, default=0, metavar="SECS",
                   help="mode demo: then run the nested QEMU workload for SECS seconds "
                   "(needs the initramfs of NESTED_KERNEL=... harness/mkinitramfs.sh)")
    p.add_argument("--logdir", default="build/logs")
    p.add_argument("--swap", action="store_true", help="attach a swap disk")
    p.add_argument("--swap-mb", type=int, default=512)
    p.add_argument("--node-mb", type=int, default=1024)
    p.add_argument("--dimm-mb", type=int, default=0,
                   help="cold-plug a hot-removable DIMM of this size on node 1")
    p.add_argument("--accel", default=os.environ.get("ACCEL", "tcg"))
    p.add_argument("--icount", action="store_true",
                   help="-icount shift=1,sleep=off: guest time follows instructions")
    p.add_argument("--append", default="", help="extra kernel command-line words")
    p.add_argument("--gdb", action="store_true")
    p.add_argument("--echo", action="store_true")
    p.add_argument("--no-skip", action="store_true")
    p.add_argument("--variant", default="ours")
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--boot-allowance", type=int, default=180)
    p.add_argument("--boot-limit", type=int, default=300,
                   help="seconds the guest may take to reach /init")
    p.add_argument("--qemu-extra", default=os.environ.get("QEMU_EXTRA", ""))
    a = p.parse_args()
    if a.accel == "kvm" and not os.access("/dev/kvm", os.W_OK):
        print("# /dev/kvm is not usable: falling back to TCG", file=sys.stderr)
        a.accel = "tcg"
    os.makedirs(a.logdir, exist_ok=True)
    a.quiet_dmesg = False
    return cmd_test(a) if a.cmd == "test" else cmd_boot(a)


if __name__ == "__main__":
    sys.exit(main())
