"""Headless Chromium driven over the DevTools Protocol (CDP), for tests that act on a page as a user
does: tap, type, pick files, go offline, take screenshots. Debian's `chromium` and the `websockets`
package are all it needs (no driver, no browser download)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import websockets
import websockets.asyncio.client


class PageError(AssertionError):
    pass


class Page:
    """One tab, attached in flattened mode: every command carries the tab's session id."""

    def __init__(self, ws: Any, session: str) -> None:
        self.ws, self.session = ws, session
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.console: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self._waiting:
                fut = self._waiting.pop(msg["id"])
                if "error" in msg:
                    fut.set_exception(PageError(f"CDP: {msg['error']}"))
                else:
                    fut.set_result(msg.get("result", {}))
            elif msg.get("method") == "Runtime.consoleAPICalled":
                args = msg["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif msg.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(msg["params"]["exceptionDetails"])[:500])

    async def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False) -> Any:
        n = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[n] = fut
        msg: dict[str, Any] = {"id": n, "method": method, "params": params or {}}
        if not browser:
            msg["sessionId"] = self.session
        await self.ws.send(json.dumps(msg))
        return await asyncio.wait_for(fut, 60)

    async def js(self, expression: str) -> Any:
        """The value of `expression` (awaited if it is a promise); a thrown error fails the test."""
        r = await self.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}
        )
        if "exceptionDetails" in r:
            raise PageError(
                f"{expression[:200]}: {r['exceptionDetails'].get('exception', r['exceptionDetails'])}"
            )
        return r["result"].get("value")

    async def until(self, expression: str, what: str, timeout_s: float = 90) -> Any:
        """Polls `expression` until truthy (as JSON: an element comes back as `{}`, so test for
        elements with `!!`); fails naming `what`, the page's text and console after `timeout_s`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = await self.js(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                seen = await self.js("location.hash + ' | ' + document.body.innerText.slice(0, 600)")
                raise PageError(f"never happened: {what}; page: {seen!r}; console: {self.console[-10:]}")
            await asyncio.sleep(0.5)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})
        await self.until("document.readyState === 'complete'", f"load {url}")

    async def click(self, selector: str) -> None:
        await self.until(f"!!document.querySelector({json.dumps(selector)})", f"element {selector}")
        await self.js(f"document.querySelector({json.dumps(selector)}).click()")

    async def type(self, selector: str, text: str) -> None:
        """Sets the field's value and fires `input`, as typing does."""
        await self.until(f"!!document.querySelector({json.dumps(selector)})", f"field {selector}")
        s = json.dumps(selector)
        await self.js(
            f"(() => {{ const e = document.querySelector({s}); e.focus(); e.value = {json.dumps(text)};"
            " e.dispatchEvent(new Event('input', {bubbles: true})); })()"
        )

    async def pick_files(self, selector: str, *files: Path) -> None:
        """As choosing files (or taking a photo) in the file input `selector`."""
        doc = await self.send("DOM.getDocument", {"depth": 0})
        node = await self.send("DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": selector})
        if not node.get("nodeId"):
            raise PageError(f"no file input {selector}")
        await self.send("DOM.setFileInputFiles", {"nodeId": node["nodeId"], "files": [str(f) for f in files]})

    async def offline(self, off: bool) -> None:
        await self.send(
            "Network.emulateNetworkConditions",
            {"offline": off, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


@contextlib.asynccontextmanager
async def phone(
    chromium: str, profile: Path, *, width: int = 360, height: int = 640, origin: str | None = None
) -> AsyncIterator[Page]:
    """A headless Chromium with one tab the size of a phone (touch, mobile viewport)."""
    proc = await asyncio.create_subprocess_exec(
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=zh-CN",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    url = None
    while url is None:
        line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode(errors="replace")
        if not line:
            raise PageError("chromium exited before it listened for DevTools")
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        url = m.group(1) if m else None
    drain = asyncio.create_task(_drain(proc.stderr.read))
    try:
        async with websockets.connect(url, max_size=64 * 1024 * 1024) as ws:
            page = Page(ws, "")
            target = await page.send("Target.createTarget", {"url": "about:blank"}, browser=True)
            attached = await page.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser=True
            )
            page.session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Network", "DOM"):
                await page.send(f"{domain}.enable")
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
            )
            await page.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
            await page.send("Emulation.setLocaleOverride", {"locale": "zh-CN"})
            if origin:
                await page.send(
                    "Browser.grantPermissions",
                    {"origin": origin, "permissions": ["geolocation"]},
                    browser=True,
                )
            try:
                yield page
            finally:
                await page.close()
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError, asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 20)
        drain.cancel()


async def _drain(read: Callable[[], Awaitable[bytes]]) -> None:
    with contextlib.suppress(Exception):
        await read()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
