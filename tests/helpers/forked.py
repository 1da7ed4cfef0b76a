"""Run `python bin/TOOL ARGS` (or `python -m MODULE ARGS`) for the tests without paying
TensorFlow's import in every child: a server process imports TensorFlow, TFP, tf_keras and
deepvib once, then forks one child per command. The child runs the script as `__main__` with
the given argv, working directory and environment (its own absl flags: the tools define them
when they run), writes stdout and stderr to files and exits with the script's status, or dies
of its signal (a tool that SIGKILLs itself reads as returncode -9, as with subprocess).

The server imports nothing that starts TensorFlow's runtime (checked: the eager context is
not initialized), so each child sets up its own devices and threads after the fork, as a fresh
process would. Tools run this way still start real subprocesses of their own (bin/sweep's
bin/train runs). Tests that need a fresh interpreter (e.g. "a SavedModel loads with
TensorFlow alone") must keep using subprocess.

Usage, a drop-in for subprocess.run / subprocess.Popen with capture_output and text:
    forked.run([sys.executable, TOOL, *args], cwd=ROOT, env=env, timeout=300)
    process = forked.start([sys.executable, "-m", "tests.helpers.x", ...]); process.communicate()
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRELOAD = (  # what the bin/ tools import; none of it defines flags or starts TensorFlow
    "tensorflow", "tf_keras", "tensorflow_probability", "matplotlib", "scipy.optimize",
    "absl.app", "absl.flags", "deepvib.cli", "deepvib.training.trainer",
    "deepvib.training.flags", "deepvib.export.exporter", "deepvib.export.flags",
    "deepvib.experiments.robustness", "deepvib.experiments.attack_flags",
    "deepvib.experiments.adaptive", "deepvib.experiments.latent_experiment",
    "deepvib.experiments.reproduction_report", "deepvib.experiments.sweep",
)
POLL_S = 0.02


# -- the server (its own process) -----------------------------------------------------------------
def _serve() -> None:
    replies = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)  # nothing printed by an import can mix with the replies
    base_path = sys.path[1:]  # without this script's directory
    sys.path.insert(0, ROOT)  # as the bin/ tools do: this repository's deepvib
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from tensorflow.python.eager import context

    if context.context()._initialized:  # a fork would share a started runtime
        raise RuntimeError("preloading started TensorFlow's runtime")
    status_files: dict[int, str] = {}

    def reap(*_) -> None:
        while status_files:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            path = status_files.pop(pid, None)
            if path is not None:
                with open(path + ".tmp", "w") as f:
                    f.write(str(os.waitstatus_to_exitcode(status)))
                os.replace(path + ".tmp", path)

    signal.signal(signal.SIGCHLD, reap)
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
        pid = os.fork()
        if pid == 0:
            replies.close()
            _child(request, null, base_path)
        status_files[pid] = request["status"]
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        reap()
        replies.write(f"{pid}\n")
        replies.flush()


def _child(request: dict, null: int, base_path: list[str]) -> None:
    """Become `python ARGV...`; never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
    code = 1
    try:
        os.setpgid(0, 0)  # a timeout kills the tool and whatever it started
        os.dup2(null, 0)
        for fd, key in ((1, "stdout"), (2, "stderr")):
            out = os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = _run_main(request["argv"], base_path)
    except BaseException:  # noqa: BLE001 - anything the harness itself hits
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def _run_main(argv: list[str], base_path: list[str]) -> int:
    """Run argv (script path or -m module, then its arguments) as the interpreter would:
    an uncaught exception prints its traceback and exits 1; SystemExit(x) exits as Python does."""
    import atexit as child_atexit
    import runpy
    import traceback

    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[:] = [os.getcwd(), *base_path]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[:] = [os.path.dirname(os.path.abspath(argv[0])), *base_path]
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - as the interpreter reports it
        traceback.print_exc()
        code = 1
    child_atexit._run_exitfuncs()
    return code


# -- the client (the test process) ----------------------------------------------------------------
class _Server:
    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.log = None
        self.ready = False

    def start(self) -> None:
        """Start the server (TensorFlow's import, seconds) without waiting for it."""
        if self.process is None or self.process.poll() is not None:
            self.log = tempfile.TemporaryFile()  # TensorFlow's start-up noise, or why it failed
            self.process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT, text=True,
                env=dict(os.environ))
            self.ready = False

    def submit(self, request: dict) -> int:
        self.start()
        if not self.ready:
            if self.process.stdout.readline() != "ready\n":
                self.log.seek(0)
                raise RuntimeError(f"the tool server did not start (exit {self.process.wait()}):"
                                   f"\n{self.log.read().decode(errors='replace')[-3000:]}")
            self.ready = True
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


_SERVER = _Server()
atexit.register(_SERVER.close)


class Forked:
    """A forked tool, with the parts of subprocess.Popen the tests use."""

    def __init__(self, args: list[str], cwd: str | os.PathLike | None = None,
                 env: dict[str, str] | None = None) -> None:
        if args[0] != sys.executable:
            raise ValueError(f"expected [sys.executable, script or -m module, ...], got {args}")
        self.args = [str(a) for a in args]
        self.returncode: int | None = None
        self._dir = tempfile.mkdtemp(prefix="forked-")
        self._files = {k: os.path.join(self._dir, k) for k in ("stdout", "stderr", "status")}
        self.pid = _SERVER.submit({
            "argv": self.args[1:], "cwd": os.path.abspath(cwd or os.getcwd()),
            "env": dict(os.environ if env is None else env), **self._files})

    def poll(self) -> int | None:
        if self.returncode is None and os.path.exists(self._files["status"]):
            with open(self._files["status"]) as f:
                self.returncode = int(f.read())
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(POLL_S)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait(30)
            raise
        outputs = []
        for key in ("stdout", "stderr"):
            with open(self._files[key], encoding="utf-8", errors="replace") as f:
                outputs.append(f.read())
        shutil.rmtree(self._dir, ignore_errors=True)
        return outputs[0], outputs[1]


def prestart() -> None:
    """Begin the server's imports now, so that they overlap other work (tests/conftest.py calls
    this when a collected test module uses this helper)."""
    _SERVER.start()


def start(args: list[str], cwd: str | os.PathLike | None = None,
          env: dict[str, str] | None = None) -> Forked:
    return Forked(args, cwd=cwd, env=env)


def run(args: list[str], cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None, timeout: float | None = None
        ) -> subprocess.CompletedProcess:
    process = start(args, cwd=cwd, env=env)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


if __name__ == "__main__":
    _serve()
