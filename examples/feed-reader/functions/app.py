"""The feed reader's function (Python, componentize-py).

State in the call's namespace (values are JSON text):
  subs     list of feed URLs          (the page writes it)
  terms    list of search terms       (the page writes it)
  seen     links already delivered    (this function keeps it)
  pending  posts waiting to be read   (the schedule's `write_to`; the page clears it)

Outbound HTTP goes through wasi:http/outgoing-handler; Orb allows only the
hosts the caller's token lists and records every request in the activation.
"""

import json
import re
from html import unescape
from typing import List, Optional
from urllib.parse import urlsplit

import wit_world
from componentize_py_types import Err
from wit_world.imports import outgoing_handler, store, streams
from wit_world.imports import types as http

MAX_SEEN = 2000
MAX_BODY = 2 << 20


def _bucket() -> store.Bucket:
    return store.open("")


def _load(bucket: store.Bucket, key: str, default):
    raw = bucket.get(key)
    if raw is None:
        return default
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return default


def _get(url: str) -> str:
    """GET `url` and return the body as text; raises ValueError on failure."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url}")
    request = http.OutgoingRequest(http.Fields.from_list([("accept", b"application/rss+xml, application/atom+xml, */*")]))
    request.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    body = request.body()
    http.OutgoingBody.finish(body, None)
    future = outgoing_handler.handle(request, None)
    pollable = future.subscribe()
    pollable.block()
    outcome = future.get()
    if outcome is None or isinstance(outcome, Err):
        raise ValueError(f"{url}: no response")
    if isinstance(outcome.value, Err):
        raise ValueError(f"{url}: {outcome.value.value}")
    response = outcome.value.value
    status = response.status()
    if status != 200:
        raise ValueError(f"{url}: HTTP {status}")
    incoming = response.consume()
    stream = incoming.stream()
    chunks = []
    size = 0
    while True:
        try:
            chunk = stream.blocking_read(65536)
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise ValueError(f"{url}: reading the body failed")
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError(f"{url}: the feed is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


_ITEM = re.compile(r"<(item|entry)\b.*?</\1>", re.S | re.I)


def _field(block: str, name: str) -> str:
    m = re.search(rf"<{name}\b[^>]*>(.*?)</{name}>", block, re.S | re.I)
    if not m:
        return ""
    text = m.group(1).strip()
    cdata = re.fullmatch(r"<!\[CDATA\[(.*)\]\]>", text, re.S)
    return unescape(cdata.group(1) if cdata else text).strip()


def _link(block: str) -> str:
    # RSS: <link>url</link>; Atom: <link href="url"/>.
    text = _field(block, "link")
    if text:
        return text
    m = re.search(r"<link\b[^>]*href=\"([^\"]+)\"", block, re.I)
    return unescape(m.group(1)) if m else ""


def _matches(document: str, feed: str, terms: List[str]) -> List[wit_world.Post]:
    wanted = [t.lower() for t in terms if t.strip()]
    out = []
    for m in _ITEM.finditer(document):
        block = m.group(0)
        title = _field(block, "title")
        summary = _field(block, "description") or _field(block, "summary")
        text = f"{title} {summary}".lower()
        if wanted and any(t in text for t in wanted):
            out.append(wit_world.Post(title=title, link=_link(block), feed=feed))
    return out


class WitWorld(wit_world.WitWorld):
    def filter(self, document: str, feed: str, terms: List[str]) -> List[wit_world.Post]:
        return _matches(document, feed, terms)

    def refresh(self) -> List[wit_world.Post]:
        bucket = _bucket()
        subs = _load(bucket, "subs", [])
        terms = _load(bucket, "terms", [])
        seen = _load(bucket, "seen", [])
        pending = [wit_world.Post(**p) for p in _load(bucket, "pending", []) or []]
        known = set(seen) | {p.link for p in pending}
        for url in subs:
            try:
                document = _get(url)
            except ValueError as e:
                print(f"skipped {url}: {e}")
                continue
            for post in _matches(document, url, terms):
                if post.link not in known:
                    known.add(post.link)
                    seen.append(post.link)
                    pending.append(post)
        bucket.set("seen", json.dumps(seen[-MAX_SEEN:]).encode("utf-8"))
        print(f"{len(subs)} feeds, {len(pending)} pending")
        return pending
