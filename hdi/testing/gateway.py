"""A local Databento-compatible HTTPS gateway for tests, ``make demo`` and benchmarks.

The official ``databento.Historical`` client talks to it unmodified: it serves HTTPS with a
throwaway CA made by ``trustme`` (the ``testing`` extra: ``pip install 'hdi[testing]'``); a client
process trusts it through ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` (see :meth:`Gateway.env`) and finds it through ``HDI_DATABENTO_GATEWAY``.

In process::

    with Gateway() as gw:
        gw.faults.status("timeseries.get_range", 503, times=2)
        client = databento.Historical("db-test", gateway=gw.url)   # with gw.env() in os.environ

As a process (prints one JSON line ``{"url", "ca_path", "pid"}`` when ready)::

    python -m hdi.testing.gateway [--port N] [--state-dir DIR] [--now ISO] [--no-trade DS:SYMBOL:DATE]
        [--restate DS:DATE] [--condition DS:DATE:CONDITION]

    python -m hdi.testing.gateway --outage 'timeseries.get_range,metadata.get_cost=90' [--outage-kind reset]

Control endpoints (no auth): ``POST /_hdi/faults`` (a fault or a list, see ``faults.Fault``),
``DELETE /_hdi/faults`` (faults and outages), ``GET /_hdi/faults``, ``POST /_hdi/outages`` (an outage
or a list: ``{"endpoints": "*" | name | [names], "seconds": N}`` from now, or ``"start"``/``"end"``
instants of the gateway's clock; ``"kind": "status" | "reset"``, ``"status": 503``, ``"match"``; see
``faults.Outage``), ``GET|DELETE /_hdi/outages``, ``GET|DELETE /_hdi/requests``, ``POST /_hdi/no-trade``
(``{"dataset", "symbol", "date"}``), ``POST /_hdi/restate`` (``{"dataset", "date", "last_modified_date"?,
"remove"?, "reprice"?}``, see :meth:`Gateway.restate`), ``POST /_hdi/condition`` (``{"dataset", "date",
"condition"}``), ``POST /_hdi/batch`` (batch-job timing and faults, see
:meth:`hdi.testing.batchjobs.BatchJobs.configure`), ``GET /_hdi/batch``, ``GET /_hdi/health`` (with
``clock``, the gateway's clock, UTC).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hdi._timeutil import parse_iso
from hdi.errors import ConfigError
from hdi.testing import faults as faults_mod
from hdi.testing.api import Api, ApiError, Reply
from hdi.testing.batchjobs import DOWNLOAD_PREFIX
from hdi.testing.restate import Restatement
from hdi.testing.wire import LoggedRequest, RequestLog, basic_auth_user, error_for_status, parse_params

logger = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], ctx: ssl.SSLContext, gateway: Gateway) -> None:
        super().__init__(addr, _Handler)
        self.ctx = ctx
        self.gateway = gateway

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS handshake in the worker thread, so a slow client never blocks accept()."""
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("TLS handshake failed from %s: %s", client_address, exc)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]  # typeshed: Self
        finally:
            try:
                conn.close()
            except OSError:
                pass


class _Dropped(Exception):
    """The connection was cut on purpose (drop fault)."""


class _Reset(Exception):
    """The connection is to be reset (reset fault, or an outage of kind reset)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hdi-test-gateway"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ---- plumbing ----------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        gw = self.server.gateway
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, params = parse_params(self.path, body, self.headers.get("Content-Type", ""))
        if path.startswith("/_hdi/"):
            self._control(method, path, body)
            return
        endpoint = faults_mod.endpoint_name(path)
        if endpoint.startswith(DOWNLOAD_PREFIX):  # faults can match a batch file by job id and name
            job_id, _, filename = endpoint[len(DOWNLOAD_PREFIX):].partition("/")
            params = {**params, "job_id": job_id, "filename": filename}
        fault = gw.faults.take(endpoint, params)
        entry = gw.log.add(method, path, params, fault.describe() if fault else None)
        try:
            self._serve(method, endpoint, params, fault, entry)
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except _Reset:  # SO_LINGER 0: closing sends RST, the client reads ConnectionResetError
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _serve(self, method: str, endpoint: str, params: dict[str, str], fault: faults_mod.Fault | None,
               entry: LoggedRequest) -> None:
        gw = self.server.gateway
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "reset":
            raise _Reset
        if fault is not None and fault.kind == "status":
            entry.status = fault.status
            err = error_for_status(fault.status, fault.retry_after)
            if fault.body == "html":
                page = f"<html><body><h1>{fault.status}</h1></body></html>".encode()
                self._send(fault.status, page, "text/html", err.headers)
            else:
                self._send_json(fault.status, err.body(), err.headers)
            return
        drop = fault is not None and fault.kind == "drop"
        after = fault.after_bytes if drop and fault is not None else None
        if endpoint.startswith(DOWNLOAD_PREFIX):
            self._download(method, endpoint, entry, drop=drop, after=after)
            return
        try:
            reply = gw.api.handle(method, endpoint, params, basic_auth_user(self.headers.get("Authorization")),
                                  truncate=fault is not None and fault.kind == "truncate")
            if reply.stream is not None:
                # generate the first piece before the status line, so request errors still become 4xx
                first = next(reply.stream, b"")
        except ApiError as exc:
            entry.status = exc.status
            self._send_json(exc.status, exc.body(), exc.headers, drop=drop, after=after)
            return
        except Exception:
            logger.exception("gateway error serving %s %s", method, endpoint)
            entry.status = 500
            self._send_json(500, error_for_status(500).body())
            return
        entry.status = 200
        if reply.stream is None:
            self._send_json(200, reply.json, reply.headers, drop=drop, after=after)
        else:
            self._send_stream(reply, first, drop=drop, after=after)

    def _download(self, method: str, endpoint: str, entry: LoggedRequest, *, drop: bool, after: int | None) -> None:
        """A batch job's file, whole or from the ``Range: bytes=a-[b]`` asked (206)."""
        gw = self.server.gateway
        rng = self.headers.get("Range")
        if rng:
            entry.params["Range"] = rng  # the log shows a resumed download
        try:
            if method != "GET":
                raise ApiError(405, "method_not_allowed", f"/v0/{endpoint} takes GET, not {method}.")
            if not basic_auth_user(self.headers.get("Authorization")):
                raise ApiError(401, "auth_authentication_failed", "Authentication failed: no API key was provided.")
            data = gw.api.batch.file(gw.api, endpoint)
        except ApiError as exc:
            entry.status = exc.status
            self._send_json(exc.status, exc.body(), exc.headers)
            return
        status, extra, body = 200, {"Accept-Ranges": "bytes"}, data
        if rng and rng.startswith("bytes="):
            a, _, b = rng[len("bytes="):].partition("-")
            lo, hi = int(a or 0), min(int(b) if b else len(data) - 1, len(data) - 1)
            if lo >= len(data) or lo > hi:
                entry.status = 416
                self._send(416, b"", "application/octet-stream", {"Content-Range": f"bytes */{len(data)}"})
                return
            status, body = 206, data[lo:hi + 1]
            extra["Content-Range"] = f"bytes {lo}-{hi}/{len(data)}"
        entry.status = status
        rate = gw.api.batch.download_rate
        if rate and not drop:  # a slow link: the file arrives piece by piece (a kill lands mid-file)
            self._headers(status, "application/octet-stream", extra)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            piece = max(1, int(rate / 20))
            for i in range(0, len(body), piece):
                self.wfile.write(body[i:i + piece])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self._send(status, body, "application/octet-stream", extra, drop=drop, after=after)

    def _headers(self, status: int, content_type: str, extra: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("request-id", self.server.gateway.log.last_id())
        for k, v in (extra or {}).items():
            self.send_header(k, v)

    def _send(self, status: int, payload: bytes, content_type: str, extra: dict[str, str] | None = None,
              *, drop: bool = False, after: int | None = None) -> None:
        self._headers(status, content_type, extra)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if drop:
            cut = max(1, min(len(payload) - 1, after if after is not None else len(payload) // 2))
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            raise _Dropped
        self.wfile.write(payload)

    def _send_json(self, status: int, value: Any, extra: dict[str, str] | None = None, *, drop: bool = False,
                   after: int | None = None) -> None:
        self._send(status, json.dumps(value).encode(), "application/json", extra, drop=drop, after=after)

    def _send_stream(self, reply: Reply, first: bytes, *, drop: bool, after: int | None) -> None:
        assert reply.stream is not None
        if drop:  # with a Content-Length, as a proxy would send: the client sees IncompleteRead
            payload = b"".join(_chain(first, reply.stream))
            self._send(200, payload, reply.content_type, reply.headers, drop=True, after=after)
            return
        self._headers(200, reply.content_type, reply.headers)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for piece in _chain(first, reply.stream):
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            raise
        except Exception:
            logger.exception("gateway error while streaming")
            raise _Dropped from None
        self.wfile.write(b"0\r\n\r\n")

    def _control(self, method: str, path: str, body: bytes) -> None:
        gw = self.server.gateway
        try:
            data: Any = json.loads(body) if body else None
            if path == "/_hdi/faults" and method == "POST":
                specs = data if isinstance(data, list) else [data]
                armed = [gw.faults.add_dict(s).id for s in specs]
                self._send_json(200, {"armed": armed})
            elif path == "/_hdi/faults" and method == "DELETE":
                gw.faults.clear()
                self._send_json(200, {"cleared": True})
            elif path == "/_hdi/faults" and method == "GET":
                self._send_json(200, gw.faults.pending())
            elif path == "/_hdi/requests" and method == "GET":
                self._send_json(200, [r.as_dict() for r in gw.requests])
            elif path == "/_hdi/requests" and method == "DELETE":
                gw.clear_requests()
                self._send_json(200, {"cleared": True})
            elif path == "/_hdi/no-trade" and method == "POST":
                gw.add_no_trade_day(data["dataset"], data["symbol"], date.fromisoformat(data["date"]))
                self._send_json(200, {"ok": True})
            elif path == "/_hdi/restate" and method == "POST":
                r = gw.restate(data["dataset"], date.fromisoformat(data["date"]),
                               last_modified=date.fromisoformat(data["last_modified_date"])
                               if data.get("last_modified_date") else None,
                               remove=[int(i) for i in data.get("remove", [0])],
                               reprice=[(int(i), int(c)) for i, c in data.get("reprice", [[1, 1]])])
                self._send_json(200, {"last_modified_date": r.last_modified.isoformat()})
            elif path == "/_hdi/condition" and method == "POST":
                gw.set_condition(data["dataset"], date.fromisoformat(data["date"]), data["condition"])
                self._send_json(200, {"ok": True})
            elif path == "/_hdi/outages" and method == "POST":
                specs = data if isinstance(data, list) else [data]
                armed = [gw.faults.outage_dict(s).id for s in specs]
                self._send_json(200, {"armed": armed})
            elif path == "/_hdi/outages" and method == "GET":
                self._send_json(200, gw.faults.outages())
            elif path == "/_hdi/outages" and method == "DELETE":
                gw.faults.clear_outages()
                self._send_json(200, {"cleared": True})
            elif path == "/_hdi/batch" and method == "POST":
                gw.api.batch.configure(data or {})
                self._send_json(200, {"ok": True})
            elif path == "/_hdi/batch" and method == "GET":
                self._send_json(200, {"submitted": gw.api.batch.submitted()})
            elif path == "/_hdi/health":
                clock = datetime.fromtimestamp(gw.faults.clock(), UTC).isoformat().replace("+00:00", "Z")
                self._send_json(200, {"ok": True, "url": gw.url, "clock": clock})
            else:
                self._send_json(404, {"detail": {"case": "not_found", "message": f"no control endpoint {method} "
                                                 f"{path}", "docs": ""}})
        except (ValueError, TypeError, KeyError) as exc:
            self._send_json(400, {"detail": {"case": "bad_request", "message": str(exc), "docs": ""}})


def _chain(first: bytes, rest: Any) -> Any:
    yield first
    yield from rest


class Gateway:
    """The gateway server: a context manager, or ``start()``/``stop()``.

    Args:
        port: TCP port on 127.0.0.1 (0 = any free port).
        state_dir: where the CA certificate is written (default: a temporary folder removed on stop).
        now: the gateway's clock; datasets end here (default: the wall clock).
        no_trade: (dataset, symbol, date) triples that have no records at all.
        rejected_key_prefixes: API keys starting with one of these get 401.
        rejected_keys: API keys that get 401.
    """

    def __init__(self, *, port: int = 0, state_dir: str | os.PathLike[str] | None = None,
                 now: datetime | None = None, no_trade: tuple[tuple[str, str, date], ...] = (),
                 rejected_key_prefixes: tuple[str, ...] = ("db-bad",),
                 rejected_keys: frozenset[str] = frozenset()) -> None:
        self._port = port
        self._state_dir = Path(state_dir) if state_dir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.api = Api(now=now, no_trade=no_trade, rejected_key=lambda key: key in rejected_keys or any(
            key.startswith(p) for p in rejected_key_prefixes))
        self.faults = faults_mod.FaultSet()
        self.log = RequestLog()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.ca_path: Path | None = None

    def start(self) -> Gateway:
        try:
            import trustme
        except ImportError:
            raise ConfigError(TRUSTME_MISSING) from None

        if self._server is not None:
            return self
        if self._state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hdi-gateway-")
            self._state_dir = Path(self._tmp.name)
        self._state_dir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        self.ca_path = self._state_dir / "gateway-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self._server = _Server(("127.0.0.1", self._port), ctx, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hdi-gateway", daemon=True)
        self._thread.start()
        self.api.batch.base_url = self.url  # the download URLs of batch jobs' files
        logger.info("test gateway listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._state_dir = None

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received so far, oldest first: ``(method, path, params)`` tuples with
        ``.fault`` and ``.status`` attributes. The API key is never recorded."""
        return self.log.snapshot()

    def calls(self, endpoint: str) -> list[LoggedRequest]:
        """Requests to one endpoint (``timeseries.get_range`` or ``/v0/timeseries.get_range``)."""
        name = faults_mod.endpoint_name(endpoint)
        return [r for r in self.requests if faults_mod.endpoint_name(r.path) == name]

    def clear_requests(self) -> None:
        self.log.clear()

    def add_no_trade_day(self, dataset: str, symbol: str, day: date) -> None:
        """Make ``symbol`` (resolved on ``day``) have no records at all on ``day``."""
        self.api.no_trade.add((dataset, symbol, day))

    def restate(self, dataset: str, day: date, *, last_modified: date | None = None,
                remove: Iterable[int] = (0,), reprice: Iterable[tuple[int, int]] = ((1, 1),)) -> Restatement:
        """Restate ``day`` of ``dataset`` (``metadata.get_dataset_condition`` then reports a later
        ``last_modified_date``): from now on each instrument's records of that day come without the
        records at the ``remove`` positions, and with the prices at the ``reprice`` positions moved
        by the given cents (default: the first record removed, the second one's price +0.01)."""
        return self.api.conditions.restate(dataset, day, last_modified=last_modified, remove=remove, reprice=reprice)

    def set_condition(self, dataset: str, day: date, condition: str) -> None:
        """Report ``day`` of ``dataset`` as ``available``, ``degraded``, ``pending`` or ``missing``."""
        self.api.conditions.mark(dataset, day, condition)

    def env(self) -> dict[str, str]:
        """Environment variables a client process needs to use this gateway."""
        assert self.ca_path is not None, "start the gateway first"
        return {"REQUESTS_CA_BUNDLE": str(self.ca_path), "SSL_CERT_FILE": str(self.ca_path),
                "HDI_DATABENTO_GATEWAY": self.url}


# trustme (the throwaway CA) is in the `testing` extra, not in a plain `pip install hdi`.
TRUSTME_MISSING = "the test gateway needs trustme, which is not installed: pip install 'hdi[testing]'"


def _parse_now(value: str) -> datetime:
    return parse_iso(value)


def _arm_outage(gw: Gateway, spec: str, kind: str) -> None:
    """``--outage ENDPOINTS=SECONDS`` or ``ENDPOINTS=START/END``, failing as ``--outage-kind`` says."""
    names, sep, when = spec.partition("=")
    endpoints = [e.strip() for e in names.split(",") if e.strip()]
    if not sep or not endpoints or not when.strip():
        raise ConfigError(f"--outage '{spec}' is not allowed; allowed: ENDPOINTS=SECONDS or ENDPOINTS=START/END, "
                          "e.g. 'timeseries.get_range,metadata.get_cost=90' or '*=2026-12-04T18:00:00Z/"
                          "2026-12-04T18:05:00Z'")
    how: dict[str, Any] = {"kind": "reset"} if kind == "reset" else {"kind": "status", "status": _status(kind)}
    try:
        if "/" in when:
            start, end = when.split("/", 1)
            gw.faults.outage(endpoints, start=start, end=end, **how)
        else:
            gw.faults.outage(endpoints, seconds=_seconds(when, spec), **how)
    except ValueError as e:
        raise ConfigError(f"--outage '{spec}': {e}") from None


def _status(kind: str) -> int:
    if kind.isdigit() and 400 <= int(kind) <= 599:
        return int(kind)
    raise ConfigError(f"--outage-kind '{kind}' is not allowed; allowed: reset or an HTTP error status 400-599")


def _seconds(when: str, spec: str) -> float:
    try:
        return float(when)
    except ValueError:
        raise ConfigError(f"--outage '{spec}': '{when}' is neither seconds nor START/END") from None


def main(argv: list[str] | None = None) -> int:
    """Run the gateway in the foreground until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(prog="python -m hdi.testing.gateway", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir", default=None, help="folder for the CA certificate and gateway.json")
    ap.add_argument("--now", default=None, help="the gateway's clock, ISO 8601 (datasets end here)")
    ap.add_argument("--no-trade", action="append", default=[], metavar="DATASET:SYMBOL:DATE")
    ap.add_argument("--restate", action="append", default=[], metavar="DATASET:DATE",
                    help="serve DATE restated: each instrument's first record removed, the second one's price "
                         "+0.01, last_modified_date one day later (also POST /_hdi/restate)")
    ap.add_argument("--condition", action="append", default=[], metavar="DATASET:DATE:CONDITION",
                    help="report DATE as available, degraded, pending or missing (also POST /_hdi/condition)")
    ap.add_argument("--outage", action="append", default=[], metavar="ENDPOINTS=WHEN",
                    help="an outage by time: every call of ENDPOINTS (comma-separated names such as "
                         "timeseries.get_range, or '*') fails for WHEN seconds from the start, or from START to "
                         "END (WHEN = START/END, ISO 8601 instants of the gateway's clock, UTC); repeatable")
    ap.add_argument("--outage-kind", default="503", metavar="KIND",
                    help="how calls fail during an --outage: an HTTP status (500, 502, 503, 504, ...) or "
                         "'reset' (connection reset); default 503")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    no_trade = []
    for item in args.no_trade:
        ds, sym, day = item.split(":")
        no_trade.append((ds, sym, date.fromisoformat(day)))
    try:
        gw = Gateway(port=args.port, state_dir=args.state_dir, now=_parse_now(args.now) if args.now else None,
                     no_trade=tuple(no_trade))
        for spec in args.outage:
            _arm_outage(gw, spec, args.outage_kind)
        gw.start()
    except ConfigError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    try:
        for item in args.restate:
            ds, day = item.split(":")
            gw.restate(ds, date.fromisoformat(day))
        for item in args.condition:
            ds, day, condition = item.split(":")
            gw.set_condition(ds, date.fromisoformat(day), condition)
    except ValueError as e:
        gw.stop()
        print(f"error: --restate DATASET:DATE / --condition DATASET:DATE:CONDITION: {e}", file=sys.stderr)
        return 2
    info = {"url": gw.url, "ca_path": str(gw.ca_path), "pid": os.getpid()}
    if args.state_dir:
        (Path(args.state_dir) / "gateway.json").write_text(json.dumps(info))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps(info), flush=True)
    stop.wait()
    gw.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
