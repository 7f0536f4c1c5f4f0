"""Harbor-shaped PUSH_ARTIFACT webhook payloads (Default and CloudEvents
formats, see shared/HARBOR.md) and a tiny HTTPS sender for them.

Pushed by tag:    resources[0].tag = "3.8.5-amd64", resource_url = host/repo:tag
Pushed by digest: resources[0].tag = "sha256:...", resource_url = host/repo@sha256:...
"""

import datetime
import http.client
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Tuple, Union
from urllib.parse import urlsplit

from .util import client_tls_context

DEFAULT_HOST = "harbor.example.com"
DEFAULT_OPERATOR = "admin"
CT_DEFAULT = "application/json"
CT_CLOUDEVENTS = "application/cloudevents+json"


def resource(repo_full_name: str, digest: str, tag: Optional[str] = None, host: str = DEFAULT_HOST) -> dict:
    """One `resources[]` element; tag=None means pushed by digest."""
    if tag is None or tag.startswith("sha256:"):
        return {"digest": digest, "tag": digest, "resource_url": f"{host}/{repo_full_name}@{digest}"}
    return {"digest": digest, "tag": tag, "resource_url": f"{host}/{repo_full_name}:{tag}"}


def repository(repo_full_name: str, date_created: Optional[int] = 1767000000, repo_type: str = "private") -> dict:
    """`repository` object: namespace = first path component (the project), name = the rest."""
    namespace, _, name = repo_full_name.partition("/")
    repo = {}
    if date_created is not None:
        repo["date_created"] = date_created
    repo.update({"name": name, "namespace": namespace, "repo_full_name": repo_full_name, "repo_type": repo_type})
    return repo


def event_data(repo_full_name: str, digest: str, tag: Optional[str] = None, *, host: str = DEFAULT_HOST,
               resources: Optional[Iterable[dict]] = None, date_created: Optional[int] = 1767000000,
               repo_type: str = "private") -> dict:
    res = list(resources) if resources is not None else [resource(repo_full_name, digest, tag, host)]
    return {"resources": res, "repository": repository(repo_full_name, date_created, repo_type)}


def default_payload(repo_full_name: str, digest: str, tag: Optional[str] = None, *,
                    operator: str = DEFAULT_OPERATOR, occur_at: Optional[int] = None, **kw) -> dict:
    """Harbor "Default" format: {"type":"PUSH_ARTIFACT","occur_at",...,"event_data":{...}}."""
    return {"type": "PUSH_ARTIFACT",
            "occur_at": int(time.time()) if occur_at is None else occur_at,
            "operator": operator,
            "event_data": event_data(repo_full_name, digest, tag, **kw)}


def cloudevents_payload(repo_full_name: str, digest: str, tag: Optional[str] = None, *,
                        operator: str = DEFAULT_OPERATOR, event_type: str = "harbor.artifact.pushed",
                        source: str = "/projects/1/webhook/policies/3", event_id: Optional[str] = None,
                        request_id: Optional[str] = None, when: Optional[float] = None, **kw) -> dict:
    """Harbor "CloudEvents" format (structured mode); `data` = Default's event_data."""
    ts = datetime.datetime.fromtimestamp(time.time() if when is None else when, datetime.timezone.utc)
    return {"specversion": "1.0",
            "requestid": request_id or str(uuid.uuid4()),
            "id": event_id or str(uuid.uuid4()),
            "source": source,
            "type": event_type,
            "datacontenttype": "application/json",
            "time": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": event_data(repo_full_name, digest, tag, **kw),
            "operator": operator}


def push_event(repo_full_name: str, digest: str, tag: Optional[str] = None, fmt: str = "default",
               **kw) -> Tuple[dict, str]:
    """(payload, content_type) for a push in format "default" or "cloudevents"."""
    if fmt == "default":
        return default_payload(repo_full_name, digest, tag, **kw), CT_DEFAULT
    if fmt == "cloudevents":
        return cloudevents_payload(repo_full_name, digest, tag, **kw), CT_CLOUDEVENTS
    raise ValueError(f"unknown payload format {fmt!r}")


@dataclass
class WebhookResponse:
    status: int
    headers: Dict[str, str]     # lower-cased names
    body: bytes

    @property
    def data(self) -> Any:
        """Parsed JSON body, or the text if it is not JSON.

        Replies after which archmerge closes the connection (401, 405, 408,
        413) come as CivetWeb's text/plain error page, "Error NNN: Reason"
        and then archmerge's JSON on the next line: that JSON is returned.
        """
        text = self.body.decode(errors="replace")
        for candidate in (text, text.split("\n", 1)[-1]):
            try:
                return json.loads(candidate)
            except ValueError:
                pass
        return text


def request(url: str, payload: Union[dict, list, bytes, str, None] = None, content_type: Optional[str] = CT_DEFAULT,
            auth_header: Optional[str] = None, cafile: Optional[str] = None, *, method: str = "POST",
            headers: Optional[Dict[str, str]] = None, timeout: float = 5.0) -> WebhookResponse:
    """One request on a fresh connection (Connection: close), like Harbor's job
    service. dict/list payloads are JSON-encoded; bytes/str are sent as is.
    `headers` override anything (set a header to None to drop it)."""
    parts = urlsplit(url)
    assert parts.hostname and (parts.hostname.startswith("127.") or parts.hostname == "localhost"), "loopback only"
    if isinstance(payload, (dict, list)):
        body = json.dumps(payload).encode()
    elif isinstance(payload, str):
        body = payload.encode()
    else:
        body = payload
    hdrs = {"User-Agent": "Go-http-client/1.1", "Connection": "close"}
    if content_type is not None:
        hdrs["Content-Type"] = content_type
    if auth_header is not None:
        hdrs["Authorization"] = auth_header
    if body is not None or method in ("POST", "PUT", "PATCH"):
        hdrs["Content-Length"] = str(len(body or b""))
    for k, v in (headers or {}).items():
        hdrs = {hk: hv for hk, hv in hdrs.items() if hk.lower() != k.lower()}
        if v is not None:
            hdrs[k] = v

    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout,
                                           context=client_tls_context(cafile))
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            try:
                # The server may answer early (413/401) and close; still read its reply.
                for i in range(0, len(body), 65536):
                    conn.send(body[i:i + 65536])
            except OSError:   # EPIPE, ECONNRESET, SSLEOFError: try to read the answer anyway
                pass
        resp = conn.getresponse()
        return WebhookResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def send(url: str, payload: Union[dict, list, bytes, str, None], content_type: Optional[str] = CT_DEFAULT,
         auth_header: Optional[str] = None, cafile: Optional[str] = None, **kw) -> Tuple[int, Any]:
    """POST a payload; returns (status, parsed JSON body or text)."""
    r = request(url, payload, content_type, auth_header, cafile, **kw)
    return r.status, r.data
