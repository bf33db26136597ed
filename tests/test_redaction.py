"""Issue 8, item 4: one redaction for every URL and message (``hdi._redaction``).

The main property is non-interference: a message that holds a secret redacts to the same text
whatever the secret was, so nothing of it (a prefix, its length, the part after an ``@``) can be
read back. Hypothesis draws the secrets (spaces, ``@``, ``:``, ``%``, quotes, any Unicode) and the
text around them; the example budget is bounded here (``HDI_HYPOTHESIS_EXAMPLES``, default 150).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hdi import _config as config
from hdi import _redaction as redaction
from hdi._redaction import libpq_url, redact

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("HDI_HYPOTHESIS_EXAMPLES", "150"))
PROPS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _no_known_secrets(monkeypatch):
    """Structural rules only, unless a test says otherwise (other tests remember their stores)."""
    monkeypatch.setattr(redaction, "_remembered", set())
    for var in ("DATABENTO_API_KEY", "PGPASSWORD", "HDI_STORE", "HDI_DATABENTO_GATEWAY"):
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------------------------ strategies
# Anything but a newline, and never "://": those end a URL in free text (module doc).
chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")
secret = st.text(chars, min_size=1, max_size=40).filter(lambda s: "://" not in s)
user = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r:@/?#"), max_size=12)
host = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,8}){0,2}(:[0-9]{2,5})?", fullmatch=True)
around = st.text(chars, max_size=40)  # text before and after the URL in the message
scheme = st.sampled_from(["postgresql", "postgres", "https", "http", "duckdb"])


def _url(sch: str, u: str, pw: str, h: str, encode: bool) -> str:
    return f"{sch}://{u}:{quote(pw, safe='') if encode else pw}@{h}/db?sslmode=disable"


# ------------------------------------------------------------------------------ properties
@PROPS
@given(sch=scheme, u=user, h=host, p1=secret, p2=secret, pre=around, post=around, encode=st.booleans())
@example(sch="postgresql", u="hdi", h="db", p1="pass word", p2="x", pre="cannot connect to ", post=": refused",
         encode=False)
@example(sch="postgresql", u="hdi", h="db", p1="p@ss@w0rd", p2="x", pre="", post="", encode=False)
@example(sch="postgresql", u="hdi", h="db", p1="a:b%ZZ:c", p2="x", pre="'", post="'", encode=False)
def test_a_userinfo_password_never_shows_in_any_form(sch, u, h, p1, p2, pre, post, encode):
    """The message redacts to the same text whatever the password: spaces, @, :, % included."""
    one = redact(pre + _url(sch, u, p1, h, encode) + post)
    two = redact(pre + _url(sch, u, p2, h, encode) + post)
    assert one == two
    assert f"{u}:***@" in one


@PROPS
@given(p1=secret, p2=secret, pre=around, post=around, key=st.sampled_from(["password", "PASSWORD", "sslpassword"]))
def test_a_query_string_password_never_shows(p1, p2, pre, post, key):
    def msg(p: str) -> str:
        return f"{pre}postgresql://h:5432/db?user=hdi&{key}={quote_plus(p, safe='')}&sslmode=require{post}"

    assert redact(msg(p1)) == redact(msg(p2))


@PROPS
@given(p1=secret, p2=secret, pre=around, post=around)
def test_a_libpq_key_value_password_never_shows(p1, p2, pre, post):
    """libpq connection strings: ``password='...'`` with \\' and \\\\ escapes."""
    def msg(p: str) -> str:
        quoted = p.replace("\\", "\\\\").replace("'", "\\'")
        return f"{pre} host=127.0.0.1 password='{quoted}' dbname=hdi {post}"

    assert redact(msg(p1)) == redact(msg(p2))


@PROPS
@given(p1=st.from_regex(r"[^\s'\"]\S{0,30}", fullmatch=True), p2=st.from_regex(r"[^\s'\"]\S{0,30}", fullmatch=True),
       pre=around)
def test_an_unquoted_libpq_password_never_shows(p1, p2, pre):
    def msg(p: str) -> str:
        return f"{pre} host=db port=5432 password={p} user=hdi"

    assert redact(msg(p1)) == redact(msg(p2))


api_key = st.from_regex(r"db-[A-Za-z0-9]{29}", fullmatch=True)


@PROPS
@given(key=api_key, pre=around, post=around, form=st.sampled_from(["raw", "url-user", "basic", "quoted", "json"]))
def test_the_api_key_never_shows_in_any_form(key, pre, post, form):
    b64 = base64.b64encode(f"{key}:".encode()).decode()
    text = {"raw": key, "url-user": f"https://{key}:@hist.databento.com/v0/x", "basic": f"Authorization: Basic {b64}",
            "quoted": quote(key), "json": f'{{"key": "{key}"}}'}[form]
    for env in (True, False):  # known (from DATABENTO_API_KEY) and unknown (its shape alone)
        os.environ.pop("DATABENTO_API_KEY", None)
        if env:
            os.environ["DATABENTO_API_KEY"] = key
        try:
            out = redact(pre + text + post)
        finally:
            os.environ.pop("DATABENTO_API_KEY", None)
        assert key not in out and b64.rstrip("=") not in out


@PROPS
@given(u=user, pw=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"), min_size=1,
                         max_size=30).filter(lambda s: not re.search("%[0-9A-Fa-f]{2}", s)),
       h=host)
@example(u="hdi", pw="pa ss", h="127.0.0.1:55433")
@example(u="hdi", pw="p@ss:w%rd", h="127.0.0.1:55433")
def test_libpq_gets_the_password_as_typed(u, pw, h):
    """``libpq_url`` writes user and password so that both RFC 3986 (Python's urlsplit) and libpq
    (which ends the userinfo at the first @) read back exactly what was typed."""
    url = libpq_url(f"postgresql://{u}:{pw}@{h}/hdi?sslmode=disable")
    parts = urlsplit(url)
    assert (unquote(parts.username or ""), unquote(parts.password or "")) == (u, pw)
    assert parts.netloc.rpartition("@")[2] == h and parts.path == "/hdi" and parts.query == "sslmode=disable"
    rest = url.split("://", 1)[1]  # libpq: userinfo up to the first '@'; user up to the first ':'
    userinfo = rest[:rest.index("@")]
    assert "/" not in userinfo
    lu, _, lp = userinfo.partition(":")
    assert (unquote(lu), unquote(lp)) == (u, pw)
    assert libpq_url(url) == url  # a valid URL is left as it is


def test_a_valid_url_is_never_rewritten():
    for url in ("postgresql://hdi:pa%20ss%40x@127.0.0.1:5432/hdi", "postgresql://127.0.0.1/hdi?password=x",
                "postgresql:///hdi?host=/tmp", "postgresql://h/db@x?application_name=a@b", "duckdb:///a/b"):
        assert libpq_url(url) == url


# ------------------------------------------------------------------------------ cases
@pytest.mark.parametrize(("text", "shown"), [
    ("TimescaleDB at postgresql://hdi:pa ss@127.0.0.1:5432/hdi: cannot connect",
     "TimescaleDB at postgresql://hdi:***@127.0.0.1:5432/hdi: cannot connect"),
    ("postgresql://hdi:p@ss@w0rd@127.0.0.1/hdi", "postgresql://hdi:***@127.0.0.1/hdi"),
    ("postgresql://hdi:pa%20ss%40x@h/db", "postgresql://hdi:***@h/db"),
    ("hdi ingest --store 'postgresql://u:a b@h/db?x=1' -v", "hdi ingest --store 'postgresql://u:***@h/db?x=1' -v"),
    ("postgresql://h/db?user=u&password=s3cret&sslmode=require", "postgresql://h/db?user=u&password=***&sslmode=require"),
    ("host=h password='it\\'s \\\\ x' user=u", "host=h password='***' user=u"),
    ("host=h password=plain user=u", "host=h password=*** user=u"),
    ("PGPASSWORD=hunter22 psql", "PGPASSWORD=*** psql"),
    ("{'password': 'pa ss', 'user': 'u'}", "{'password': '***', 'user': 'u'}"),
    ("Authorization: Basic ZGItYWJjOg==", "Authorization: Basic ***"),
    ("key db-AbCdEfGhIjKlMnOpQrStUvWxYz123 rejected", "key *** rejected"),
    ("https://user:tok@gw.example:8443/v0 and https://other@h/x", "https://user:***@gw.example:8443/v0 and https://other@h/x"),
    ("nothing secret: http://host:80/path, a@b", "nothing secret: http://host:***@b"),  # hides more, never less
])
def test_redaction_cases(text, shown):
    assert redact(text) == shown


def test_config_delegates_to_the_one_implementation():
    assert config.redact is redaction.redact and config.redact_url is redaction.redact_url


def test_known_secrets_are_hidden_anywhere_in_a_text(monkeypatch):
    """A remembered store URL's password is hidden even outside a URL (libpq quotes it alone),
    decoded, encoded and after a newline; short ones are left to the structural rules."""
    redaction.remember("postgresql://hdi:pa ss%21word@h/db")
    out = redact("libpq: invalid token \"pa ss!word\"\nretry with pa%20ss%21word or pa+ss%21word")
    assert "pa ss" not in out and "word" not in out
    monkeypatch.setenv("PGPASSWORD", "zebra-crossing")
    monkeypatch.setenv("HDI_DATABENTO_GATEWAY", "https://gwuser:gw-secret-1@gw.local")
    assert redact("a zebra-crossing and gw-secret-1") == "a *** and ***"
    redaction.remember("postgresql://hdi:ab@h/db")
    assert redact("table ab") == "table ab"


# ------------------------------------------------------------------------------ linear time
SHAPES = {
    "letters": lambda n: "a" * n,
    "scheme-runs": lambda n: ("a.b+c-" * n)[:n],
    "urls": lambda n: ("a://b:c" * n)[:n],
    "urls-at": lambda n: ("x://u:p@" * n)[:n],
    "ats": lambda n: "a://" + "@" * n,
    "colons": lambda n: "a://" + ":" * n + "@",
    "password-keys": lambda n: ("password=" * n)[:n],
    "password-spaces": lambda n: "password" + " " * n,
    "open-quote": lambda n: ("password='\\" * n)[:n],
    "db-keys": lambda n: ("db-" + "a" * 19) * (n // 22),
    "auth": lambda n: ("authorization: basic " * n)[:n],
    "symbols": lambda n: ",".join(f"SYM{i}.c.0" for i in range(n // 9))[:n],
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_redaction_takes_linear_time(shape, monkeypatch):
    """A 1,000,000-character input redacts in well under a second (a quadratic redact took over
    60 s on a 100,000-character --symbols), and 10x the input costs about 10x the time."""
    monkeypatch.setenv("DATABENTO_API_KEY", "db-test-0123456789abcdefABCDEF")
    redaction.remember("postgresql://hdi:Known-Secret-77@h/db")

    def best(n: int) -> float:
        text, times = SHAPES[shape](n), []
        for _ in range(3):
            t0 = time.perf_counter()
            redact(text)
            times.append(time.perf_counter() - t0)
        return min(times)

    small, big = best(100_000), best(1_000_000)
    assert big < 2.0, f"{shape}: {big:.2f}s for 1M characters"
    assert big < 30 * max(small, 0.01), f"{shape}: 100k {small:.4f}s, 1M {big:.4f}s"  # quadratic: 100x


def test_a_huge_symbols_list_is_quick_on_the_command_line(tmp_path):
    """The report's case: ``hdi ingest --symbols`` with 100,000 characters (the command line is
    redacted for the ledger) no longer spends a minute in redaction."""
    syms = ",".join(f"S{i:06d}" for i in range(14_000))
    assert len(syms) > 100_000
    t0 = time.perf_counter()
    redact(f"hdi ingest --recipe r.yaml --symbols {syms}")
    assert time.perf_counter() - t0 < 0.5


# ------------------------------------------------------------------------------ tracebacks
def test_an_uncaught_traceback_is_printed_redacted():
    code = ("from hdi._redaction import install_excepthook; install_excepthook()\n"
            "raise RuntimeError('cannot reach postgresql://hdi:pa ss@word@h/db with db-AbCdEfGhIjKlMnOpQrStUvWxYz123')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 1 and "Traceback" in run.stderr and "RuntimeError" in run.stderr
    assert "pa ss" not in run.stderr and "word@" not in run.stderr and "AbCdEf" not in run.stderr
    assert "postgresql://hdi:***@h/db" in run.stderr


def test_a_cli_crash_prints_its_traceback_redacted(monkeypatch, capsys):
    """An uncaught error inside a command (a bug) still shows its traceback, with no secret in it."""
    from hdi.cli import app

    def crash(*args, **kwargs):
        raise RuntimeError("boom at postgresql://hdi:pa ss@word@h/db")

    monkeypatch.setattr(sys, "argv", ["hdi", "status", "--store", "postgresql://hdi:pa ss@word@h/db"])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    import importlib

    monkeypatch.setattr(importlib.import_module("hdi._status_report"), "status", crash)
    with pytest.raises(SystemExit) as info:
        app.main()
    err = capsys.readouterr().err
    assert info.value.code == 1 and "Traceback" in err and "RuntimeError: boom at postgresql://hdi:***@h/db" in err
    assert "pa ss" not in err and "word@" not in err
