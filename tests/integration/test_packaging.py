"""Packaging: the RPM, the systemd units, the cloud-init user data and the example JSON files,
each checked with the tool that consumes it (rpmbuild, rpmlint, rpm, make install,
systemd-analyze, systemctl, cloud-init, bash, shellcheck, the AWS CLI's request validation)
and, where it runs here, by running it.

Needs root (the user-data script runs in a private mount namespace) and the Debian packages
rpm, rpmlint, cloud-init, shellcheck, cpio, awscli (scripts/lib.sh installs them).
"""
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

SRC = Path(os.environ.get("LIFEBOAT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
PKG = SRC / "packaging"
UNITS = ["lifeboat-boot.service", "lifeboat-watch.service", "lifeboat-reap.service", "lifeboat-reap.timer"]
UNIT_DIR = "usr/lib/systemd/system"
GROUP_TAG = "lifeboat:group"

EXPECTED_FILES = {
    "/usr/sbin/lifeboat",
    *(f"/{UNIT_DIR}/{u}" for u in UNITS),
    f"/{UNIT_DIR}/ecs.service.d/lifeboat.conf",
    "/usr/lib/systemd/system-preset/90-lifeboat.preset",
    "/usr/share/doc/lifeboat/examples/lifeboat-reap-policy.json",
    "/etc/lifeboat/lifeboat.conf",
    "/etc/lifeboat/fluentd-recovery.conf.in",
    "/usr/share/doc/lifeboat/README.md",
    "/usr/share/man/man8/lifeboat.8",
    "/usr/share/bash-completion/completions/lifeboat",
    *(f"/usr/share/doc/lifeboat/examples/{f}" for f in (
        "fluent.conf", "ecs-task-definition.json", "lifeboat-policy.json", "launch-template.json",
        "cloud-config.yaml", "user-data.sh", "lifecycle-hook.json", "lifeboat-ecs-al2023.pkr.hcl",
        "install-lifeboat.sh")),
    *(f"/usr/share/doc/lifeboat/examples/{f}" for f in (
        "lifeboat-reap-policy.json", "lifeboat-reap-scheduler-policy.json", "lifeboat-reap-task-definition.json",
        "lifeboat-reap-schedule.json", "lifeboat-attention-alarm.json", "lifeboat-reaper-silent-alarm.json")),
}
EXPECTED_DIRS = {
    "/etc/lifeboat",
    f"/{UNIT_DIR}/ecs.service.d",
    "/var/lib/lifeboat",
    "/usr/share/doc/lifeboat",
    "/usr/share/doc/lifeboat/examples",
}
# Namespacing options: each gives the service a private mount namespace, and boot's mounts must
# be visible to the host.
MOUNT_NAMESPACE_OPTIONS = {
    "PrivateTmp", "PrivateDevices", "PrivateMounts", "PrivateNetwork", "PrivateUsers",
    "ProtectSystem", "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc",
    "ProcSubset", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths",
    "NoExecPaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "RootDirectory",
    "RootImage", "MountFlags", "MountAPIVFS", "PrivateIPC", "StateDirectory", "RuntimeDirectory",
    "CacheDirectory", "LogsDirectory", "ConfigurationDirectory", "DynamicUser",
}


def run(cmd, **kw):
    """Runs cmd, returns the CompletedProcess; stdout and stderr as text."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([str(c) for c in cmd], text=True, **kw)


def check(cmd, **kw):
    p = run(cmd, **kw)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


# ---- fixtures: one RPM build and one `make install` per module ----

@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="lifeboat-pkg-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def rpms(workdir):
    out = workdir / "rpms"
    p = run([SRC / "scripts/rpm", out], stderr=subprocess.STDOUT)
    assert p.returncode == 0, f"scripts/rpm failed:\n{p.stdout[-6000:]}"
    binary = [f for f in out.glob("lifeboat-*.rpm") if not f.name.endswith(".src.rpm")]
    source = list(out.glob("lifeboat-*.src.rpm"))
    assert len(binary) == 1 and len(source) == 1, sorted(f.name for f in out.iterdir())
    return {"binary": binary[0], "source": source[0]}


@pytest.fixture(scope="module")
def install_tree(workdir):
    """`make install DESTDIR=...` of a build configured the way the spec's %cmake does it."""
    build, dest = workdir / "cmake-build", workdir / "destdir"
    check(["cmake", "-S", SRC, "-B", build, "-DCMAKE_INSTALL_PREFIX=/usr", "-DLIFEBOAT_TESTS=OFF"])
    check(["make", "-C", build, f"-j{os.cpu_count() or 2}", "install", f"DESTDIR={dest}"])
    return dest


@pytest.fixture(scope="module")
def systemd_root(workdir, install_tree):
    """The install tree plus the host's units (targets the lifeboat units order against) and stubs
    of the ECS agent, docker and containerd shaped like the ECS-optimized AMI's."""
    root = workdir / "systemd-root"
    shutil.copytree(install_tree, root, symlinks=True)
    units = root / UNIT_DIR
    for host_dir in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if host_dir.is_dir():
            for f in host_dir.iterdir():
                if not (units / f.name).exists() and not f.is_dir():
                    shutil.copy2(f, units / f.name, follow_symlinks=False)
    stubs = {
        "ecs.service": "[Unit]\nDescription=stub ECS agent\nRequires=docker.service\n"
                       "After=docker.service cloud-final.service\n"
                       "[Service]\nEnvironmentFile=-/etc/ecs/ecs.config\nExecStart=/usr/sbin/lifeboat version\n"
                       "[Install]\nWantedBy=multi-user.target\n",
        "docker.service": "[Unit]\nDescription=stub docker\nWants=network-online.target containerd.service\n"
                          "After=network-online.target containerd.service\n"
                          "[Service]\nExecStart=/usr/sbin/lifeboat version\n"
                          "[Install]\nWantedBy=multi-user.target\n",
        "containerd.service": "[Unit]\nDescription=stub containerd\nAfter=network.target\n"
                              "[Service]\nExecStart=/usr/sbin/lifeboat version\n",
    }
    for name, text in stubs.items():
        (units / name).unlink(missing_ok=True)
        (units / name).write_text(text)
    return root


def read_unit(path):
    """systemd unit syntax: {section: {key: [values...]}}; list-valued keys split on spaces."""
    sections, cur = {}, None
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        cur.setdefault(key.strip(), []).extend(value.split() or [""])
    return sections


def seconds(value):
    m = re.fullmatch(r"(\d+)(ms|s|min|m|h)?", value)
    assert m, f"not a plain time span: {value}"
    n, unit = int(m[1]), m[2] or "s"
    return n * {"ms": 0.001, "s": 1, "min": 60, "m": 60, "h": 3600}[unit]


# ---- RPM ----

def test_spec_version_is_the_cmake_project_version():
    spec = re.search(r"^Version:\s*(\S+)", (PKG / "lifeboat.spec").read_text(), re.M)[1]
    cmake = re.search(r"project\(lifeboat VERSION (\S+?)[ )]", (SRC / "CMakeLists.txt").read_text())[1]
    assert spec == cmake


# Warnings of Debian's rpm and rpmlint that the project cannot fix: on Amazon Linux, rpmbuild
# strips the binary (find-debuginfo) and compresses the man page (brp-compress), and rpmlint
# 1.11 finds the man page, which rpmlint 2.4.0 looks up by its section instead of its name.
PLATFORM_WARNINGS = {
    "unstripped-binary-or-object": "/usr/sbin/lifeboat",
    "manpage-not-compressed": "/usr/share/man/man8/lifeboat.8",
    "no-manual-page-for-binary": "lifeboat",
}


def test_rpmlint_reports_no_errors_and_no_warning_the_project_could_fix(rpms):
    p = run(["rpmlint", "-c", PKG / "rpmlint.toml", rpms["binary"], rpms["source"], PKG / "lifeboat.spec"])
    errors = [line for line in p.stdout.splitlines() if re.search(r": E: ", line)]
    assert p.returncode == 0 and not errors, p.stdout + p.stderr
    assert "2 packages and 1 specfiles checked; 0 errors" in p.stdout, p.stdout
    for line in p.stdout.splitlines():
        m = re.search(r": W: (\S+) ?(.*)$", line)
        if m:
            assert m[1] in PLATFORM_WARNINGS and PLATFORM_WARNINGS[m[1]] in m[2], line
    # The one rpmlint 2.4.0 gets wrong: the page it looks for is there.
    assert "/usr/share/man/man8/lifeboat.8" in check(["rpm", "-qlp", rpms["binary"]]).stdout


def test_spec_has_license_url_and_a_current_changelog():
    spec = (PKG / "lifeboat.spec").read_text()
    assert re.search(r"^%license LICENSE$", spec, re.M) and (SRC / "LICENSE").read_text().startswith("MIT License")
    assert re.search(r"^URL:\s+https://", spec, re.M)
    version = re.search(r"^Version:\s*(\S+)", spec, re.M)[1]
    entry = re.search(r"^%changelog\n\* (\w{3} \w{3} \d{2} \d{4}) .* - (\S+)$", spec, re.M)
    assert entry and entry[2] == f"{version}-1", "the newest changelog entry names this version"
    import datetime as dt
    day = dt.datetime.strptime(entry[1], "%a %b %d %Y")
    assert day.strftime("%a") == entry[1][:3], "the weekday matches the date"


def license_paths(paths):
    """%license files land in /usr/share/licenses/NAME (Fedora, Amazon Linux) or NAME-VERSION
    (Debian's rpm): the license and its directory, whichever it is."""
    return {f for f in paths if re.fullmatch(r"/usr/share/licenses/lifeboat(-[0-9.]+)?(/LICENSE)?", f)}


def test_rpm_file_list(rpms):
    listed = check(["rpm", "-qlp", rpms["binary"]]).stdout.split()
    # rpm adds build-id links for the binary; they are not part of the package's design.
    listed = {f for f in listed if not f.startswith("/usr/lib/.build-id")}
    licenses = license_paths(listed)
    assert len(licenses) == 2 and any(f.endswith("/LICENSE") for f in licenses), licenses
    assert listed - licenses == EXPECTED_FILES | EXPECTED_DIRS


def test_rpm_config_files_scriptlets_and_dependencies(rpms):
    flags = dict(line.split(" ", 1) for line in check(
        ["rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", rpms["binary"]]).stdout.splitlines())
    for conf in ("/etc/lifeboat/lifeboat.conf", "/etc/lifeboat/fluentd-recovery.conf.in"):
        assert set("cn") <= set(flags[conf]), f"{conf} is not %config(noreplace): {flags[conf]!r}"
    assert "d" in flags["/usr/share/doc/lifeboat/README.md"]
    modes = dict(line.split(" ", 1) for line in check(
        ["rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEMODES:perms}\n]", rpms["binary"]]).stdout.splitlines())
    assert modes["/var/lib/lifeboat"] == "drwx------"
    assert modes["/usr/sbin/lifeboat"] == "-rwxr-xr-x"
    assert modes["/etc/lifeboat/lifeboat.conf"] == "-rw-------"      # it may hold AWS keys

    scripts = check(["rpm", "-qp", "--scripts", rpms["binary"]]).stdout
    assert re.search(r"systemd-update-helper install-system-units lifeboat-boot\.service "
                     r"lifeboat-watch\.service lifeboat-reap\.timer", scripts), scripts
    assert re.search(r"systemd-update-helper remove-system-units lifeboat-boot\.service", scripts), scripts
    assert re.search(r"systemd-update-helper mark-restart-system-units lifeboat-watch\.service\b", scripts)
    # An upgrade must never re-run boot recovery.
    assert not re.search(r"mark-restart-system-units[^\n]*lifeboat-boot", scripts), scripts

    requires = check(["rpm", "-qp", "--requires", rpms["binary"]]).stdout.split("\n")
    for tool in ("xfsprogs", "e2fsprogs"):
        assert tool in requires
    for soname in ("libcurl.so.4", "libjansson.so.4", "libexpat.so.1", "libblkid.so.1", "libmount.so.1"):
        assert any(r.startswith(soname) for r in requires), f"no dependency on {soname}: {requires}"

    build_requires = check(["rpm", "-qp", "--requires", rpms["source"]]).stdout
    for br in ("cmake", "gcc", "pkgconfig(libcurl)", "pkgconfig(jansson)", "pkgconfig(expat)",
               "pkgconfig(blkid)", "pkgconfig(mount)", "systemd-rpm-macros"):
        assert br in build_requires, f"BuildRequires lacks {br}:\n{build_requires}"


def test_make_install_gives_the_rpm_tree(rpms, install_tree, workdir):
    extracted = workdir / "rpm-payload"
    extracted.mkdir()
    rpm2cpio = subprocess.Popen(["rpm2cpio", str(rpms["binary"])], stdout=subprocess.PIPE)
    check(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], cwd=extracted, stdin=rpm2cpio.stdout)
    assert rpm2cpio.wait() == 0

    def files(root):
        return {"/" + str(p.relative_to(root)) for p in root.rglob("*")
                if not p.is_dir() and ".build-id" not in p.parts}

    # %license is the package's: make install has no license directory.
    assert files(install_tree) == files(extracted) - license_paths(files(extracted)) == EXPECTED_FILES
    for d in EXPECTED_DIRS:
        assert (install_tree / d.lstrip("/")).is_dir(), d
    for f in EXPECTED_FILES - {"/usr/sbin/lifeboat"}:  # the binary differs in build flags only
        rel = f.lstrip("/")
        assert (install_tree / rel).read_bytes() == (extracted / rel).read_bytes(), f
    for tree in (install_tree, extracted):
        assert stat.S_IMODE((tree / "var/lib/lifeboat").stat().st_mode) == 0o700
        assert stat.S_IMODE((tree / "etc/lifeboat/lifeboat.conf").stat().st_mode) == 0o600


# ---- systemd ----

def verify_messages(root, paths):
    """systemd-analyze verify on unit files inside root; returns (exit code, its output lines)."""
    p = run(["systemd-analyze", "verify", f"--root={root}", *paths], cwd=root)
    return p.returncode, [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]


def about_lifeboat(lines):
    return [line for line in lines if "lifeboat" in line or "ecs.service" in line]


def test_systemd_analyze_verify_is_clean(systemd_root):
    # ecs.service (the stub) is verified with lifeboat's drop-in, which pulls lifeboat-boot in: the
    # transaction with docker, containerd and the lifeboat units must be free of ordering cycles.
    paths = [f"{UNIT_DIR}/{u}" for u in UNITS] + [f"{UNIT_DIR}/ecs.service"]
    rc, lines = verify_messages(systemd_root, paths)
    assert rc == 0 and not about_lifeboat(lines), "\n".join(lines)


def test_systemd_analyze_verify_would_catch_a_bad_unit(systemd_root, workdir):
    # The detector above is not blind: a unit with a typo'd key and a missing binary is reported.
    broken = workdir / "broken-root"
    shutil.copytree(systemd_root, broken, symlinks=True)
    unit = broken / UNIT_DIR / "lifeboat-watch.service"
    unit.write_text(unit.read_text().replace("RestartSec=", "RestartSecs="))
    (broken / "usr/sbin/lifeboat").unlink()
    rc, lines = verify_messages(broken, [f"{UNIT_DIR}/lifeboat-watch.service"])
    text = "\n".join(about_lifeboat(lines))
    assert "RestartSecs" in text and "/usr/sbin/lifeboat" in text, text
    shutil.rmtree(broken)


def test_preset_enables_boot_watch_and_the_timer(systemd_root, workdir):
    root = workdir / "preset-root"
    shutil.copytree(systemd_root, root, symlinks=True)
    check(["systemctl", f"--root={root}", "preset", *UNITS])
    wants = root / "etc/systemd/system"
    enabled = {p.relative_to(wants).as_posix() for p in wants.rglob("*") if p.is_symlink()}
    assert enabled == {
        "multi-user.target.wants/lifeboat-boot.service",
        "multi-user.target.wants/lifeboat-watch.service",
        "timers.target.wants/lifeboat-reap.timer",
    }
    shutil.rmtree(root)


def test_unit_ordering_and_failure_semantics():
    sysd = PKG / "systemd"
    boot = read_unit(sysd / "lifeboat-boot.service")
    svc = boot["Service"]
    assert svc["Type"] == ["oneshot"] and svc["RemainAfterExit"] == ["yes"]
    assert svc["ExecStart"] == ["/usr/sbin/lifeboat", "boot"]
    # Partial recovery (1) is success; own volume not ready (3) and config errors (2) fail the unit.
    assert svc["SuccessExitStatus"] == ["1"]
    assert 90 < seconds(svc["TimeoutStartSec"][0]) <= 600, "bounded, and above LIFEBOAT_BOOT_TIMEOUT"
    assert {"docker.service", "containerd.service", "ecs.service"} <= set(boot["Unit"]["Before"])
    assert "network-online.target" in boot["Unit"]["After"]
    assert "network-online.target" in boot["Unit"]["Wants"]
    assert boot["Install"]["WantedBy"] == ["multi-user.target"]

    dropin = read_unit(sysd / "ecs.service.d/lifeboat.conf")["Unit"]
    assert dropin["Wants"] == ["lifeboat-boot.service"] and dropin["After"] == ["lifeboat-boot.service"]
    assert not {"Requires", "Requisite", "BindsTo", "PartOf"} & set(dropin)

    watch = read_unit(sysd / "lifeboat-watch.service")
    # Stops after the runtime (reverse start order) but does not depend on it.
    assert {"docker.service", "containerd.service", "ecs.service"} <= set(watch["Unit"]["Before"])
    assert {"lifeboat-boot.service", "network-online.target"} <= set(watch["Unit"]["After"])
    assert not {"Requires", "Requisite", "BindsTo", "PartOf"} & set(watch["Unit"])
    assert watch["Service"]["Restart"] == ["on-failure"]
    # A hung watch loses data: it tells systemd when it is up and keeps the watchdog fed.
    assert watch["Service"]["Type"] == ["notify"] and watch["Service"]["NotifyAccess"] == ["main"]
    assert 60 <= seconds(watch["Service"]["WatchdogSec"][0]) <= 600
    # A release enters the mount namespaces of containers (setns) and names busy processes.
    assert {"CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE"} <= set(watch["Service"]["CapabilityBoundingSet"])
    assert watch["Service"]["RestrictNamespaces"] == ["mnt"]
    # Room for the final drain check: LIFEBOAT_FLUSH_TIMEOUT (100s) + LIFEBOAT_FLUSH_MARGIN (10s).
    assert seconds(watch["Service"]["TimeoutStopSec"][0]) >= 110

    reap = read_unit(sysd / "lifeboat-reap.service")
    assert reap["Service"]["Type"] == ["oneshot"] and "Install" not in reap
    # On an instance, reap looks at this instance's zone only; exit 4 (stranded or quarantined
    # volumes, a condition of the group that every instance sees) does not fail the unit on
    # each instance: it reaches a person through the metrics and an alarm. README, "Unit ordering".
    assert reap["Service"]["ExecStart"] == ["/usr/sbin/lifeboat", "reap", "--this-az"]
    assert reap["Service"]["SuccessExitStatus"] == ["4"], "1, 2 and 3 still fail the unit"
    # Relocation needs the whole region: the central reaper does it, not the zone's timer.
    assert "Environment" not in reap["Service"] or not any("LIFEBOAT_RELOCATE" in e for e in reap["Service"]["Environment"])
    timer = read_unit(sysd / "lifeboat-reap.timer")
    assert seconds(timer["Timer"]["RandomizedDelaySec"][0]) > 0
    assert timer["Install"]["WantedBy"] == ["timers.target"]

    assert "Release" not in timer["Unit"]["Description"][0], "releasing drained volumes is watch's job"

    for name in ("lifeboat-boot.service", "lifeboat-watch.service", "lifeboat-reap.service"):
        s = read_unit(sysd / name)["Service"]
        assert s["EnvironmentFile"] == ["-/etc/lifeboat/lifeboat.conf"], name
        assert s["NoNewPrivileges"] == ["yes"], name
    # boot and watch mount on the host: no private mount namespace, and CAP_SYS_ADMIN.
    for name in ("lifeboat-boot.service", "lifeboat-watch.service"):
        s = read_unit(sysd / name)["Service"]
        assert "CAP_SYS_ADMIN" in s["CapabilityBoundingSet"], name
        assert not MOUNT_NAMESPACE_OPTIONS & set(s), f"{name}: {MOUNT_NAMESPACE_OPTIONS & set(s)}"
    # reap only calls AWS: a sandbox of its own, without any capability.
    s = reap["Service"]
    assert s["CapabilityBoundingSet"] == [""] and s["ProtectSystem"] == ["strict"], s
    assert s["PrivateDevices"] == ["yes"] and s["ProtectHome"] == ["yes"], s
    exposure = run(["systemd-analyze", "security", "--offline=yes", str(sysd / "lifeboat-reap.service")]).stdout
    level = float(re.search(r"Overall exposure level for lifeboat-reap.service: ([0-9.]+)", exposure)[1])
    assert level <= 2.5, exposure[-400:]


# ---- the settings file ----

def test_every_setting_in_lifeboat_conf_is_accepted_by_the_agent(workdir):
    """Uncomments every KEY=value line of the shipped file and hands it to the agent: exit 2 or a
    warning naming the file would mean an unknown key or a bad default."""
    binary = os.environ.get("LIFEBOAT_BIN")
    assert binary, "LIFEBOAT_BIN is not set (run through ctest)"
    lines = re.findall(r"^#([A-Z][A-Z0-9_]*=.*)$", (PKG / "lifeboat.conf").read_text(), re.M)
    keys = [line.split("=", 1)[0] for line in lines]
    assert len(keys) == len(set(keys)) and len(keys) >= 28, keys
    conf = workdir / "all-settings.conf"
    conf.write_text("\n".join(lines) + "\n")
    with socket.socket() as s:  # a port that refuses connections: AWS is "unreachable"
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_SERVICE_ENDPOINT": closed,
           "AWS_ENDPOINT_URL_EC2": closed,
           **{k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")}}
    p = run([binary, "--config", conf, "status"], env=env)
    assert p.returncode == 3, f"exit {p.returncode}\n{p.stderr}"
    assert str(conf) not in p.stderr, p.stderr


# ---- cloud-init ----

def test_cloud_config_is_valid_for_cloud_init():
    path = PKG / "cloud-init/cloud-config.yaml"
    p = run(["cloud-init", "schema", "--config-file", path])
    assert p.returncode == 0 and "Valid cloud-config" in p.stdout, p.stdout + p.stderr
    doc = yaml.safe_load(path.read_text())
    written = {f["path"]: f["content"] for f in doc["write_files"]}
    assert "ECS_CLUSTER=" in written["/etc/ecs/ecs.config"]
    assert "LIFEBOAT_BUFFER_DEVICE=" in written["/etc/lifeboat/lifeboat.conf"]
    assert {f["path"]: f.get("permissions") for f in doc["write_files"]}["/etc/lifeboat/lifeboat.conf"] == "0600"
    commands = [" ".join(c) if isinstance(c, list) else c for c in doc["runcmd"]]
    assert "systemctl start lifeboat-boot.service" in commands
    for c in commands:  # cloud-final must not wait for ecs, which waits for cloud-final
        assert not re.search(r"\becs(\.service)?\b", c) or "--no-block" in c, c


def test_user_data_script_passes_bash_and_shellcheck():
    path = PKG / "cloud-init/user-data.sh"
    check(["bash", "-n", path])
    check(["shellcheck", path])


def run_user_data(workdir, name, fake_env, script=None):
    """Runs user-data.sh (or script) as root in a private mount namespace whose /etc is an
    overlay, with fake systemctl, lifeboat, dnf, rpm and sudo; returns (process, files it wrote
    under /etc, command log)."""
    case = workdir / f"user-data-{name}"
    bindir, scratch, etc_out = case / "bin", case / "scratch", case / "etc"
    for d in (bindir, scratch, etc_out):
        d.mkdir(parents=True)
    log = case / "commands.log"
    fake = '#!/bin/sh\necho "$(basename "$0") $*" >>"$FAKE_LOG"\n'
    (bindir / "systemctl").write_text(fake + 'case "$1" in\n'
                                      '  cat) exit "${FAKE_UNITS_MISSING:-0}" ;;\n'
                                      '  restart) exit "${FAKE_RESTART_RC:-0}" ;;\n'
                                      'esac\nexit 0\n')
    (bindir / "lifeboat").write_text(fake + 'exit "${FAKE_LIFEBOAT_RC:-0}"\n')
    (bindir / "dnf").write_text(fake + "exit 0\n")
    (bindir / "rpm").write_text(fake + '[ "$1" = -K ] && echo "$2: ${FAKE_RPM_K:-digests signatures OK}"\nexit 0\n')
    (bindir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for f in bindir.iterdir():
        f.chmod(0o755)
    inner = ('set -e; mount -t tmpfs tmpfs "$SCRATCH"; mkdir "$SCRATCH/upper" "$SCRATCH/work"; '
             'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$SCRATCH/upper,workdir=$SCRATCH/work" /etc; '
             'set +e; bash "$SCRIPT"; rc=$?; cp -a "$SCRATCH/upper/." "$ETC_OUT/"; exit $rc')
    env = {"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin", "FAKE_LOG": str(log), "SCRATCH": str(scratch),
           "ETC_OUT": str(etc_out), "SCRIPT": str(script or PKG / "cloud-init/user-data.sh"), **fake_env}
    p = run(["unshare", "--mount", "--propagation", "private", "bash", "-c", inner], env=env)
    commands = log.read_text().splitlines() if log.exists() else []
    return p, etc_out, commands


def test_user_data_writes_settings_and_runs_boot_through_its_unit(workdir):
    p, etc, commands = run_user_data(workdir, "units", {})
    assert p.returncode == 0, p.stderr
    ecs = (etc / "ecs/ecs.config").read_text().splitlines()
    assert "ECS_CLUSTER=my-cluster" in ecs and "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true" in ecs
    assert (etc / "lifeboat/lifeboat.conf").read_text().splitlines()[-1] == "LIFEBOAT_BUFFER_DEVICE=/dev/sdf"
    assert stat.S_IMODE((etc / "lifeboat/lifeboat.conf").stat().st_mode) == 0o600
    assert commands == [
        "systemctl cat lifeboat-boot.service",
        "systemctl restart lifeboat-boot.service",
        "systemctl start --no-block lifeboat-watch.service lifeboat-reap.timer",
    ]


def test_user_data_never_fails_the_instance_when_boot_fails(workdir):
    p, _, commands = run_user_data(workdir, "restart-fails", {"FAKE_RESTART_RC": "1"})
    assert p.returncode == 0 and "journalctl -u lifeboat-boot" in p.stderr, p.stderr
    assert commands[-1] == "systemctl start --no-block lifeboat-watch.service lifeboat-reap.timer"

    p, _, commands = run_user_data(workdir, "binary-only", {"FAKE_UNITS_MISSING": "1", "FAKE_LIFEBOAT_RC": "3"})
    assert p.returncode == 0 and "boot exited 3" in p.stderr, p.stderr
    assert commands == ["systemctl cat lifeboat-boot.service", "lifeboat boot"]
    assert not any("ecs" in c for c in commands)


# ---- the AMI bake ----

def test_packer_template_validates_offline(workdir):
    """Debian's packer (1.6.6, the amazon builder built in) validates without AWS or plugins."""
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "PACKER_CONFIG_DIR": str(workdir), "HOME": str(workdir)}
    template = PKG / "packer/lifeboat-ecs-al2023.pkr.hcl"
    p = run(["packer", "validate", "-var", "rpm=lifeboat.rpm", template], env=env, cwd=workdir)
    assert p.returncode == 0, p.stdout + p.stderr
    # A template packer refuses is reported (the check can fail).
    broken = workdir / "broken.pkr.hcl"
    broken.write_text(template.read_text().replace("ssh_username", "ssh_usernme"))
    p = run(["packer", "validate", "-var", "rpm=lifeboat.rpm", broken], env=env, cwd=workdir)
    assert p.returncode != 0
    # Without the RPM it cannot bake: the variable is required.
    p = run(["packer", "validate", template], env=env, cwd=workdir)
    assert p.returncode != 0 and "rpm" in p.stdout + p.stderr


def test_bake_script_installs_the_rpm_and_fluentd_config_and_enables_the_units(workdir):
    script = PKG / "packer/install-lifeboat.sh"
    check(["shellcheck", script])
    for name, env, signed in (("unsigned", {}, None), ("signed", {"RPM_KEY": "-----BEGIN PGP-----"}, True),
                              ("bad-signature", {"RPM_KEY": "-----BEGIN PGP-----",
                                                 "FAKE_RPM_K": "digests SIGNATURES NOT OK"}, False)):
        bake = workdir / f"bake-{name}"
        bake.mkdir()
        (bake / "lifeboat.rpm").write_bytes(b"rpm")
        (bake / "fluent.conf").write_text((PKG / "fluentd/fluent.conf").read_text())
        p, etc, commands = run_user_data(workdir, f"bake-{name}", {"LIFEBOAT_BAKE_DIR": str(bake), **env}, script)
        if signed is False:
            assert p.returncode != 0 and "not signed" in p.stderr, p.stderr
            assert not any(c.startswith("dnf") for c in commands), "an unsigned RPM is never installed"
            continue
        assert p.returncode == 0, p.stderr
        assert (etc / "fluent/fluent.conf").read_text() == (PKG / "fluentd/fluent.conf").read_text()
        assert (etc / "fluent/recovery.d").is_dir()
        assert f"dnf install -y {bake}/lifeboat.rpm" in commands
        assert commands[-1] == "systemctl enable lifeboat-boot.service lifeboat-watch.service lifeboat-reap.timer"
        assert not any(c.startswith("systemctl start") for c in commands), "a bake starts nothing"
        assert any(c.startswith("rpm --import") for c in commands) == bool(signed)
        assert not (bake / "lifeboat.rpm").exists()


# ---- fluentd, ECS, IAM, EC2 ----

def aws_validate(service, operation, path):
    """The AWS CLI validates --cli-input-json against the API model before it sends anything: with
    nothing listening on the endpoint, a valid document fails only at connecting."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
               "AWS_SECRET_ACCESS_KEY": "secret", "AWS_MAX_ATTEMPTS": "1", "AWS_EC2_METADATA_DISABLED": "true"}
        p = run(["aws", "--region", "us-east-1", "--endpoint-url", endpoint, service, operation,
                 "--cli-input-json", f"file://{path}"], env=env)
    assert "Could not connect to the endpoint URL" in p.stderr, p.stderr


def test_ecs_task_definition_is_a_valid_request_with_the_bind_mounts():
    path = PKG / "fluentd/ecs-task-definition.json"
    aws_validate("ecs", "register-task-definition", path)
    task = json.loads(path.read_text())
    assert task["networkMode"] == "host", "the agent on the host reaches rpc_endpoint on 127.0.0.1"
    volumes = {v["name"]: v["host"]["sourcePath"] for v in task["volumes"]}
    mounts = {volumes[m["sourceVolume"]]: (m["containerPath"], m["readOnly"]) for c in task["containerDefinitions"]
              for m in c["mountPoints"]}
    defaults = dict(re.findall(r"^#([A-Z][A-Z0-9_]*)=(.*)$", (PKG / "lifeboat.conf").read_text(), re.M))
    buffer, recovery = defaults["LIFEBOAT_BUFFER_MOUNT"], defaults["LIFEBOAT_RECOVERY_ROOT"]
    snippets, state = defaults["LIFEBOAT_FLUENTD_CONF_DIR"], defaults["LIFEBOAT_STATE_DIR"]
    # Same paths inside and out (lifeboat writes snippets naming host paths): the live buffer and
    # the recovered volumes read-write, the snippets read-only.
    assert mounts[buffer] == (buffer, False)
    assert mounts[recovery] == (recovery, False)
    assert mounts[snippets] == (snippets, True)
    # Nothing else of lifeboat's: the container (root) must not reach the state directory (the
    # mount-in-progress markers) or plant anything beside the mount points.
    lifeboat_dir = os.path.commonpath([buffer, recovery, state])
    exposed = [src for src in mounts if src == lifeboat_dir or src.startswith(lifeboat_dir + "/")]
    assert sorted(exposed) == sorted([buffer, recovery]), exposed
    assert not any(state == src or state.startswith(src.rstrip("/") + "/") for src in mounts)


def test_launch_template_is_a_valid_request_that_keeps_and_tags_the_buffer_volume():
    path = PKG / "launch-template.json"
    aws_validate("ec2", "create-launch-template", path)
    data = json.loads(path.read_text())["LaunchTemplateData"]
    buffer = [m for m in data["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf"]
    assert buffer and buffer[0]["Ebs"]["DeleteOnTermination"] is False
    tags = {t["ResourceType"]: {x["Key"]: x["Value"] for x in t["Tags"]} for t in data["TagSpecifications"]}
    cluster = re.search(r"ECS_CLUSTER=(\S+)", (PKG / "cloud-init/cloud-config.yaml").read_text())[1]
    assert tags["volume"][GROUP_TAG] == tags["instance"][GROUP_TAG] == cluster
    assert data["MetadataOptions"]["HttpTokens"] == "required"


# The target of an instance action must be the caller's own instance: the instance the request
# comes from (ec2:SourceInstanceARN) is the instance acted on (ec2:InstanceID). README, "IAM policy".
THIS_INSTANCE = {"ArnLike": {"ec2:SourceInstanceARN": "arn:aws:ec2:*:*:instance/${ec2:InstanceID}"}}


def ec2_actions_by_function():
    """{lb_ec2_* function: the EC2 actions it sends}, read from agent/aws/ec2.c."""
    text = (SRC / "agent/aws/ec2.c").read_text()
    bodies = dict(re.findall(r"^(?:static )?int (\w+)\([^)]*\)[^{;]*\{(.*?)^\}", text, re.M | re.S))
    action = re.compile(r'(?:lb_form_init_action|tags_form|return_call|lb_query_bad_answer)\([^"\n;]*"([A-Z]\w+)"')
    calls = re.compile(r"\b(\w+_form|describe_volumes_form)\(")
    result = {}
    for name, body in bodies.items():
        found = set(action.findall(body))
        for helper in calls.findall(body):     # a static form builder the function calls
            found |= set(action.findall(bodies.get(helper, "")))
        if name.startswith("lb_ec2_") and found:
            result[name] = found
    assert {"lb_ec2_describe_volumes", "lb_ec2_form_attach_volume", "lb_ec2_detach_volume",
            "lb_ec2_form_delete_volume", "lb_ec2_describe_snapshots", "lb_ec2_form_create_volume"} <= set(result), result
    return result


def sources(*folders, but=()):
    """The C sources of agent/FOLDER/..., without the files named in but (paths under agent/)."""
    return [src for folder in folders for src in sorted((SRC / "agent" / folder).glob("*.c"))
            if str(src.relative_to(SRC / "agent")) not in but]


# The instance role runs boot, watch, status and the timer's reap --this-az, which never
# relocates (its zone has the group: this instance); reap's own role runs all of reap.
INSTANCE_SOURCES = sources("boot", "watch", "status", "reap", but=("reap/relocate.c",))
REAP_SOURCES = sources("reap")


def ec2_calls_of(srcs):
    """The EC2 actions the sources send, through ec2.c's functions."""
    by_function = ec2_actions_by_function()
    used = set()
    for src in srcs:
        used |= set(re.findall(r"\b(lb_ec2_\w+)\(", src.read_text()))
    return set().union(*(by_function.get(f, set()) for f in used))


def tag_keys_written_by(srcs):
    """lifeboat's tag keys the sources write (lb_tag_key(..., LB_TAG_X, ...)), but the group,
    which only the launch template writes, and what is only set on a snapshot or a volume as
    it is created (tags on create have a statement of their own)."""
    names = dict(re.findall(r'^#define (LB_TAG_[A-Z_]+) "([a-z-]+)"', (SRC / "include/lifeboat/state/volume.h").read_text(), re.M))
    used = set()
    for src in srcs:
        used |= set(re.findall(r"lb_tag_key\([^,]+, (LB_TAG_[A-Z_]+)", src.read_text()))
    return {f"lifeboat:{names[n]}" for n in used} - {GROUP_TAG} - AT_CREATION


AT_CREATION = {"lifeboat:relocated-from", "lifeboat:target-zone"}


def policy_statements(name):
    policy = json.loads((PKG / "iam" / name).read_text())
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    # One statement per concern, each with its own Sid: other issues add theirs beside them.
    assert all(re.fullmatch(r"[A-Za-z]+", s.get("Sid", "")) for s in statements), name
    assert len({s["Sid"] for s in statements}) == len(statements), name
    by_action = {}
    for s in statements:
        assert s["Effect"] == "Allow"
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        for a in actions:
            by_action.setdefault(a, []).append(s)
    return by_action


def check_least_privilege(by_action, tag_keys):
    group_condition = f"aws:ResourceTag/{GROUP_TAG}"
    request_group = f"aws:RequestTag/{GROUP_TAG}"
    for a, ss in by_action.items():
        for s in ss:
            if a.startswith("ec2:Describe"):
                # EC2's Describe calls support no resource-level permissions or conditions.
                assert s["Resource"] == "*" and "Condition" not in s, s
                continue
            # The group: of the resource, or (for what is being created) of the tags it is created with.
            cond = s["Condition"]["StringEquals"]
            assert s["Resource"] != "*" and (group_condition in cond or request_group in cond), (a, s)
            for key in (group_condition, request_group):
                assert cond.get(key, "${aws:PrincipalTag/lifeboat:group}") == "${aws:PrincipalTag/lifeboat:group}", s
            # Whatever acts on an instance acts on the caller's own instance only.
            if ":instance/" in str(s["Resource"]):
                assert s["Condition"]["ArnLike"] == THIS_INSTANCE["ArnLike"], (a, s)
    # Tagging existing volumes: only lifeboat's own keys, never the group tag, never "all tags"
    # (no keys given); together the statements allow exactly the keys the code writes.
    allowed = set()
    for a in ("ec2:CreateTags", "ec2:DeleteTags"):
        for s in by_action.get(a, []):
            keys = s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
            assert all(k.startswith("lifeboat:") for k in keys), s
            assert s["Condition"]["Null"]["aws:TagKeys"] == "false"
            if "ec2:CreateAction" in s["Condition"]["StringEquals"]:
                continue        # tags on create: checked with the create statements
            assert GROUP_TAG not in keys and set(keys) <= tag_keys, (keys, tag_keys)
            allowed |= set(keys)
    assert allowed == tag_keys, (allowed, tag_keys)
    # Deleting volumes: only drained or relocated ones.
    for s in by_action.get("ec2:DeleteVolume", []):
        assert s["Condition"]["StringEquals"]["aws:ResourceTag/lifeboat:state"] in ("flushed", "relocated"), s


def test_lifecycle_hook_example_is_a_valid_request_that_never_abandons():
    path = PKG / "autoscaling/lifecycle-hook.json"
    aws_validate("autoscaling", "put-lifecycle-hook", path)
    hook = json.loads(path.read_text())
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    # ABANDON on a timeout would skip the group's other hooks (ECS managed draining's).
    assert hook["DefaultResult"] == "CONTINUE"
    conf = dict(re.findall(r"^#([A-Z][A-Z0-9_]*)=(.*)$", (PKG / "lifeboat.conf").read_text(), re.M))
    assert conf["LIFEBOAT_LIFECYCLE_HOOK"] == hook["LifecycleHookName"]
    # AWS's range; heartbeats go out at half of it.
    assert 30 <= hook["HeartbeatTimeout"] <= 7200


def test_iam_policy_is_least_privilege():
    """The instance role's policy allows exactly the EC2 calls the code makes, each limited to
    the group, instance actions to the caller's own instance. (Another service's statements,
    autoscaling:* say, are checked the same way by a test of their own.)"""
    by_action = {a: ss for a, ss in policy_statements("lifeboat-policy.json").items() if a.startswith("ec2:")}
    calls = ec2_calls_of(INSTANCE_SOURCES)
    assert {f"ec2:{a}" for a in calls} == set(by_action), (sorted(calls), sorted(by_action))
    assert not {"CreateSnapshot", "CreateVolume", "DeleteSnapshot"} & calls, "relocation is the central reaper's"
    check_least_privilege(by_action, tag_keys_written_by(INSTANCE_SOURCES))
    # Attach and detach: the volume is the group's and the instance is this one.
    for a in ("ec2:AttachVolume", "ec2:DetachVolume"):
        assert {s["Resource"] for s in by_action[a]} == {"arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:instance/*"}
    [modify] = by_action["ec2:ModifyInstanceAttribute"]
    assert modify["Resource"] == "arn:aws:ec2:*:*:instance/*"


def test_iam_autoscaling_statements_hold_only_the_groups_scale_ins():
    """watch's Auto Scaling calls: the two lookups (no resource-level permissions), and the
    heartbeat and completion only in Auto Scaling groups tagged with the group."""
    by_action = {a: ss for a, ss in policy_statements("lifeboat-policy.json").items() if a.startswith("autoscaling:")}
    assert set(by_action) == {"autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks",
                              "autoscaling:RecordLifecycleActionHeartbeat", "autoscaling:CompleteLifecycleAction"}
    calls = set(re.findall(r'(?:lb_form_init_action|action_form)\([^"\n;]*"([A-Z]\w+)"', (SRC / "agent/aws/autoscaling.c").read_text()))
    assert {f"autoscaling:{a}" for a in calls} == set(by_action), calls
    for a in ("autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks"):
        assert all(s["Resource"] == "*" and "Condition" not in s for s in by_action[a])
    # Auto Scaling names a group's tags with its own condition key.
    for a in ("autoscaling:RecordLifecycleActionHeartbeat", "autoscaling:CompleteLifecycleAction"):
        for s in by_action[a]:
            assert s["Condition"] == {"StringEquals": {
                f"autoscaling:ResourceTag/{GROUP_TAG}": "${aws:PrincipalTag/lifeboat:group}"}}, s
        assert {s["Resource"] for s in by_action[a]} == {
            "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*"}


def test_iam_reap_policy_is_reap_alone():
    """reap's own role (lifeboat-reap-policy.json): what agent/reap/ calls and nothing else. It
    writes lifeboat:state only to mark a dirty source relocated, so it never meets
    DeleteVolume's state=flushed condition by itself, and it touches no instance."""
    by_action = {a: ss for a, ss in policy_statements("lifeboat-reap-policy.json").items() if a.startswith("ec2:")}
    calls = ec2_calls_of(REAP_SOURCES)
    assert calls == {"DescribeVolumes", "CreateTags", "DeleteTags", "DeleteVolume", "DescribeSnapshots",
                     "CreateSnapshot", "CreateVolume", "DeleteSnapshot"}, calls
    assert {f"ec2:{a}" for a in calls} == set(by_action)
    # Tags of existing volumes: the mark, and a relocated source's. The copy is created with the
    # source's owner and fs-uuid (tags on create, below).
    on_existing = {"lifeboat:available-since", "lifeboat:state", "lifeboat:relocated-to", "lifeboat:relocated-at"}
    copied = {"lifeboat:owner", "lifeboat:fs-uuid"}
    assert tag_keys_written_by(REAP_SOURCES) == on_existing | copied
    check_least_privilege(by_action, on_existing)
    assert not any(":instance/" in str(s["Resource"]) for ss in by_action.values() for s in ss)
    # The one statement that writes a state: a dirty volume of the group becomes relocated.
    [mark] = [s for s in by_action["ec2:CreateTags"] if "lifeboat:state" in
              s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"] and "ec2:CreateAction" not in s["Condition"]["StringEquals"]]
    assert mark["Condition"]["StringEquals"]["aws:ResourceTag/lifeboat:state"] == "dirty"
    assert mark["Condition"]["StringEquals"]["aws:RequestTag/lifeboat:state"] == "relocated"
    assert not any("lifeboat:state" in s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
                   for s in by_action["ec2:DeleteTags"])
    # Tags on create (relocation's snapshots and copies): only with CreateSnapshot and CreateVolume,
    # only lifeboat's keys, the group the role's own, a copy created dirty.
    [on_create] = [s for s in by_action["ec2:CreateTags"] if "ec2:CreateAction" in s["Condition"]["StringEquals"]]
    assert sorted(on_create["Condition"]["StringEquals"]["ec2:CreateAction"]) == ["CreateSnapshot", "CreateVolume"]
    assert AT_CREATION | copied <= set(on_create["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
    for a, resource in (("ec2:CreateSnapshot", "arn:aws:ec2:*::snapshot/*"),
                        ("ec2:CreateVolume", "arn:aws:ec2:*:*:volume/*")):
        [created] = [s for s in by_action[a] if s["Resource"] == resource]
        assert created["Condition"]["Null"]["aws:TagKeys"] == "false"
        assert GROUP_TAG in created["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
    [copy] = [s for s in by_action["ec2:CreateVolume"] if s["Resource"] == "arn:aws:ec2:*:*:volume/*"]
    assert copy["Condition"]["StringEquals"]["aws:RequestTag/lifeboat:state"] == "dirty"
    assert sorted(s["Condition"]["StringEquals"]["aws:ResourceTag/lifeboat:state"]
                  for s in by_action["ec2:DeleteVolume"]) == ["flushed", "relocated"]
    assert all(s["Resource"] == "arn:aws:ec2:*::snapshot/*" for s in by_action["ec2:DeleteSnapshot"])
    task = json.loads((PKG / "ecs/lifeboat-reap-task-definition.json").read_text())
    assert "--relocate" in task["containerDefinitions"][0]["command"], "the central reaper relocates"


def setting_default(name):
    """The default of a setting, from the table in agent/basic/settings.c."""
    table = (SRC / "agent/basic/settings.c").read_text()
    return re.search(rf'\{{ "{name}", \w+, F\(\w+\), [^,]+,\s*"([^"]*)"', table)[1]


def actions_of(statement):
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def test_iam_metrics_statement_allows_exactly_what_reap_publishes():
    """cloudwatch:PutMetricData has no resource ARN: the namespace condition is the only limit.
    Both roles that run reap (the instances' with the timer, the central reaper's) may publish,
    to the default namespace only; nothing but reap publishes."""
    cw_source = (SRC / "agent/aws/cloudwatch.c").read_text()
    sent = set(re.findall(r'lb_form_init_action\([^"\n;]*"([A-Z]\w+)"', cw_source))
    assert sent == {"PutMetricData"}, sent
    publishers = {p.parent.name for p in (SRC / "agent").glob("*/*.c")
                  if p.parent.name != "aws" and re.search(r"\blb_cloudwatch_put_metric_data\(", p.read_text())}
    assert publishers == {"reap"}, publishers
    namespace = setting_default("LIFEBOAT_METRICS_NAMESPACE")
    assert namespace == "Lifeboat"
    for name in ("lifeboat-policy.json", "lifeboat-reap-policy.json"):
        statements = json.loads((PKG / "iam" / name).read_text())["Statement"]
        cw = [s for s in statements if any(a.startswith("cloudwatch:") for a in actions_of(s))]
        assert {a for s in cw for a in actions_of(s)} == {f"cloudwatch:{a}" for a in sent}, name
        for s in cw:
            assert s["Effect"] == "Allow" and s["Resource"] == "*", s
            assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": namespace}}, s


def reap_metric_names():
    """The metric names of agent/reap/metrics.c's table, and the dimension names."""
    names = re.findall(r'\{ \.name = "(\w+)"', (SRC / "agent/reap/metrics.c").read_text())
    dims = dict(re.findall(r'^#define LB_REAP_DIMENSION_(\w+) "(\w+)"', (SRC / "include/lifeboat/reap/metrics.h").read_text(), re.M))
    return names, dims


def test_alarms_are_valid_requests_on_what_reap_publishes():
    names, dims = reap_metric_names()
    assert {"Stranded", "Quarantined", "DirtyAvailable", "Deleted", "DeletionsFailed"} <= set(names), names
    namespace = setting_default("LIFEBOAT_METRICS_NAMESPACE")
    group = json.loads((PKG / "ecs/lifeboat-reap-task-definition.json").read_text())
    group = {e["name"]: e["value"] for e in group["containerDefinitions"][0]["environment"]}["LIFEBOAT_GROUP"]
    for f in ("lifeboat-attention-alarm.json", "lifeboat-reaper-silent-alarm.json"):
        aws_validate("cloudwatch", "put-metric-alarm", PKG / "cloudwatch" / f)

    attention = json.loads((PKG / "cloudwatch/lifeboat-attention-alarm.json").read_text())
    stats = {m["Id"]: m["MetricStat"] for m in attention["Metrics"] if "MetricStat" in m}
    [expr] = [m for m in attention["Metrics"] if m.get("ReturnData")]
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"Stranded", "Quarantined"}
    for s in stats.values():
        # The group's totals: only the central (region-wide) reaper publishes them.
        assert s["Metric"]["Namespace"] == namespace
        assert s["Metric"]["Dimensions"] == [{"Name": dims["GROUP"], "Value": group}]
        # Several reapers may publish the same hour (the timer, a person): the largest count counts.
        assert s["Stat"] == "Maximum" and s["Period"] == 3600
    assert set(re.findall(r"[a-z]+", expr["Expression"])) == set(stats) and "+" in expr["Expression"]
    assert attention["ComparisonOperator"] == "GreaterThanThreshold" and attention["Threshold"] == 0
    assert attention["AlarmActions"]

    silent = json.loads((PKG / "cloudwatch/lifeboat-reaper-silent-alarm.json").read_text())
    assert silent["MetricName"] in names and silent["Namespace"] == namespace
    assert silent["Dimensions"] == [{"Name": dims["GROUP"], "Value": group}]
    assert silent["Statistic"] == "SampleCount" and silent["TreatMissingData"] == "breaching"
    assert silent["ComparisonOperator"] == "LessThanThreshold" and silent["Threshold"] == 1


def test_central_reaper_task_schedule_and_roles_fit_together():
    """The recommended setup (README, "One reaper per group"): EventBridge Scheduler runs the
    Fargate task `lifeboat reap --metrics` once an hour with the reap role."""
    task_path, schedule_path = PKG / "ecs/lifeboat-reap-task-definition.json", PKG / "ecs/lifeboat-reap-schedule.json"
    aws_validate("ecs", "register-task-definition", task_path)
    aws_validate("scheduler", "create-schedule", schedule_path)
    task, schedule = json.loads(task_path.read_text()), json.loads(schedule_path.read_text())

    # Fargate: it still runs when the group's own instances are gone, which is when volumes strand.
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    [c] = task["containerDefinitions"]
    assert c["entryPoint"] == ["/usr/sbin/lifeboat"] and c["command"][:1] == ["reap"] and "--metrics" in c["command"]
    assert not {"--az", "--this-az", "--dry-run"} & set(c["command"]), "the whole region, for real"
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert env["AWS_EC2_METADATA_DISABLED"] == "true" and env["AWS_REGION"] and env["LIFEBOAT_GROUP"]
    # reap only calls AWS: no root, nothing written.
    assert c["user"] != "0" and c["readonlyRootFilesystem"] is True
    assert task["taskRoleArn"].endswith(":role/lifeboat-reap")

    ecs = schedule["Target"]["EcsParameters"]
    assert schedule["ScheduleExpression"] == "rate(1 hour)" and schedule["State"] == "ENABLED"
    assert ecs["LaunchType"] == "FARGATE" and ecs["TaskCount"] == 1
    assert ecs["TaskDefinitionArn"].endswith(f":task-definition/{task['family']}")
    assert schedule["Target"]["Arn"].endswith(f":cluster/{env['LIFEBOAT_GROUP']}")

    # The scheduler's role: run this task on this cluster, pass its two roles to ECS, nothing else.
    statements = json.loads((PKG / "iam/lifeboat-reap-scheduler-policy.json").read_text())["Statement"]
    assert sorted(a for s in statements for a in actions_of(s)) == ["ecs:RunTask", "iam:PassRole"]
    [run_task] = [s for s in statements if actions_of(s) == ["ecs:RunTask"]]
    assert set(run_task["Resource"]) == {ecs["TaskDefinitionArn"], ecs["TaskDefinitionArn"] + ":*"}
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": schedule["Target"]["Arn"]}}
    [pass_role] = [s for s in statements if actions_of(s) == ["iam:PassRole"]]
    assert set(pass_role["Resource"]) == {task["taskRoleArn"], task["executionRoleArn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert schedule["Target"]["RoleArn"].endswith(":role/lifeboat-reap-scheduler")


def test_fluentd_example_matches_the_agent_defaults():
    conf = (PKG / "fluentd/fluent.conf").read_text()
    defaults = dict(re.findall(r"^#([A-Z][A-Z0-9_]*)=(.*)$", (PKG / "lifeboat.conf").read_text(), re.M))
    system = re.search(r"<system>(.*?)</system>", conf, re.S)[1]
    endpoint = re.search(r"^\s*rpc_endpoint\s+(\S+)", system, re.M)[1]
    assert defaults["LIFEBOAT_FLUENTD_RPC"] == f"http://{endpoint}"
    assert re.search(r"^@include\s+" + re.escape(defaults["LIFEBOAT_FLUENTD_CONF_DIR"]) + r"/\*\.conf$", conf, re.M)
    paths = re.findall(r"^\s*path\s+(/\S+)", conf, re.M)
    assert paths and all(p.startswith(defaults["LIFEBOAT_BUFFER_MOUNT"] + "/") for p in paths), paths


# ---- the man page and the bash completion ----

def lifeboat_out(*args):
    binary = os.environ.get("LIFEBOAT_BIN")
    assert binary, "LIFEBOAT_BIN is not set (run through ctest)"
    return check([binary, *args]).stdout


def setting_names():
    """Every key of the settings table (agent/basic/settings.c)."""
    table = (SRC / "agent/basic/settings.c").read_text()
    names = re.findall(r'^\s*\{ "((?:LIFEBOAT|AWS)_[A-Z0-9_]+)",', table, re.M)
    assert len(names) >= 30, names
    return names


def man_text():
    """The page as man renders it, without font changes."""
    p = run(["man", "-l", "-Tutf8", PKG / "man/lifeboat.8"], env={**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    assert p.returncode == 0, p.stderr
    return re.sub(r".\x08", "", p.stdout)


def global_options(usage):
    """The long options of the "Options:" block of lifeboat --help."""
    block = usage.split("Options:")[1].split("\n\n")[0]
    return set(re.findall(r"^ +(?:-\w, )?(--[a-z][a-z-]+)", block, re.M))


def test_man_page_is_built_from_its_source_and_lints_clean():
    check([SRC / "scripts/man", "--check"])
    p = run(["mandoc", "-T", "lint", "-W", "warning", PKG / "man/lifeboat.8"])
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr
    # man --warnings exits 0 even when groff warns: its stderr is the verdict.
    p = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", PKG / "man/lifeboat.8"],
            env={**os.environ, "LC_ALL": "C.UTF-8", "MANROFFSEQ": "", "MANWIDTH": "80"})
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr


def test_man_page_covers_every_command_option_setting_exit_code_and_tag():
    text = man_text()
    usage = lifeboat_out("--help")
    commands = re.findall(r"^  ([a-z]+) +\S", usage.split("Commands:")[1].split("Options:")[0], re.M)
    assert {"boot", "watch", "reap", "status", "help", "version"} <= set(commands)
    for command in commands:
        assert re.search(rf"^\s+{command}\b", text, re.M), f"the man page has no entry for {command}"
        if command in ("help", "version"):
            continue
        for option in set(re.findall(r"(--[a-z][a-z-]+)", lifeboat_out(command, "--help"))) - {"--help"}:
            assert option in text, f"{command} {option} is not in the man page"
    for option in global_options(usage):
        assert option in text, option
    for name in setting_names():
        assert name in text, f"setting {name} is not in the man page"
    for code in range(5):
        assert re.search(rf"^ {{7}}{code}\n", text, re.M), f"exit status {code} is not in the man page"
    tags = re.findall(r'^#define LB_TAG_[A-Z_]+ "([a-z-]+)"', (SRC / "include/lifeboat/state/volume.h").read_text(), re.M)
    for tag in tags:
        assert f"lifeboat:{tag}" in text, tag


def test_readme_lists_every_setting():
    readme = (SRC / "README.md").read_text()
    for name in setting_names():
        if name != "LIFEBOAT_CONFIG":   # described in the text above the table
            assert f"`{name}`" in readme, f"setting {name} is not in the README's table"


def complete(words):
    """What the bash completion offers for the command line words (the last one being typed)."""
    script = f"""
source /usr/share/bash-completion/bash_completion
source {PKG / "bash-completion/lifeboat"}
COMP_WORDS=({" ".join(repr(w) if w else "''" for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
_lifeboat lifeboat "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = check(["bash", "--norc", "--noprofile", "-c", script])
    return set(p.stdout.split())


def test_bash_completion_offers_every_command_and_option():
    usage = lifeboat_out("--help")
    commands = set(re.findall(r"^  ([a-z]+) +\S", usage.split("Commands:")[1].split("Options:")[0], re.M))
    assert complete(["lifeboat", ""]) == commands
    assert complete(["lifeboat", "st"]) == {"status"}
    assert complete(["lifeboat", "--verbose", "re"]) == {"reap"}
    assert global_options(usage) == complete(["lifeboat", "--"])
    for command in commands - {"help", "version"}:
        options = set(re.findall(r"(--[a-z][a-z-]+)", lifeboat_out(command, "--help"))) | {"--help"}
        assert complete(["lifeboat", command, "--"]) == options, command
        assert complete(["lifeboat", "-c", "/etc/x.conf", command, "--"]) == options, command
    assert complete(["lifeboat", "help", ""]) == commands
    assert complete(["lifeboat", "reap", "--min-age", ""]) == set(), "a duration is not completed"
