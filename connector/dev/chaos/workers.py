"""Real `ml-connector serve` processes sharing the queues: start, wait until healthy, kill -9, restart.

Each slot keeps its port across restarts (a load balancer's backend) and appends every incarnation's
output to one log file, which the leak check reads. Peak RSS is the kernel's high-water mark
(`VmHWM`), read while the process lives and just before it is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from connector.dev.sandbox.azurite import free_port


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Slot:
    index: int
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    peak_rss: float = 0.0
    restart: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sample(self) -> None:
        if self.alive and self.proc is not None:
            rss = peak_rss_mb(self.proc.pid)
            if rss is not None:
                self.peak_rss = max(self.peak_rss, rss)


class WorkerPool:
    """`count` worker processes with `env`; `serve_args` are extra `ml-connector serve` options."""

    def __init__(self, count: int, env: dict[str, str], folder: Path, *, serve_args: list[str]) -> None:
        self.env = {**os.environ, **env}
        self.serve_args = serve_args
        self.slots = [Slot(i, free_port(), folder / f"worker-{i}.log") for i in range(count)]
        self._http = httpx.AsyncClient(timeout=2.0)

    def _spawn(self, slot: Slot) -> None:
        cmd = [sys.executable, "-m", "connector.cli", "serve", "--host", "127.0.0.1", "--port", str(slot.port),
               *self.serve_args]  # fmt: skip
        with slot.log_path.open("ab") as log:
            log.write(f"--- start {slot.starts + 1} ---\n".encode())
            log.flush()
            slot.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        slot.starts += 1

    async def healthy(self, slot: Slot, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Until the worker answers its health route (its runtime and HTTP surface are up)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if not slot.alive:
                raise RuntimeError(f"worker {slot.index} exited with {slot.proc and slot.proc.returncode}; "
                                   f"see {slot.log_path}")  # fmt: skip
            try:
                if (await self._http.get(f"{slot.url}/api/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)  # readiness poll of a child process
        raise TimeoutError(f"worker {slot.index} not healthy within {timeout}s; see {slot.log_path}")

    async def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot)
        await asyncio.gather(*(self.healthy(slot) for slot in self.slots))

    def kill(self, slot: Slot) -> None:
        """kill -9: no shutdown, no finishing the batch in hand."""
        if slot.alive and slot.proc is not None:
            slot.sample()
            slot.proc.send_signal(signal.SIGKILL)
            slot.proc.wait()
            slot.kills += 1

    def restart_later(self, slot: Slot, delay: float) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)  # "restarted shortly after": the outage a restart takes
            self._spawn(slot)
            await self.healthy(slot)

        slot.restart = asyncio.create_task(run())

    async def all_up(self) -> None:
        """Every slot running and healthy (pending restarts finished, any dead worker started again)."""
        for slot in self.slots:
            if slot.restart is not None:
                await slot.restart
                slot.restart = None
            if not slot.alive:
                self._spawn(slot)
            await self.healthy(slot)

    def live(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.alive]

    def sample(self) -> None:
        for slot in self.slots:
            slot.sample()

    async def stop(self) -> None:
        """Ctrl-C to each worker (it finishes its batch), then a kill for any that hangs. Idempotent."""
        if self._http.is_closed:
            return
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
            slot.sample()
            if slot.alive and slot.proc is not None:
                slot.proc.send_signal(signal.SIGINT)
        for slot in self.slots:
            if slot.proc is not None:
                try:
                    await asyncio.to_thread(slot.proc.wait, 30)
                except subprocess.TimeoutExpired:
                    slot.proc.kill()
                    slot.proc.wait()
        await self._http.aclose()

    def logs(self) -> str:
        return "\n".join(s.log_path.read_text("utf-8", "replace") for s in self.slots if s.log_path.exists())
