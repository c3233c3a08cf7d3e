"""The bench's side of a measured worker process (`bench.worker`): start it, send it commands, follow
its progress, read its memory, stop it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import psutil


class WorkerProcess:
    def __init__(self, bootstrap: str, log_path: Path, *, tracing: bool = True) -> None:
        self.bootstrap = bootstrap
        self.log_path = log_path
        self.tracing = tracing
        self.proc: asyncio.subprocess.Process | None = None
        self.progress = 0
        self.assigned = 0
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.worker",
            self.bootstrap,
            "--tracing",
            "on" if self.tracing else "off",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            limit=1 << 20,
        )
        log.close()
        self._reader = asyncio.create_task(self._read())
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            msg = json.loads(line)
            if "progress" in msg:
                self.progress, self.assigned = msg["progress"], msg["assigned"]
            else:
                await self._answers.put(msg)
        await self._answers.put({"exited": self.proc.returncode})

    async def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def answer(self, key: str, timeout_s: float = 180.0) -> dict[str, Any]:
        """The next answer; it must carry `key` (a worker that died says so, with its log's tail)."""
        msg = await asyncio.wait_for(self._answers.get(), timeout_s)
        if key not in msg:
            tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            raise RuntimeError(f"worker answered {msg} instead of {key!r}; its log ends:\n{tail}")
        return msg

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await self.send({"op": "exit"})
            await asyncio.wait_for(self.proc.wait(), 30)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
