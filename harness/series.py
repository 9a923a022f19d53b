#!/usr/bin/env python3
"""series.py: our KSM as a `git format-patch` series against the base tree.

  series.py make [--out DIR]    write the series (cover letter + patches)
  series.py check [--out DIR] [--no-builds]
                                write it, then check it: `git am` onto a fresh
                                unpack of the base tarball made a git
                                repository, the result equals build/src/ours,
                                checkpatch.pl --strict on every patch (0 errors,
                                0 warnings), and a build after every patch
                                (not with --no-builds: what `make test` runs)

The steps, their order and their files are in patches/log/layout; commit
messages in patches/log/NAME.msg or, for a step that is one patch of
patches/, that patch's own description. The author and Signed-off-by are
the repository's git identity (git config user.name / user.email).

`check` prints one line per item and closes with `N passed, N failed`.
"""

import argparse
import difflib
import fnmatch
import glob
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD") or os.path.join(TOP, "build")
TARBALL = os.environ.get("TARBALL", "/usr/src/linux-source-6.12.tar.xz")
JOBS = os.environ.get("JOBS") or str(os.cpu_count() or 2)
# The same roots harness/tree.sh lays the overlay from (harness/lib.sh).
OVERLAY_ROOTS = ("arch block Documentation drivers fs include init kernel lib "
                 "mm scripts tools MAINTAINERS").split()
LOG = os.path.join(TOP, "patches", "log")
KUNIT_INCLUDE = re.compile(r'^#include "tests/[^"]*-kunit\.h"\s*$')
# Work trees and build of the check, below the build root so that ccache
# (CCACHE_BASEDIR) sees the same relative paths as the kernel `make test`
# builds: SERIES/src/ours and SERIES/out/ours-debug.
SERIES = os.path.join(BUILD, "series")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def die(msg):
    log("error: " + msg)
    sys.exit(1)


def run(cmd, cwd=None, env=None, capture=False, check=True, merge=True):
    """Run cmd; with capture, its output in .stdout (and its errors too,
    unless merge is False: then in .stderr)."""
    r = subprocess.run(cmd, cwd=cwd, env=env, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=(subprocess.STDOUT if merge else subprocess.PIPE)
                       if capture else None)
    if check and r.returncode:
        die("%s failed (%d)%s" % (" ".join(cmd), r.returncode,
                                  ":\n" + (r.stdout + (r.stderr or ""))[-3000:]
                                  if capture else ""))
    return r


def git(repo, *args, env=None, capture=True, check=True):
    return run(["git", "-C", repo] + list(args), env=env, capture=capture, check=check,
               merge=False)


def identity():
    out = []
    for key in ("user.name", "user.email"):
        r = git(TOP, "config", key, check=False)
        if r.returncode or not r.stdout.strip():
            die("git config %s is not set in %s" % (key, TOP))
        out.append(r.stdout.strip())
    return out


def git_env(name, email, date):
    env = dict(os.environ)
    env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email,
               GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return env


def unpack_base(dest, env):
    """A fresh unpack of the tarball at dest, committed as the base."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    tmp = dest + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    run(["tar", "-C", tmp, "--strip-components=1", "-xJf", TARBALL])
    os.rename(tmp, dest)
    git(dest, "init", "-q", "-b", "series")
    git(dest, "config", "core.autocrlf", "false")
    git(dest, "config", "gc.auto", "0")
    # -f: the tarball's files, whatever its .gitignore files say.
    git(dest, "add", "-A", "-f")
    git(dest, "commit", "-q", "--no-verify", "-m",
        "Debian linux-source-6.12 as shipped (%s)" % os.path.basename(TARBALL), env=env)
    git(dest, "tag", "base")
    return git(dest, "rev-parse", "HEAD").stdout.strip()


# --- the layout -------------------------------------------------------------

def overlay_files():
    """Overlay files, as harness/tree.sh lays them."""
    files = []
    for root in OVERLAY_ROOTS:
        path = os.path.join(TOP, root)
        if os.path.isfile(path):
            files.append(root)
            continue
        for d, _, names in os.walk(path):
            for n in names:
                if n.endswith((".orig", ".rej")):
                    continue
                files.append(os.path.relpath(os.path.join(d, n), TOP))
    return sorted(files)


def series_patches():
    with open(os.path.join(TOP, "patches", "series")) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def patch_files(name):
    with open(os.path.join(TOP, "patches", name)) as f:
        return sorted(set(m.group(1) for m in
                          re.finditer(r"^\+\+\+ b/(\S+)", f.read(), re.M)))


def read_layout():
    steps = []
    with open(os.path.join(LOG, "layout")) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                steps.append((line[0], line[1:]))
    return steps


def expand(steps, files, patches):
    """Resolve globs; append unassigned patches; refuse unassigned files."""
    out, seen_files, seen_patches, last = [], set(), set(), {}
    for name, items in steps:
        acts = []
        for item in items:
            if item.startswith("patch:"):
                p = item[6:]
                if p not in patches:
                    die("layout step %s: %s is not in patches/series" % (name, p))
                acts.append(("patch", p))
                seen_patches.add(p)
                continue
            path, _, how = item.partition(":")
            hits = [f for f in files if fnmatch.fnmatchcase(f, path)
                    and ("/" not in f[len(path.rsplit("/", 1)[0]) + 1:]
                         if "*" in path else True)]
            if not hits:
                die("layout step %s: no overlay file matches %s" % (name, path))
            for h in hits:
                acts.append(("file", h, how))
                seen_files.add(h)
                last[h] = how
        out.append((name, acts))
    for p in patches:
        # A patch of MAINTAINERS alone grows with the series (see grow()).
        if p not in seen_patches and patch_files(p) != ["MAINTAINERS"]:
            log("note: %s is in no step of patches/log/layout: a step of its own at the end" % p)
            out.append((p, [("patch", p)]))
    missing = [f for f in files if f not in seen_files]
    if missing:
        die("overlay files in no step of patches/log/layout: " + " ".join(missing))
    partial = [f for f, how in last.items() if how]
    if partial:
        die("no step completes " + " ".join(partial))
    return out


def patch_message(name):
    """Subject and body of a patch of patches/, from its description."""
    with open(os.path.join(TOP, "patches", name)) as f:
        text = f.read()
    head = text.split("\n---\n", 1)[0] if "\n---\n" in text else ""
    lines = head.split("\n")
    subject = None
    if lines and lines[0].startswith("From:"):
        i = 0
        while i < len(lines) and lines[i].strip():
            if lines[i].startswith("Subject:"):
                subject = re.sub(r"^\[PATCH[^]]*\]\s*", "", lines[i][8:].strip())
            i += 1
        body = lines[i + 1:]
    else:
        subject, body = (lines[0] if lines else None), lines[2:]
    if not subject:
        die("patches/%s has no subject" % name)
    return subject + "\n\n" + "\n".join(body).strip() + "\n"


def step_message(name, acts):
    path = os.path.join(LOG, name + ".msg")
    if os.path.exists(path):
        with open(path) as f:
            return f.read()
    pats = [a[1] for a in acts if a[0] == "patch"]
    if len(pats) == 1 and len(acts) == 1:
        return patch_message(pats[0])
    die("step %s needs patches/log/%s.msg" % (name, name))


# --- MAINTAINERS: the KSM section grows with the files ----------------------

class Maintainers:
    """The section patches/ adds to MAINTAINERS, with each F: line present
    from the first step in which a file it names exists (checkpatch asks
    every patch that adds files to update MAINTAINERS)."""

    def __init__(self, tree, patches):
        self.base = open(os.path.join(tree, "MAINTAINERS")).read().split("\n")
        mp = [p for p in patches if patch_files(p) == ["MAINTAINERS"]]
        self.block = None
        if not mp:
            return
        tmp = os.path.join(SERIES, "MAINTAINERS.final")
        with open(tmp, "w") as f:
            f.write("\n".join(self.base))
        for p in mp:
            run(["patch", "-s", "-p1", "--no-backup-if-mismatch", tmp,
                 os.path.join(TOP, "patches", p)])
        final = open(tmp).read().split("\n")
        ops = [o for o in difflib.SequenceMatcher(None, self.base, final,
                                                   autojunk=False).get_opcodes()
               if o[0] != "equal"]
        if len(ops) != 1 or ops[0][0] != "insert":
            die("the MAINTAINERS patch must add one block: %s" % ops)
        self.at = ops[0][1]
        self.block = final[ops[0][3]:ops[0][4]]
        self.in_base = [l for l in self.block
                        if l.startswith("F:") and self._present(tree, l[2:].strip())]

    @staticmethod
    def _present(tree, pat):
        if pat.endswith("/"):
            return os.path.isdir(os.path.join(tree, pat))
        return bool(glob.glob(os.path.join(tree, pat)))

    def write(self, tree):
        if self.block is None:
            return
        keep = [l for l in self.block
                if not l.startswith("F:") or self._present(tree, l[2:].strip())]
        # The section comes with the first file the series adds.
        if all(l in self.in_base for l in keep if l.startswith("F:")):
            keep = []
        with open(os.path.join(tree, "MAINTAINERS"), "w") as f:
            f.write("\n".join(self.base[:self.at] + keep + self.base[self.at:]))


# --- make ------------------------------------------------------------------

def apply_step(tree, acts):
    for act in acts:
        if act[0] == "patch":
            run(["patch", "-d", tree, "-s", "-p1", "-N", "--no-backup-if-mismatch",
                 "-i", os.path.join(TOP, "patches", act[1])])
            continue
        _, rel, how = act
        dst = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(os.path.join(TOP, rel), "rb") as f:
            data = f.read()
        if how == "nokunit":
            lines = data.decode().split("\n")
            out = []
            for l in lines:
                if KUNIT_INCLUDE.match(l):
                    while out and not out[-1].strip():
                        out.pop()
                    continue
                out.append(l)
            if out and out[-1] != "":
                out.append("")
            data = "\n".join(out).encode()
        elif how:
            die("unknown form %s:%s" % (rel, how))
        with open(dst, "wb") as f:
            f.write(data)
        shutil.copymode(os.path.join(TOP, rel), dst)


def readme_section(title_re, stop_re):
    try:
        text = open(os.path.join(TOP, "README.md")).read()
    except OSError:
        return ""
    m = re.search(title_re, text, re.M)
    if not m:
        return ""
    rest = text[m.end():]
    s = re.search(stop_re, rest, re.M)
    return rest[:s.start()] if s else rest


def cover_benchmark():
    """The benchmark table README reports as measured, with its preamble;
    never a figure of our own."""
    sec = readme_section(r"^## Benchmark", r"^## ")
    m = re.search(r"^(Measured at commit.*?)\n\n```\n(.*?)\n```\n(.*?)\n\n", sec, re.M | re.S)
    if not m:
        return "No benchmark figures are recorded in README.md yet.\n"
    table = "\n".join("  " + l if l else "" for l in m.group(2).split("\n"))
    return "%s\n\n%s\n\n%s\n" % (m.group(1).strip(), table, m.group(3).strip())


def cover_test_runs():
    """The rows of README's timing table that report a `make test` result."""
    sec = readme_section(r"^### How long they take", r"^#+ |^A cold")
    # Whole runs only: a row of `make test` (or its reruns, "the same"),
    # not of a subset (ONLY=) or of another command.
    rows = [l for l in sec.split("\n") if l.startswith("|") and " passed" in l
            and "ONLY=" not in l
            and re.search(r"make test|^\s*the same", l.split("|")[1])]
    if not rows:
        return "No `make test` result is recorded in README.md yet.\n"
    out = []
    for r in rows[-3:]:
        cells = [c.strip() for c in r.strip("|").split("|")]
        out.append(textwrap.fill("; ".join(cells), 72, initial_indent="- ",
                                 subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(out) + "\n"


def fill_cover(path, count):
    with open(os.path.join(LOG, "cover.msg")) as f:
        tmpl = f.read()
    subject, _, body = tmpl.partition("\n\n")
    body = body.replace("@COUNT@", str(count))
    body = body.replace("@BENCHMARK@", cover_benchmark().rstrip())
    body = body.replace("@TESTRUNS@", cover_test_runs().rstrip())
    with open(path) as f:
        text = f.read()
    text = text.replace("*** SUBJECT HERE ***", subject.strip())
    text = text.replace("*** BLURB HERE ***", body.strip())
    with open(path, "w") as f:
        f.write(text)


def make_series(out):
    name, email = identity()
    date = git(TOP, "log", "-1", "--format=%cI").stdout.strip()
    env = git_env(name, email, date)
    os.makedirs(SERIES, exist_ok=True)
    tree = os.path.join(SERIES, "gen")
    stamp = os.path.join(SERIES, "gen.base")
    key = "%s %d %d" % (TARBALL, os.stat(TARBALL).st_size, int(os.stat(TARBALL).st_mtime))
    base = None
    if os.path.exists(stamp) and open(stamp).read().split("\n")[0] == key:
        base = open(stamp).read().split("\n")[1]
        r = git(tree, "cat-file", "-e", base, check=False)
        if r.returncode:
            base = None
    if not base:
        log("unpacking %s for the series" % TARBALL)
        base = unpack_base(tree, env)
        with open(stamp, "w") as f:
            f.write("%s\n%s\n" % (key, base))
    git(tree, "checkout", "-q", "-f", "-B", "series", base)
    git(tree, "clean", "-q", "-f", "-d", "-x")

    files, patches = overlay_files(), series_patches()
    steps = expand(read_layout(), files, patches)
    maint = Maintainers(tree, patches)
    for name_, acts in steps:
        apply_step(tree, acts)
        maint.write(tree)
        msgfile = os.path.join(SERIES, "msg")
        with open(msgfile, "w") as f:
            f.write(step_message(name_, acts))
        git(tree, "add", "-A", "-f")
        if not git(tree, "status", "--porcelain").stdout.strip():
            die("step %s changes nothing" % name_)
        git(tree, "commit", "-q", "--no-verify", "-s", "-F", msgfile, env=env)
    if os.path.isdir(out):
        for f in glob.glob(os.path.join(out, "*.patch")):
            os.unlink(f)
    os.makedirs(out, exist_ok=True)
    git(tree, "format-patch", "-q", "--cover-letter", "--no-signature", "--zero-commit",
        "-o", out, "%s..HEAD" % base, env=env)
    pats = sorted(glob.glob(os.path.join(out, "*.patch")))
    fill_cover(pats[0], len(pats) - 1)
    return pats, tree, base


# --- check -----------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def item(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print("%s %s" % ("PASS" if ok else "FAIL", what), flush=True)
        if detail:
            print("\n".join("     " + l for l in detail.rstrip().split("\n")), flush=True)


def compare(am, ours):
    """Files that differ between the series' tree and the tree we test;
    files only in ours that the kernel's .gitignore ignores are build
    products."""
    r = run(["diff", "-rq", "--no-dereference", "--exclude=.git", "--exclude=.unpacked",
             "--exclude=.applied-patches", "--exclude=.overlay-manifest", am, ours],
            capture=True, check=False)
    bad, only_ours = [], []
    for l in r.stdout.splitlines():
        m = re.match(r"Only in (.*): (.*)$", l)
        if m and m.group(1).startswith(ours):
            only_ours.append(os.path.relpath(os.path.join(m.group(1), m.group(2)), ours))
        else:
            bad.append(l)
    if only_ours:
        ign = subprocess.run(["git", "-C", am, "check-ignore", "--no-index", "--stdin"],
                             input="\n".join(only_ours) + "\n", text=True,
                             stdout=subprocess.PIPE).stdout.split()
        bad += ["Only in the tree we test: " + p for p in only_ours if p not in ign]
    return bad


def checkpatch(am, patch):
    # Its SPDX check runs scripts/spdxcheck.py with the python3 in PATH; the
    # system's has the modules it needs (python3-ply, python3-git).
    env = dict(os.environ)
    env["PATH"] = "/usr/bin:" + env.get("PATH", "")
    r = run(["perl", "scripts/checkpatch.pl", "--strict", "--no-color", "--showfile", patch],
            cwd=am, env=env, capture=True, check=False)
    if "Traceback" in r.stdout:
        return False, "checkpatch.pl's helper failed:\n" + r.stdout[-2000:]
    m = re.search(r"total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?(\d+) lines", r.stdout)
    if not m:
        return False, "no summary from checkpatch.pl:\n" + r.stdout[-2000:]
    ok = m.group(1) == "0" and m.group(2) == "0"
    detail = "" if ok else "\n".join(
        l for l in r.stdout.splitlines() if l.startswith(("ERROR", "WARNING", "#", "+")))[:4000]
    return ok, m.group(0) + ("\n" + detail if detail else "")


def kernel_config(am, env):
    """The `make test` kernel's configuration (harness/build-kernel.sh ours
    debug), made once from the final tree of the series."""
    cfgdir = os.path.join(TOP, "harness", "config")
    out = os.path.join(SERIES, "out", "cfg")
    os.makedirs(out, exist_ok=True)
    frags = [os.path.join(cfgdir, f) for f in ("common.config", "debug.config", "ours.config")]
    mk(am, out, ["tinyconfig"], env)
    run([os.path.join(am, "scripts/kconfig/merge_config.sh"), "-m", "-O", out,
         os.path.join(out, ".config")] + frags, cwd=out, capture=True)
    mk(am, out, ["olddefconfig"], env)
    return open(os.path.join(out, ".config")).read()


def mk(src, out, args, env, check=True):
    return run(["make", "-s", "-C", src, "O=" + out, "ARCH=x86_64", "CC=ccache gcc",
                "HOSTCC=ccache gcc", "-j" + JOBS] + args, env=env, capture=True,
               check=check)


# What a step builds: the whole kernel at the step that switches KSM over
# and at the end; else every object of mm/ and fs/proc/base.o, unless the
# step changes no file that the build reads.
NOT_BUILT = re.compile(r"^(Documentation/|tools/|MAINTAINERS$)")
BUILD_FILES = re.compile(r"(^|/)(Kconfig[^/]*|Makefile[^/]*|Kbuild[^/]*)$")


def files_read(src, out):
    """Source files the objects built so far were made from, by kbuild's
    dependency records (the .*.cmd files)."""
    seen, prefixes = set(), (os.path.abspath(src) + "/", os.path.relpath(src, out) + "/")
    for d, _, names in os.walk(out):
        for n in names:
            if not (n.startswith(".") and n.endswith(".cmd")):
                continue
            with open(os.path.join(d, n), errors="replace") as f:
                for tok in re.split(r"[\s\\$():]+", f.read()):
                    for p in prefixes:
                        if tok.startswith(p):
                            seen.add(os.path.normpath(tok[len(p):]))
    return seen


def build_reason(changed, read, first):
    """None if the step must be built, else why not."""
    if first:
        return None
    if all(NOT_BUILT.match(f) for f in changed):
        return "only Documentation/, tools/ or MAINTAINERS changed"
    if any(BUILD_FILES.search(f) or f in read for f in changed):
        return None
    return "no object built so far reads its files (kbuild's .cmd records)"


def build_steps(am, res, full_at):
    env = dict(os.environ)
    env["CCACHE_BASEDIR"] = SERIES
    config = kernel_config(am, env)
    out = os.path.join(SERIES, "out", "ours-debug")
    os.makedirs(out, exist_ok=True)
    # The branch, not HEAD: a detached HEAD may sit on an earlier commit.
    commits = git(am, "rev-list", "--reverse", "base..series").stdout.split()
    total, read = 0.0, set()
    for i, c in enumerate(commits, 1):
        subj = git(am, "log", "-1", "--format=%s", c).stdout.strip()
        changed = git(am, "diff-tree", "--no-commit-id", "--name-only", "-r", c).stdout.split()
        git(am, "checkout", "-q", "-f", c)
        last = i == len(commits)
        what = "%02d %s" % (i, subj)
        why = None if last else build_reason(changed, read, i == 1)
        if why:
            res.item(True, "build %s: not built, %s" % (what, why))
            continue
        # The configuration again when Kconfig may have changed it (options
        # that do not exist yet drop out, and come back later).
        if i == 1 or any("Kconfig" in f for f in changed) or \
                not os.path.exists(os.path.join(out, ".config")):
            with open(os.path.join(out, ".config"), "w") as f:
                f.write(config)
        full = last or any(f in full_at for f in changed)
        targets = ["bzImage"] if full else ["mm/", "fs/proc/base.o"]
        t0 = time.time()
        r = mk(am, out, ["olddefconfig"], env, check=False)
        if not r.returncode:
            r = mk(am, out, targets, env, check=False)
        dt = time.time() - t0
        total += dt
        errs = "\n".join(l for l in r.stdout.splitlines()
                         if re.search(r"(error|Error|warning:)", l))[:3000]
        res.item(r.returncode == 0, "build %s: make %s (%d s)" % (what, " ".join(targets), dt),
                 "" if r.returncode == 0 else (errs or r.stdout[-3000:]))
        read = files_read(am, out)
    git(am, "checkout", "-q", "-f", commits[-1])
    return total


def check_series(out, builds_only=False, builds=True):
    t_all = time.time()
    res = Results()
    am = os.path.join(SERIES, "src", "ours")
    if builds_only:
        # For work on this script: the builds of the tree the last check made.
        build_steps(am, res, {"mm/Makefile"})
        print("%d passed, %d failed" % (res.passed, res.failed))
        return 0 if res.failed == 0 else 1
    pats, _, _ = make_series(out)
    cover, series = pats[0], pats[1:]
    print("# series: %d patches and a cover letter in %s" % (len(series), out), flush=True)
    ours = run([os.path.join(TOP, "harness", "tree.sh"), "ours"], capture=True).stdout.split("\n")
    ours = [l for l in ours if l.startswith("/")][-1]

    name, email = identity()
    env = git_env(name, email, git(TOP, "log", "-1", "--format=%cI").stdout.strip())
    t0 = time.time()
    unpack_base(am, env)
    r = git(am, "am", "-q", *series, env=env, check=False)
    res.item(r.returncode == 0, "git am of %d patches onto a fresh unpack of %s (%d s)"
             % (len(series), os.path.basename(TARBALL), time.time() - t0),
             "" if r.returncode == 0 else (r.stdout + r.stderr)[-3000:])
    if r.returncode:
        git(am, "am", "--abort", check=False)
        print("%d passed, %d failed" % (res.passed, res.failed))
        return 1
    bad = compare(am, ours)
    res.item(not bad, "the series' tree equals %s (less build products)" % ours,
             "\n".join(bad[:30]))

    for p in [cover] + series:
        if p == cover:
            continue
        ok, detail = checkpatch(am, p)
        res.item(ok, "checkpatch.pl --strict %s: %s" % (os.path.basename(p),
                                                     detail.split("\n")[0]),
                 "\n".join(detail.split("\n")[1:]))

    if not builds:
        print("# series check: %d s (no builds: make series-check builds after every patch)"
              % (time.time() - t_all))
        print("%d passed, %d failed" % (res.passed, res.failed))
        return 0 if res.failed == 0 else 1
    full_at = {"mm/Makefile"}
    t_build = build_steps(am, res, full_at)
    print("# series check: %d s (builds %d s)" % (time.time() - t_all, t_build))
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 0 if res.failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=("make", "check"))
    ap.add_argument("--out", default=os.environ.get("PATCHES_OUT")
                    or os.path.join(BUILD, "patches"))
    ap.add_argument("--builds-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-builds", action="store_true",
                    help="apply, compare and checkpatch only; no build after each patch")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    if a.cmd == "make":
        pats, _, _ = make_series(out)
        for p in pats:
            print(p)
        return 0
    return check_series(out, a.builds_only, not a.no_builds)


if __name__ == "__main__":
    sys.exit(main())
