"""The CAP poller: follows CAP index feeds (Atom or RSS, as alert hubs publish them) and writes each
new alert's document, bytes unchanged, to `legacy.emergency.cap.v1` keyed by the alert's sender.

Per feed, every `interval_s`: a conditional GET (If-None-Match / If-Modified-Since from the last
answer; 304 costs nothing), then each entry not seen before is fetched once and written; an entry is
remembered only once Kafka acknowledged it, so a failed write is fetched again on the next poll.
Bounded: index and documents at most `cap_max_bytes`, every request at most `cap_timeout_s`. A
feed that errors (network, status, not a feed, Kafka away) backs off exponentially up to
`cap_max_backoff_s` and shows as `failing` in GET /v1/status and in /metrics.

Several instances each poll every feed (stateless): an alert may then be written once per
instance, same bytes and ce_id; intake takes a source record in once. Entries are remembered in
memory: after a restart the entries still listed are written again, with the same effect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import httpx

from bridges.domain.feeds import Entry, entries
from bridges.domain.records import NotTakenIn, cap_identity, legacy_headers
from bridges.settings import CapFeed, Settings
from bridges.sink import Sink
from bridges.stats import FeedState, Stats

log = logging.getLogger(__name__)
BRIDGE = "cap-poll"


class TooLarge(Exception):
    pass


class FeedFailed(Exception):
    pass


class CapPoller:
    def __init__(
        self, settings: Settings, sink: Sink, stats: Stats, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.s = settings
        self.sink = sink
        self.stats = stats
        self._client = client
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._validators: dict[str, dict[str, str]] = {}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        if not self.s.cap_feeds:
            await self._stop.wait()
            return
        client = self._client or httpx.AsyncClient(timeout=self.s.cap_timeout_s, follow_redirects=True)
        try:
            await asyncio.gather(*(self._follow(client, f) for f in self.s.cap_feeds))
        finally:
            if self._client is None:
                await client.aclose()

    async def _follow(self, client: httpx.AsyncClient, feed: CapFeed) -> None:
        state = self.stats.feeds.setdefault(feed.name, FeedState(url=str(feed.url)))
        while not self._stop.is_set():
            try:
                await self.poll(client, feed)
                state.state, state.error, state.failures = "ok", None, 0
                wait = feed.interval_s
            except Exception as e:  # any failure of one feed: shown, backed off, never fatal to the others
                state.failures += 1
                state.state, state.error = "failing", f"{type(e).__name__}: {e}"[:300]
                self.stats.event(BRIDGE, "feed_errors")
                wait = min(self.s.cap_max_backoff_s, feed.interval_s * 2 ** min(state.failures, 16))
                log.warning("CAP feed %s failed (%d in a row): %s", feed.name, state.failures, state.error)
            state.next_poll_in_s = wait
            try:
                await asyncio.wait_for(self._stop.wait(), wait)
            except TimeoutError:
                pass

    async def poll(self, client: httpx.AsyncClient, feed: CapFeed) -> int:
        """One poll of `feed`; returns the number of alerts written."""
        state = self.stats.feeds.setdefault(feed.name, FeedState(url=str(feed.url)))
        url = str(feed.url)
        state.polls += 1
        status, body, headers = await self._get(client, url, self._validators.get(url, {}))
        if status == 304:
            state.not_modified += 1
            return 0
        if status != 200:
            raise FeedFailed(f"index answered {status}")
        new = [e for e in entries(body, url) if (feed.name, e.entry_id) not in self._seen]
        written = 0
        for entry in new:
            await self._take(client, feed, entry)
            written += 1
        state.alerts += written
        # Validators only once every entry of this version of the index was written: a failure
        # above leaves them as they were, so the next poll fetches the index again.
        validators = {}
        if headers.get("etag"):
            validators["If-None-Match"] = headers["etag"]
        if headers.get("last-modified"):
            validators["If-Modified-Since"] = headers["last-modified"]
        self._validators[url] = validators
        return written

    async def _take(self, client: httpx.AsyncClient, feed: CapFeed, entry: Entry) -> None:
        status, doc, _ = await self._get(client, entry.url, {})
        if status != 200:
            raise FeedFailed(f"alert {entry.url} answered {status}")
        try:
            sender, _identifier = cap_identity(doc)
            key = sender
        except NotTakenIn as e:
            # Not an alert we can key: written all the same (intake dead-letters it with the
            # reason, the original kept), keyed by the feed.
            log.warning("CAP entry %s of %s: %s", entry.entry_id, feed.name, e)
            key = feed.name
        headers = legacy_headers(feed="cap", topic=self.s.cap_topic, bridge=BRIDGE, sender=feed.name, raw=doc)
        await self.sink.write(self.s.cap_topic, doc, key, headers, timeout_s=self.s.cap_timeout_s)
        self.stats.produced(BRIDGE)
        self._seen[(feed.name, entry.entry_id)] = None
        while len(self._seen) > self.s.cap_remember_entries:
            self._seen.popitem(last=False)

    async def _get(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> tuple[int, bytes, httpx.Headers]:
        """GET with a limit on the whole exchange (a server that drips bytes is cut off too)."""
        try:
            return await asyncio.wait_for(self._get_bounded(client, url, headers), self.s.cap_timeout_s)
        except TimeoutError as e:
            raise FeedFailed(f"{url}: no complete answer within {self.s.cap_timeout_s} s") from e

    async def _get_bounded(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> tuple[int, bytes, httpx.Headers]:
        async with client.stream("GET", url, headers=headers, timeout=self.s.cap_timeout_s) as resp:
            if resp.status_code != 200:
                return resp.status_code, b"", resp.headers
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.s.cap_max_bytes:
                raise TooLarge(f"{url}: {declared} bytes > {self.s.cap_max_bytes}")
            chunks, size = [], 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > self.s.cap_max_bytes:
                    raise TooLarge(f"{url}: more than {self.s.cap_max_bytes} bytes")
                chunks.append(chunk)
            return 200, b"".join(chunks), resp.headers
