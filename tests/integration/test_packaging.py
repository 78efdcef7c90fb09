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
    "/etc/lifeboat/lifeboat.conf",
    "/etc/lifeboat/fluentd-recovery.conf.in",
    "/usr/share/doc/lifeboat/README.md",
    "/usr/share/man/man8/lifeboat.8",
    "/usr/share/bash-completion/completions/lifeboat",
    *(f"/usr/share/doc/lifeboat/examples/{f}" for f in (
        "fluent.conf", "ecs-task-definition.json", "lifeboat-policy.json", "launch-template.json",
        "cloud-config.yaml", "user-data.sh", "lifeboat-ecs-al2023.pkr.hcl", "install-lifeboat.sh")),
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
    # Room for the final drain check: LIFEBOAT_FLUSH_TIMEOUT (100s) + LIFEBOAT_FLUSH_MARGIN (10s).
    assert seconds(watch["Service"]["TimeoutStopSec"][0]) >= 110

    reap = read_unit(sysd / "lifeboat-reap.service")
    assert reap["Service"]["Type"] == ["oneshot"] and "Install" not in reap
    assert "SuccessExitStatus" not in reap["Service"], "exit 4 (a human is needed) must fail the unit"
    # The timer relocates stranded volumes; lifeboat.conf (EnvironmentFile=, which wins) may say no.
    assert reap["Service"]["Environment"] == ["LIFEBOAT_RELOCATE=true"]
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
    mounts = {volumes[m["sourceVolume"]]: m["containerPath"] for c in task["containerDefinitions"]
              for m in c["mountPoints"]}
    # Same paths inside and out: lifeboat writes snippets naming host paths.
    assert mounts["/var/lib/lifeboat"] == "/var/lib/lifeboat"
    assert mounts["/etc/fluent/recovery.d"] == "/etc/fluent/recovery.d"


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


def test_iam_policy_is_least_privilege():
    policy = json.loads((PKG / "iam/lifeboat-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert len({s["Sid"] for s in statements}) == len(statements)
    group_condition = f"aws:ResourceTag/{GROUP_TAG}"
    request_group = f"aws:RequestTag/{GROUP_TAG}"
    by_action = {}
    for s in statements:
        assert s["Effect"] == "Allow"
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        for a in actions:
            by_action.setdefault(a, []).append(s)
    assert set(by_action) == {"ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:AttachVolume",
                              "ec2:DetachVolume", "ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteVolume",
                              "ec2:ModifyInstanceAttribute", "ec2:DescribeSnapshots", "ec2:CreateSnapshot",
                              "ec2:CreateVolume", "ec2:DeleteSnapshot"}
    for a in ("ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:DescribeSnapshots"):
        assert all(s["Resource"] == "*" and "Condition" not in s for s in by_action[a])
    for a, ss in by_action.items():
        if a.startswith("ec2:Describe"):
            continue
        for s in ss:
            # The group: of the resource, or (for what is being created) of the tags it is created with.
            cond = s["Condition"]["StringEquals"]
            assert s["Resource"] != "*" and (group_condition in cond or request_group in cond), (a, s)
            if request_group in cond:
                assert cond[request_group] == "${aws:PrincipalTag/lifeboat:group}"
    # Attach and detach: the volume and the instance are both limited to the group.
    for a in ("ec2:AttachVolume", "ec2:DetachVolume"):
        assert {s["Resource"] for s in by_action[a]} == {"arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:instance/*"}
    # Tagging existing volumes: only lifeboat's own keys, never the group tag, and never "all
    # tags" (no keys given). Every tag the agent writes (include/lifeboat/state/volume.h) is
    # allowed, except the group and what is only set when a snapshot or copy is created.
    written = re.findall(r'^#define LB_TAG_[A-Z_]+ "([a-z-]+)"', (SRC / "include/lifeboat/state/volume.h").read_text(), re.M)
    at_creation = {"lifeboat:relocated-from", "lifeboat:target-zone"}
    for a in ("ec2:CreateTags", "ec2:DeleteTags"):
        for s in by_action[a]:
            keys = s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
            assert all(k.startswith("lifeboat:") for k in keys)
            assert s["Condition"]["Null"]["aws:TagKeys"] == "false"
            if "ec2:CreateAction" in s["Condition"]["StringEquals"]:
                continue
            assert GROUP_TAG not in keys
            assert set(f"lifeboat:{k}" for k in written) - {GROUP_TAG} - at_creation <= set(keys), (written, keys)
    # Tags on create (relocation's snapshots and copies): only with CreateSnapshot and CreateVolume,
    # only lifeboat's keys, the group the role's own.
    [on_create] = [s for s in by_action["ec2:CreateTags"] if "ec2:CreateAction" in s["Condition"]["StringEquals"]]
    assert sorted(on_create["Condition"]["StringEquals"]["ec2:CreateAction"]) == ["CreateSnapshot", "CreateVolume"]
    assert at_creation <= set(on_create["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
    for a, resource in (("ec2:CreateSnapshot", "arn:aws:ec2:*::snapshot/*"),
                        ("ec2:CreateVolume", "arn:aws:ec2:*:*:volume/*")):
        [created] = [s for s in by_action[a] if s["Resource"] == resource]
        assert created["Condition"]["Null"]["aws:TagKeys"] == "false"
        assert GROUP_TAG in created["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
    [copy] = [s for s in by_action["ec2:CreateVolume"] if s["Resource"] == "arn:aws:ec2:*:*:volume/*"]
    assert copy["Condition"]["StringEquals"]["aws:RequestTag/lifeboat:state"] == "dirty"
    # Deleting volumes: only drained or relocated ones.
    assert sorted(s["Condition"]["StringEquals"]["aws:ResourceTag/lifeboat:state"]
                  for s in by_action["ec2:DeleteVolume"]) == ["flushed", "relocated"]
    assert all(s["Resource"] == "arn:aws:ec2:*::snapshot/*" for s in by_action["ec2:DeleteSnapshot"])


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
