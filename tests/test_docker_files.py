"""The Docker image and compose file (issue 18), read as files (no Docker engine runs here): the app
runs as a non-root user, /data exists and belongs to it before ``USER`` switches (so a fresh named
volume there is writable), compose mounts that volume at HDI_DATA_DIR, every published port is bound
to localhost, and README's Docker section names the same places."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _users(steps: list[tuple[str, str]]) -> list[tuple[int, str]]:
    return [(i, args.split(":")[0]) for i, (word, args) in enumerate(steps) if word == "USER"]


def test_the_image_runs_as_a_non_root_user_it_creates():
    steps = _instructions()
    users = _users(steps)
    assert users, "no USER instruction: the app would run as root"
    last = users[-1][1]
    assert last not in ("root", "0")
    created = [args for word, args in steps[:users[-1][0]] if word == "RUN" and "useradd" in args]
    assert any(shlex.split(cmd.split("useradd", 1)[1].split("&&")[0])[-1] == last for cmd in created)


def test_the_data_folder_is_created_owned_by_that_user_before_user_switches():
    steps = _instructions()
    user_at, user = _users(steps)[-1]
    env = " ".join(args for word, args in steps if word == "ENV")
    data = re.search(r"\bHDI_DATA_DIR=(\S+)", env)
    assert data, "the image sets no HDI_DATA_DIR"
    folder = data.group(1)
    runs = [(i, args) for i, (word, args) in enumerate(steps) if word == "RUN"]
    made = [i for i, cmd in runs if re.search(rf"\bmkdir\b[^&;]*\s{re.escape(folder)}(\s|$)", cmd)]
    owned = [i for i, cmd in runs if re.search(rf"\bchown\s+(-\S+\s+)*{user}(:{user})?\s+([^&;]*\s)?"
                                               rf"{re.escape(folder)}(\s|$)", cmd)]
    assert made and min(made) < user_at, f"{folder} is not created before USER {user}"
    assert owned and min(owned) < user_at, f"{folder} is not chowned to {user} before USER {user}"
    assert min(made) <= min(owned)


def test_compose_mounts_a_named_volume_at_the_images_data_folder():
    compose = _compose()
    app = compose["services"]["hdi"]
    folder = app["environment"]["HDI_DATA_DIR"]
    env = " ".join(args for word, args in _instructions() if word == "ENV")
    assert f"HDI_DATA_DIR={folder}" in env  # the folder the image prepared
    mounts = [str(v).split(":") for v in app["volumes"]]
    named = [m for m in mounts if len(m) >= 2 and m[1] == folder]
    assert named and named[0][0] in compose["volumes"], "the data folder is not a named volume"
    assert app.get("user") in (None, "hdi", "1000")  # compose does not switch back to root


def test_every_published_port_is_bound_to_localhost():
    published = [(name, str(p)) for name, svc in _compose()["services"].items() for p in svc.get("ports", [])]
    assert published, "the database port is published"
    for name, port in published:
        assert port.startswith(("127.0.0.1:", "[::1]:")), f"{name} publishes {port} on every interface"


def test_readme_docker_section_names_the_same_places():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Docker", 1)[1].split("\n## ", 1)[0]
    app = _compose()["services"]["hdi"]
    folder = app["environment"]["HDI_DATA_DIR"]
    for place in (folder, f"{folder}/raw", f"{folder}/quarantine", f"{folder}/logs"):
        assert f"`{place}`" in section, place
    volume = next(str(v).split(":")[0] for v in app["volumes"] if str(v).split(":")[1] == folder)
    assert f"`{volume}`" in section
    user = _users(_instructions())[-1][1]
    assert f"`{user}`" in section and "127.0.0.1" in section
