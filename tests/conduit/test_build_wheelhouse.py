"""The controller-side wheelhouse builder: target tags, the archive's shape, and the cache (a re-run or a
second target of the same version does no work it already did). pip is replaced by a recorder."""

import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "conduit" / "files" / "build_wheelhouse.py"

FAKE_PIP = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_PIP_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
def after(flag):
    return args[args.index(flag) + 1]
if args[0] == "wheel":
    out = Path(after("--wheel-dir")); out.mkdir(parents=True, exist_ok=True)
    (out / f"conduit-{os.environ['CONDUIT_BUILD_VERSION']}-py3-none-any.whl").write_text("app")
elif args[0] == "download":
    dest = Path(after("--dest")); dest.mkdir(parents=True, exist_ok=True)
    if "pip" in args:
        (dest / "pip-26.0-py3-none-any.whl").write_text("pip")
    else:
        abi = after("--abi")
        (dest / f"markupsafe-3.0-{abi}-{abi}-manylinux_2_17_x86_64.whl").write_text("dep")
        (dest / Path(args[-1]).name).write_text("app")
"""


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_wheelhouse", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    monkeypatch.setenv("FAKE_PIP_LOG", str(log))

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return f"{sys.executable} {script}", calls


@pytest.fixture
def source(tmp_path):
    tree = tmp_path / "app"
    (tree / "conduit").mkdir(parents=True)
    (tree / "pyproject.toml").write_text("[project]\nname = 'conduit'\n")
    return tree


def _args(source, cache, pip, *, python="3.13", glibc="2.41", version="1.2.0"):
    return [
        "--source", str(source), "--version", version, "--python", python, "--machine", "x86_64",
        "--glibc", glibc, "--cache", str(cache), "--pip", pip,
    ]  # fmt: skip


def test_platform_tags_cover_every_glibc_from_2_17(builder):
    tags = builder.platform_tags("x86_64", "2.36")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags
    assert tags[-1] == "manylinux2014_x86_64"
    assert len(tags) == 36 - 17 + 1 + 1


def test_platform_tags_refuse_an_old_or_foreign_libc(builder):
    with pytest.raises(SystemExit):
        builder.platform_tags("x86_64", "2.12")
    with pytest.raises(SystemExit):
        builder.platform_tags("x86_64", "")


def test_target_name(builder):
    assert builder.target_name("3.11", "x86_64", "2.36") == "cp311-x86_64-glibc2.36"


def test_first_build_makes_the_archive(builder, fake_pip, source, tmp_path):
    pip, calls = fake_pip
    cache = tmp_path / "cache"
    archive = builder.build(builder.parse_args(_args(source, cache, pip)))
    assert archive == cache / "1.2.0" / "cp313-x86_64-glibc2.41.tar"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "tools/pip.whl" in names
    assert "wheels/conduit-1.2.0-py3-none-any.whl" in names
    assert "wheels/markupsafe-3.0-cp313-cp313-manylinux_2_17_x86_64.whl" in names
    kinds = [call[0] for call in calls()]
    assert kinds == ["wheel", "download", "download"]
    deps = calls()[1]
    assert deps[deps.index("--python-version") + 1] == "3.13"
    assert "--only-binary=:all:" in deps
    assert deps[deps.index("--platform") + 1] == "manylinux_2_41_x86_64"
    assert not list(cache.rglob("*.partial"))


def test_a_rerun_does_no_work(builder, fake_pip, source, tmp_path):
    pip, calls = fake_pip
    cache = tmp_path / "cache"
    builder.build(builder.parse_args(_args(source, cache, pip)))
    before = len(calls())
    builder.build(builder.parse_args(_args(source, cache, pip)))
    assert len(calls()) == before


def test_a_second_target_reuses_the_app_wheel(builder, fake_pip, source, tmp_path):
    pip, calls = fake_pip
    cache = tmp_path / "cache"
    builder.build(builder.parse_args(_args(source, cache, pip)))
    builder.build(builder.parse_args(_args(source, cache, pip, python="3.11", glibc="2.36")))
    assert [call[0] for call in calls()] == ["wheel", "download", "download", "download", "download"]
    assert (cache / "1.2.0" / "cp311-x86_64-glibc2.36.tar").is_file()


def test_versions_are_cached_apart(builder, fake_pip, source, tmp_path):
    pip, calls = fake_pip
    cache = tmp_path / "cache"
    builder.build(builder.parse_args(_args(source, cache, pip)))
    builder.build(builder.parse_args(_args(source, cache, pip, version="1.3.0")))
    assert [call[0] for call in calls()].count("wheel") == 2
    with tarfile.open(cache / "1.3.0" / "cp313-x86_64-glibc2.41.tar") as tar:
        assert "wheels/conduit-1.3.0-py3-none-any.whl" in tar.getnames()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--python", "3"), ("--python", "2.7.1"), ("--version", "../1.0"), ("--version", "")],
)
def test_bad_arguments_are_refused(builder, source, tmp_path, flag, value):
    args = _args(source, tmp_path, "pip")
    args[args.index(flag) + 1] = value
    with pytest.raises(SystemExit):
        builder.parse_args(args)


def test_a_source_without_pyproject_is_refused(builder, tmp_path):
    with pytest.raises(SystemExit):
        builder.parse_args(_args(tmp_path, tmp_path, "pip"))


def _given_wheel(tmp_path, version="1.2.0", content="ci build"):
    wheel = tmp_path / "ci" / f"conduit-{version}-py3-none-any.whl"
    wheel.parent.mkdir(exist_ok=True)
    wheel.write_text(content)
    return wheel


def test_a_given_wheel_is_used_as_is(builder, fake_pip, source, tmp_path):
    pip, calls = fake_pip
    cache = tmp_path / "cache"
    wheel = _given_wheel(tmp_path)
    archive = builder.build(builder.parse_args([*_args(source, cache, pip), "--wheel", str(wheel)]))
    assert [call[0] for call in calls()] == ["download", "download"]
    assert calls()[0][-1] == str(cache / "1.2.0" / "app" / wheel.name)
    assert (cache / "1.2.0" / "app" / wheel.name).read_text() == "ci build"
    assert archive.is_file()


def test_a_given_wheel_needs_no_source(builder, fake_pip, tmp_path):
    pip, _ = fake_pip
    args = _args(tmp_path / "nowhere", tmp_path / "cache", pip)
    args[args.index("--source") + 1] = ""
    with pytest.raises(SystemExit):
        builder.parse_args(args)
    assert builder.parse_args([*args, "--wheel", str(_given_wheel(tmp_path))]).wheel


def test_a_given_wheel_of_another_version_is_refused(builder, fake_pip, source, tmp_path, capsys):
    pip, calls = fake_pip
    wheel = _given_wheel(tmp_path, version="1.3.0")
    with pytest.raises(SystemExit, match=r"holds version 1\.3\.0, not 1\.2\.0"):
        builder.build(builder.parse_args([*_args(source, tmp_path / "cache", pip), "--wheel", str(wheel)]))
    assert calls() == []


def test_another_build_under_a_cached_version_is_refused(builder, fake_pip, source, tmp_path):
    pip, calls = fake_pip
    cache = tmp_path / "cache"
    builder.build(builder.parse_args([*_args(source, cache, pip), "--wheel", str(_given_wheel(tmp_path))]))
    before = len(calls())
    same = [*_args(source, cache, pip), "--wheel", str(_given_wheel(tmp_path))]
    assert builder.build(builder.parse_args(same)).is_file()
    assert len(calls()) == before
    other = [*_args(source, cache, pip), "--wheel", str(_given_wheel(tmp_path, content="rebuilt"))]
    with pytest.raises(SystemExit, match="already cached from another build"):
        builder.build(builder.parse_args(other))
    assert (cache / "1.2.0" / "app" / "conduit-1.2.0-py3-none-any.whl").read_text() == "ci build"
