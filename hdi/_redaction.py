"""The one redaction every URL and message goes through before hdi shows or stores it.

``redact(text)`` hides, in linear time whatever the input (a 1,000,000-character text takes
milliseconds; no regular expression here can backtrack):

- **known secrets**, literally, in every form they may be written: the Databento API key
  (``DATABENTO_API_KEY``: as is, percent-encoded, base64 of ``key:`` as sent by HTTP basic auth),
  ``PGPASSWORD``, and the passwords of the store and gateway URLs (``HDI_STORE``,
  ``HDI_DATABENTO_GATEWAY`` and every URL passed to :func:`remember`, which stores call): as written,
  percent-decoded and percent-encoded. Secrets shorter than 4 characters are left to the rules below
  (replacing "ab" everywhere would mangle the text);
- **URL userinfo** ``scheme://user:PASSWORD@host``: the password runs from the first ``:`` after
  ``://`` to the **last** ``@`` before the line ends or the next URL starts, so a password typed
  with spaces, ``@``, ``:`` or percent-escapes is hidden whole (the user name stays);
- **key=value passwords** (``password``, ``passwd``, ``sslpassword``, ``PGPASSWORD``... followed by
  ``=`` or ``:``): URL query parameters (``?password=...``, up to ``&``, ``#``, a quote or
  whitespace), libpq key=value strings (``password=...`` up to whitespace, or ``'...'`` quoted with
  ``\\'`` escapes) and JSON / Python reprs (``"password": "..."``);
- ``Authorization: Basic|Bearer ...`` values, and anything shaped like a Databento API key
  (``db-`` followed by 20 or more letters and digits).

What it cannot know: a password that contains a newline or ``://`` is hidden only where it is a
known secret (the store's and gateway's are).

:func:`libpq_url` writes a PostgreSQL URL's user and password percent-encoded, so that a password
typed with spaces, ``@``, ``:`` or ``%`` reaches the server as typed (libpq takes the *first* ``@``
as the end of the password; RFC 3986 wants them percent-encoded). ``/``, ``?`` and ``#`` end the
host part of any URL, so in a password they must be written ``%2F``, ``%3F``, ``%23``.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import sys
import threading
from types import TracebackType
from urllib.parse import parse_qsl, quote, quote_plus, unquote

MASK = "***"
MIN_SECRET = 4  # shorter known secrets are not replaced literally (see the module doc)

_SECRET_ENV = ("HDI_STORE", "HDI_DATABENTO_GATEWAY")  # URLs whose passwords are secrets
_remembered: set[str] = set()
_lock = threading.Lock()


def remember(url: str | None) -> None:
    """Treat the password(s) of ``url`` as known secrets from now on (stores and sources call this)."""
    if url and ("@" in url or "password" in url.lower()):
        with _lock:
            _remembered.add(url)


def redact(text: str) -> str:
    """``text`` with every secret hdi knows of, or can recognise by its shape, replaced by ``***``."""
    if not text:
        return text
    text = _replace_known(text)
    text = _redact_userinfo(text)
    text = _redact_keyvals(text)
    text = _AUTH.sub(lambda m: m[1] + MASK, text)
    return _DB_KEY.sub(MASK, text)


def redact_url(url: str) -> str:
    """A URL fit to show: the same rules as :func:`redact`."""
    return redact(url)


# ------------------------------------------------------------------------------ known secrets
def _env_secrets() -> tuple[str, ...]:
    key = os.environ.get("DATABENTO_API_KEY", "").strip()
    pg = os.environ.get("PGPASSWORD", "")
    with _lock:
        urls = sorted(_remembered)
    urls += [os.environ.get(v, "") for v in _SECRET_ENV]
    return (key, pg, *(u for u in urls if u))


def _replace_known(text: str) -> str:
    env = _env_secrets()
    pattern = _literal_pattern(env)
    return pattern.sub(MASK, text) if pattern is not None else text


@functools.lru_cache(maxsize=32)
def _literal_pattern(env: tuple[str, ...]) -> re.Pattern[str] | None:
    key, pg, *urls = env
    found: set[str] = set()
    if key:
        found |= _forms(key)
        raw = f"{key}:".encode()
        found |= {base64.b64encode(raw).decode().rstrip("="), base64.b64encode(key.encode()).decode().rstrip("=")}
    if pg:
        found |= _forms(pg)
    for url in urls:
        for secret in url_secrets(url):
            found |= _forms(secret)
    found = {s for s in found if len(s) >= MIN_SECRET and s != MASK}
    if not found:
        return None
    # longest first: a secret that contains another is replaced whole
    return re.compile("|".join(re.escape(s) for s in sorted(found, key=lambda s: (-len(s), s))))


def _forms(secret: str) -> set[str]:
    """A secret as written, percent-decoded, and percent-encoded the ways URLs encode it."""
    plain = unquote(secret)
    return {secret, plain, quote(plain, safe=""), quote_plus(plain, safe=""), quote(plain)}


def url_secrets(url: str) -> list[str]:
    """The password(s) in a URL: its userinfo password (however it was typed) and any
    ``password=`` query parameter, as written and percent-decoded; longest first."""
    found: set[str] = set()
    scheme, sep, rest = url.partition("://")
    if sep:
        cut = len(rest)
        for c in "/?#":
            i = rest.find(c)
            if i != -1:
                cut = min(cut, i)
        # RFC 3986 (the authority ends at the first / ? #), libpq's reading (the first @ ends the
        # userinfo: it may quote that part in an error) and the lenient one (the last @ of the URL,
        # for passwords typed with / ? #): all are secrets
        for userinfo in (rest[:cut].rpartition("@")[0], rest[:cut].partition("@")[0] if "@" in rest[:cut] else "",
                         rest.rpartition("@")[0]):
            if ":" in userinfo:
                found.add(userinfo.partition(":")[2])
    query = url.partition("?")[2]
    for k, v in parse_qsl(query, keep_blank_values=True):
        if "pass" in k.lower():
            found.add(v)
    for m in re.finditer(r"(?i)pass(?:word|wd)=([^&#\s]*)", query):
        found.add(m[1])
    found |= {unquote(s) for s in found}
    return sorted((s for s in found if s and s != MASK), key=lambda s: (-len(s), s))


# ------------------------------------------------------------------------------ URL userinfo
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def _redact_userinfo(text: str) -> str:
    """``scheme://user:PASSWORD@...``: the password up to the last ``@`` of the URL's segment
    (the rest of the line, up to the next ``scheme://``). Each character is looked at a bounded
    number of times: segments do not overlap."""
    i = text.find("://")
    if i == -1:
        return text
    out: list[str] = []
    last = 0
    n = len(text)
    while i != -1:
        after = i + 3
        nxt = text.find("://", after)
        bound = n if nxt == -1 else nxt
        nl = text.find("\n", after, bound)
        if nl != -1:
            end = nl
        elif nxt != -1:
            end = nxt
            while end > after and text[end - 1] in _SCHEME_CHARS:  # the next URL's scheme
                end -= 1
        else:
            end = n
        at = text.rfind("@", after, end)
        if at != -1:
            colon = text.find(":", after, at)
            if colon != -1 and text[colon + 1:at] != MASK:
                out.append(text[last:colon + 1])
                out.append(MASK)
                last = at
        i = nxt
    out.append(text[last:])
    return "".join(out)


# ------------------------------------------------------------------------------ key=value
_KEY = re.compile(r"pass(?:word|wd)[\"']?\s*[:=][ \t]*", re.I)
_QUOTED = {q: re.compile(rf"[^{q}\\]*(?:\\.[^{q}\\]*)*", re.S) for q in ("'", '"')}
_URL_VALUE = re.compile(r"[^\s&#'\"]*")
_DSN_VALUE = re.compile(r"\S*")


def _value_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where the value starting at ``pos`` ends; every value pattern above matches the empty string."""
    m = pattern.match(text, pos)
    assert m is not None, pattern.pattern
    return m.end()


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _redact_keyvals(text: str) -> str:
    out: list[str] = []
    last = 0
    for m in _KEY.finditer(text):
        if m.start() < last:  # inside a value already hidden
            continue
        s = m.end()
        if s < len(text) and text[s] in "'\"":
            q = text[s]
            v_start = s + 1
            v_end = _value_end(_QUOTED[q], text, v_start)
        else:
            j, lo = m.start(), max(0, m.start() - 40)
            while j > lo and text[j - 1] in _NAME_CHARS:  # the key's own prefix (ssl, PG, db_, ...)
                j -= 1
            in_url = j > 0 and text[j - 1] in "?&;"
            v_start = s
            v_end = _value_end(_URL_VALUE if in_url else _DSN_VALUE, text, s)
        if v_end == v_start or text.startswith(MASK, v_start):  # nothing, or hidden already
            continue
        out.append(text[last:v_start])
        out.append(MASK)
        last = v_end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


_AUTH = re.compile(r"(authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|token)\s+)[A-Za-z0-9+/=._~-]+", re.I)
_DB_KEY = re.compile(r"db-[A-Za-z0-9]{20,}")


# ------------------------------------------------------------------------------ libpq URLs
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_RFC_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")


def _encode(part: str) -> str:
    """Percent-encode everything but unreserved characters and valid ``%XX`` escapes."""
    out, pos = [], 0
    for m in _ESCAPE.finditer(part):
        out.append(quote(part[pos:m.start()], safe=""))
        out.append(m[0])
        pos = m.end()
    out.append(quote(part[pos:], safe=""))
    return "".join(out)


def libpq_url(url: str) -> str:
    """``url`` with its user and password percent-encoded when they were typed with characters
    RFC 3986 does not allow there (spaces, ``@``, a ``%`` not starting an escape, ...); a URL
    that is valid already is returned unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = len(rest)
    for c in "/?#":
        i = rest.find(c)
        if i != -1:
            cut = min(cut, i)
    userinfo, at, host = rest[:cut].rpartition("@")
    if not at or _RFC_USERINFO.fullmatch(userinfo):
        return url
    user, colon, password = userinfo.partition(":")
    encoded = _encode(user) + (":" + _encode(password) if colon else "")
    return f"{scheme}://{encoded}@{host}{rest[cut:]}"


# ------------------------------------------------------------------------------ tracebacks
def print_exception(exc: BaseException) -> None:
    """Print an exception's traceback on stderr, redacted."""
    import traceback

    sys.stderr.write(redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))


def install_excepthook() -> None:
    """Uncaught exceptions (main thread and others) print their traceback redacted. (Typer puts its
    own hook in place while a command runs: the CLI's ``main`` catches and prints those itself.)"""

    def hook(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None) -> None:
        print_exception(exc.with_traceback(tb) if exc is not None else exc_type())

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        sys.stderr.write(f"Exception in thread {name}:\n")
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
