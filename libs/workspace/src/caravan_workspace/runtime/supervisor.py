"""A thin wrapper around the ``supervisor`` package: supervisord and its XML-RPC on a unix socket.

Everything lives under ``<state>/supervisor/``::

    supervisord.conf     written by :meth:`Supervisor.ensure_running`
    supervisord.pid      supervisord's pidfile
    supervisor.sock      the control socket (XML-RPC), mode 0700
    supervisord.log      supervisord's own log
    programs/<name>.conf one file per program, included by supervisord.conf
    logs/<name>.log      each program's stdout and stderr

supervisord runs as a daemon: it outlives the ``invoke`` command that started it. A state folder
whose supervisord is gone (machine rebooted, ``kill -9``) is recovered by :meth:`ensure_running`:
the stale pidfile and socket are removed, orphans of the dead supervisord (found by the marker
variable every program gets) are stopped, and a fresh supervisord starts with the same programs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

# Every program gets this variable; its value is the supervisor home. It finds orphans of a dead
# supervisord (processes it started that kept running) so recovery can stop them.
MARKER_ENV = "CARAVAN_SUPERVISOR_HOME"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOCKET_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux; keep a margin
_SIGNALS = {"TERM", "INT", "QUIT", "KILL", "HUP", "USR1", "USR2"}
#: How long a shutdown waits beyond the longest drain (stopwaitsecs) of its programs: supervisord
#: kills a program at the end of its drain, then needs a moment to reap it and exit.
SHUTDOWN_MARGIN_S = 10.0


class SupervisorError(Exception):
    """The supervisor could not do what was asked; the message is one line for the user."""


@dataclass(frozen=True)
class ProgramStatus:
    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, STOPPING, UNKNOWN
    pid: int | None
    uptime: float  # seconds since start while running, else 0
    description: str
    exitstatus: int
    log_file: str


@dataclass(frozen=True)
class Shutdown:
    """What a shutdown took: in all, and for the program that stopped last."""

    took_s: float
    slowest: str | None = None
    slowest_s: float = 0.0


@dataclass(frozen=True)
class UpdateResult:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def _quote_conf(value: str) -> str:
    """Escape a value for supervisor's config parser, which expands ``%(name)s``."""
    return value.replace("%", "%%")


def _env_line(env: Mapping[str, str]) -> str:
    pairs = []
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise ValueError(f"environment variable name {key!r} is not valid")
        if "\n" in value or "\r" in value or "\0" in value:
            raise ValueError(f"environment variable {key} holds a line break or NUL")
        # supervisor's parser keeps quotes as written and strips quote characters at both ends.
        quotes_inside = '"' in value and "'" in value
        quote_at_end = bool(value) and (value[0] in "'\"" or value[-1] in "'\"")
        if quotes_inside or quote_at_end:
            raise ValueError(f"environment variable {key} cannot be passed through supervisor's quoting")
        quote = '"' if '"' not in value else "'"
        pairs.append(f"{key}={quote}{_quote_conf(value)}{quote}")
    return ",".join(pairs)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class Supervisor:
    """One supervisord per state folder. Methods are safe to call from several processes."""

    def __init__(self, state_dir: Path, *, name: str = "caravan") -> None:
        self.state_dir = Path(state_dir).resolve()
        self.home = self.state_dir / "supervisor"
        self.name = name
        self.conf_path = self.home / "supervisord.conf"
        self.pidfile = self.home / "supervisord.pid"
        self.logfile = self.home / "supervisord.log"
        self.programs_dir = self.home / "programs"
        self.logs_dir = self.home / "logs"
        self.socket_path = self._socket_path()

    # ------------------------------------------------------------------ paths and config

    def _socket_path(self) -> Path:
        preferred = self.home / "supervisor.sock"
        if len(os.fsencode(preferred)) <= _SOCKET_MAX:
            return preferred
        # A deep state folder would overflow AF_UNIX's limit: use a short, stable path instead.
        digest = hashlib.sha256(os.fsencode(self.home)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"caravan-sv-{digest}.sock"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def _config_text(self) -> str:
        q = _quote_conf
        return "\n".join(
            [
                "; written by caravan_workspace.runtime.supervisor - do not edit, it is rewritten",
                "[unix_http_server]",
                f"file={q(str(self.socket_path))}",
                "chmod=0700",
                "",
                "[supervisord]",
                f"pidfile={q(str(self.pidfile))}",
                f"logfile={q(str(self.logfile))}",
                "logfile_maxbytes=10MB",
                "logfile_backups=2",
                "loglevel=info",
                f"childlogdir={q(str(self.logs_dir))}",
                f"directory={q(str(self.state_dir))}",
                f"identifier={self.name}",
                "nodaemon=false",
                "minfds=1024",
                "umask=077",  # databases, span files and logs: 0600 in 0700 folders
                "",
                "[rpcinterface:supervisor]",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
                "",
                "[supervisorctl]",
                f"serverurl=unix://{q(str(self.socket_path))}",
                "",
                "[include]",
                f"files={q(str(self.programs_dir))}/*.conf",
                "",
            ]
        )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ the daemon

    def rpc(self) -> Any:
        """An XML-RPC proxy on the control socket (``proxy.supervisor.getState()`` ...)."""
        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def _answering_pid(self) -> int | None:
        """supervisord's pid if it answers on the socket, else None."""
        if not self.socket_path.exists():
            return None
        try:
            proxy = self.rpc()
            state = proxy.supervisor.getState()
            if state.get("statename") not in ("RUNNING", "RESTARTING"):
                return None
            return int(proxy.supervisor.getPID())
        except (OSError, xmlrpc.client.Error):
            return None

    def is_running(self) -> bool:
        return self._answering_pid() is not None

    def pid(self) -> int | None:
        return self._answering_pid()

    def ensure_running(self, *, timeout: float = 20.0) -> bool:
        """Start supervisord unless it already answers. Returns True when it was started."""
        with self._lock():
            self.programs_dir.mkdir(parents=True, exist_ok=True)
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self.home.chmod(0o700)
            config = self._config_text()
            if self._answering_pid() is not None:
                if not self.conf_path.exists() or self.conf_path.read_text() != config:
                    self.conf_path.write_text(config)
                return False
            self._recover_stale()
            self.conf_path.write_text(config)
            self._start(timeout)
            return True

    def _recover_stale(self) -> None:
        """Clear what a dead supervisord left behind: pidfile, socket, orphaned programs."""
        if self.pidfile.exists():
            try:
                pid = int(self.pidfile.read_text().strip() or "0")
            except ValueError:
                pid = 0
            if pid > 0 and _pid_alive(pid) and _is_our_supervisord(pid, self.conf_path):
                # alive but not answering (hung or still starting): stop it before replacing it
                _terminate([pid], grace=5.0)
            self.pidfile.unlink(missing_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        orphans = _marked_processes(str(self.home))
        if orphans:
            _terminate(orphans, grace=5.0)

    def _start(self, timeout: float) -> None:
        env = {k: v for k, v in os.environ.items() if k != MARKER_ENV}
        proc = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SupervisorError(f"supervisord did not start: {last}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answering_pid() is not None:
                return
            time.sleep(0.05)
        raise SupervisorError(f"supervisord did not answer on {self.socket_path} (see {self.logfile})")

    def drains(self) -> dict[str, int]:
        """Each program's drain: how long supervisord lets it stop before killing it."""
        out = {}
        for conf in self.programs_dir.glob("*.conf"):
            found = re.search(r"^stopwaitsecs=(\d+)$", conf.read_text(), re.MULTILINE)
            out[conf.stem] = int(found.group(1)) if found else 10
        return out

    def shutdown(self, *, timeout: float | None = None) -> Shutdown | None:
        """Stop every program (each gets its stop signal and its drain), then supervisord.

        Waits as long as the longest drain plus a margin unless ``timeout`` says otherwise; a
        timeout names the programs still running. None when supervisord was not running."""
        with self._lock():
            pid = self._answering_pid()
            if pid is None:
                return None
            if timeout is None:
                timeout = max(self.drains().values(), default=10) + SHUTDOWN_MARGIN_S
            programs = {s.name: s.pid for s in self.status() if s.pid}
            started = time.monotonic()
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                self.rpc().supervisor.shutdown()
            deadline = started + timeout
            stopped: dict[str, float] = {}
            while time.monotonic() < deadline and _pid_alive(pid):
                for name, child in programs.items():
                    if name not in stopped and not _pid_alive(child):
                        stopped[name] = time.monotonic() - started
                time.sleep(0.05)
            if _pid_alive(pid):
                holding = [f"{n} (pid {p})" for n, p in sorted(programs.items()) if _pid_alive(p)]
                raise SupervisorError(
                    f"supervisord (pid {pid}) did not stop within {timeout:.0f}s"
                    + (f": still running: {', '.join(holding)}" if holding else "")
                )
            took = time.monotonic() - started
            self.socket_path.unlink(missing_ok=True)
            for name in programs:
                stopped.setdefault(name, took)
            slowest = max(stopped, key=lambda n: stopped[n], default=None)
            return Shutdown(took, slowest, stopped[slowest] if slowest else 0.0)

    # ------------------------------------------------------------------ programs

    def program_conf(self, name: str) -> Path:
        return self.programs_dir / f"{name}.conf"

    def add_program(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        directory: Path | str | None = None,
        autostart: bool = True,
        autorestart: bool = True,
        stopsignal: str = "TERM",
        stopwaitsecs: int = 10,
        startsecs: int = 1,
        startretries: int = 3,
    ) -> UpdateResult:
        """Write the program's file and apply it (``supervisorctl update``).

        Idempotent: the same definition again changes nothing; a changed one restarts the program."""
        if not _NAME.match(name):
            raise ValueError(f"program name {name!r} must be letters, digits, '.', '_' or '-'")
        if not command:
            raise ValueError("a program needs a command")
        stopsignal = stopsignal.upper().removeprefix("SIG")
        if stopsignal not in _SIGNALS:
            raise ValueError(f"stop signal {stopsignal!r} is not one of {sorted(_SIGNALS)}")
        full_env = {**(env or {}), MARKER_ENV: str(self.home)}
        log = self.log_path(name)
        lines = [
            "; written by caravan_workspace.runtime.supervisor",
            f"[program:{name}]",
            f"command={_quote_conf(shlex.join(str(c) for c in command))}",
            f"environment={_env_line(full_env)}",
            f"autostart={str(autostart).lower()}",
            f"autorestart={str(autorestart).lower()}",
            f"startsecs={startsecs}",
            f"startretries={startretries}",
            f"stopsignal={stopsignal}",
            f"stopwaitsecs={stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_quote_conf(str(log))}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
        ]
        if directory is not None:
            lines.append(f"directory={_quote_conf(str(directory))}")
        text = "\n".join(lines) + "\n"
        self.ensure_running()
        with self._lock():
            self.programs_dir.mkdir(parents=True, exist_ok=True)
            path = self.program_conf(name)
            if not path.exists() or path.read_text() != text:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text)
                tmp.replace(path)
            return self._update()

    def remove_program(self, name: str) -> UpdateResult:
        """Stop the program and forget it."""
        with self._lock():
            self.program_conf(name).unlink(missing_ok=True)
            if self._answering_pid() is None:
                return UpdateResult((), (), (name,))
            return self._update()

    def update(self) -> UpdateResult:
        """Apply the program files as they are now (what ``supervisorctl update`` does)."""
        with self._lock():
            return self._update()

    def _update(self) -> UpdateResult:
        try:
            proxy = self.rpc()
            added, changed, removed = proxy.supervisor.reloadConfig()[0]
            for group in removed:
                proxy.supervisor.stopProcessGroup(group)
                proxy.supervisor.removeProcessGroup(group)
            for group in changed:
                proxy.supervisor.stopProcessGroup(group)
                proxy.supervisor.removeProcessGroup(group)
                proxy.supervisor.addProcessGroup(group)
            for group in added:
                proxy.supervisor.addProcessGroup(group)
        except xmlrpc.client.Fault as exc:
            raise SupervisorError(f"supervisor refused the update: {exc.faultString}") from exc
        except OSError as exc:
            raise SupervisorError(f"supervisor is not running ({exc}): call ensure_running first") from exc
        return UpdateResult(tuple(added), tuple(changed), tuple(removed))

    def status(self) -> list[ProgramStatus]:
        """State, pid and uptime of every program (empty when supervisord is not running)."""
        if self._answering_pid() is None:
            return []
        infos = cast(list[dict[str, Any]], self.rpc().supervisor.getAllProcessInfo())
        return [_status(info) for info in infos]

    def program(self, name: str) -> ProgramStatus | None:
        return next((s for s in self.status() if s.name == name), None)

    def start(self, name: str) -> None:
        self._call("startProcess", name, True)

    def stop(self, name: str) -> None:
        self._call("stopProcess", name, True)

    def restart(self, name: str) -> None:
        with contextlib.suppress(SupervisorError):
            self.stop(name)
        self.start(name)

    def stop_all(self) -> None:
        """Stop every program (each gets its stop signal), leaving supervisord running."""
        if self._answering_pid() is not None:
            self._call("stopAllProcesses", True)

    def signal(self, name: str, signame: str) -> None:
        self._call("signalProcess", name, signame.upper().removeprefix("SIG"))

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.rpc().supervisor, method)(*args)
        except xmlrpc.client.Fault as exc:
            raise SupervisorError(f"{method}{args[:1]}: {exc.faultString}") from exc
        except OSError as exc:
            raise SupervisorError(f"supervisor is not running ({exc})") from exc

    def wait_for(
        self, name: str, states: Sequence[str], *, timeout: float = 20.0, new_pid_not: int | None = None
    ) -> ProgramStatus:
        """Wait until the program is in one of ``states`` (and, if given, has a pid other than
        ``new_pid_not``). Raises SupervisorError with the last status on timeout."""
        deadline = time.monotonic() + timeout
        last: ProgramStatus | None = None
        while time.monotonic() < deadline:
            last = self.program(name)
            if last and last.state in states and (new_pid_not is None or last.pid != new_pid_not):
                return last
            time.sleep(0.05)
        seen = f"{last.state} ({last.description})" if last else "not known to supervisor"
        raise SupervisorError(f"program {name} did not reach {'/'.join(states)}: {seen}")


def _status(info: Mapping[str, Any]) -> ProgramStatus:
    state = str(info["statename"])
    running = state == "RUNNING"
    pid = int(info["pid"]) if info.get("pid") else None
    uptime = float(info["now"] - info["start"]) if running and info.get("start") else 0.0
    return ProgramStatus(
        name=str(info["name"]),
        state=state,
        pid=pid,
        uptime=uptime,
        description=str(info.get("description", "")),
        exitstatus=int(info.get("exitstatus", 0)),
        log_file=str(info.get("stdout_logfile", "")),
    )


def _is_our_supervisord(pid: int, conf: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"supervisord" in part for part in cmdline) and os.fsencode(conf) in cmdline


def _marked_processes(home: str) -> list[int]:
    """Processes whose environment carries our marker with this home (orphans of a dead supervisord)."""
    needle = f"{MARKER_ENV}={home}".encode()
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _terminate(pids: Sequence[int], *, grace: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on loopback (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
