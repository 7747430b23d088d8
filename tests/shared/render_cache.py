"""Renders that several test modules need with the same inputs, done once per test run, whichever xdist
worker needs them first.

Each piece of work has a directory below the run's base temporary directory (the one pytest-xdist's workers
share: theirs are its popen-gw* children), named after the work's inputs, and a lock file beside it. A
worker that takes the lock does the work there and marks the directory done before it lets go; a worker
that finds the lock taken waits for it and reads the directory. Work that failed leaves no mark: the next
worker to need it does it again, and fails with its own message. The work a worker claims runs side by
side, as the modules ran their renders before."""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from controller_helpers import ROOT, tool

sys.path.insert(0, str(ROOT / "tests" / "inventories"))
from inventory_helpers import make_test_inventory

DONE = ".done"


def run_directory(tmp_path_factory) -> Path:
    """Where this run's shared work lives: below the directory every xdist worker's base lies in."""
    base = tmp_path_factory.getbasetemp()
    directory = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "render-cache"
    directory.mkdir(exist_ok=True)
    return directory


def _digest(inputs) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _work(directory: Path, start: Callable[[Path], Callable[[], None]]) -> Callable[[], None]:
    """Starts the work in a fresh directory; the returned function waits for it and marks it done."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir()
    finish = start(directory)

    def done() -> None:
        finish()
        (directory / DONE).touch()

    return done


def once_per_run(
    tmp_path_factory, kind: str, cases: dict[str, object], start: Callable[[str, Path], Callable[[], None]]
) -> dict[str, Path]:
    """Per case (name -> its inputs, as JSON), the directory its work was done in during this run.

    start(name, directory) begins a case's work in that (empty) directory and returns a function that waits
    for it to end and raises if it failed. The cases no other worker holds start together; then this
    worker waits for the others' (doing again any that failed there)."""
    root = run_directory(tmp_path_factory)
    directories = {name: root / f"{kind}-{name}-{_digest(inputs)}" for name, inputs in cases.items()}
    locks = {name: (root / f"{directory.name}.lock").open("w") for name, directory in directories.items()}
    try:
        mine, theirs = [], []
        for name, lock in locks.items():
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                mine.append(name)
            except BlockingIOError:
                theirs.append(name)
        pending = [
            _work(directories[name], lambda d, name=name: start(name, d))
            for name in mine
            if not (directories[name] / DONE).exists()
        ]
        failure = None
        for finish in pending:
            try:
                finish()
            except BaseException as error:  # every started render is waited for before the first failure
                failure = failure or error
        if failure:
            raise failure
        for name in mine:
            fcntl.flock(locks[name], fcntl.LOCK_UN)
        for name in theirs:
            fcntl.flock(locks[name], fcntl.LOCK_EX)
            if not (directories[name] / DONE).exists():
                _work(directories[name], lambda d, name=name: start(name, d))()
            fcntl.flock(locks[name], fcntl.LOCK_UN)
    finally:
        for lock in locks.values():
            lock.close()
    return directories


def ansible_env() -> dict:
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.timer",
    )


def render_command(
    env: str, inventory: Path, password_file: Path | None, out: Path, *extra: str
) -> list[str]:
    """playbooks/render.yml for an inventory into out/<host>/<service>/."""
    command = [tool("ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / "render.yml")]
    command += [*extra, "-e", f"lookout_render_dir={out}"]
    if password_file:
        command += ["--vault-id", f"{env}@{password_file}"]
    return command


@dataclass(frozen=True)
class InventoryRender:
    """What to render: an environment's inventory (with a generated test vault), some of its groups replaced
    ((group, its hosts or None to drop it), ...), and the services (render.yml's tags; None: all)."""

    env: str
    groups: tuple[tuple[str, dict | None], ...] = ()
    tags: str | None = None


@dataclass(frozen=True)
class RenderedInventory:
    directory: Path

    @property
    def inventory(self) -> Path:
        return next((self.directory / "inventories").iterdir())

    @property
    def password_file(self) -> Path | None:
        found = list((self.directory / "inventories").glob("*.vault-password"))
        return found[0] if found else None

    @property
    def hosts(self) -> dict:
        """The inventory's hosts.yml."""
        return yaml.safe_load((self.inventory / "hosts.yml").read_text())

    @property
    def out(self) -> Path:
        """<host>/<service>/ of every monitoring host."""
        return self.directory / "out"

    @property
    def output(self) -> str:
        """What ansible-playbook printed."""
        return (self.directory / "render.log").read_text()


def _start_render(case: InventoryRender, directory: Path) -> Callable[[], None]:
    inventory, password_file = make_test_inventory(case.env, directory / "inventories")
    if case.groups:
        hosts_file = inventory / "hosts.yml"
        hosts = yaml.safe_load(hosts_file.read_text())
        for group, members in case.groups:
            hosts["all"]["children"].pop(group, None)
            if members:
                hosts["all"]["children"][group] = {"hosts": members}
        hosts_file.write_text(yaml.safe_dump(hosts))
    tags = ("--tags", case.tags) if case.tags else ()
    log = (directory / "render.log").open("w")
    process = subprocess.Popen(
        render_command(case.env, inventory, password_file, directory / "out", *tags),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=ansible_env(),
    )

    def finish() -> None:
        try:
            process.wait(timeout=300)
        finally:
            log.close()
        assert process.returncode == 0, (directory / "render.log").read_text()

    return finish


def render_inventories(tmp_path_factory, cases: dict[str, InventoryRender]) -> dict[str, RenderedInventory]:
    """Each case rendered by playbooks/render.yml, once per test run for the same inputs."""
    directories = once_per_run(
        tmp_path_factory,
        "inventory",
        {name: asdict(case) for name, case in cases.items()},
        lambda name, directory: _start_render(cases[name], directory),
    )
    return {name: RenderedInventory(directory) for name, directory in directories.items()}
