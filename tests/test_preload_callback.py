"""lookout.stack.preload (plugins/callback/preload.py): before the first task, the main process has loaded
ansible.builtin's filters and tests and the listed collections' filter files, so that the workers forked per
task and host inherit them; a collection that is not installed is passed over; every configuration that runs
lookout's playbooks enables it; and a run with it does and prints what a run without it does."""

import configparser
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "shared"))

from controller_helpers import ansible_playbook, local_host  # noqa: E402

# Runs in a fresh interpreter (a test process may have loaded plugins already): the callback as Ansible
# builds it, its playbook-start hook, then what the process has loaded. The callback must load what the
# probe lists; the same probe without the hook is the control.
_PROBE = textwrap.dedent(
    """
    import json, sys
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    init_plugin_loader([sys.argv[1]])
    before = set(sys.modules)
    callback = callback_loader.get("lookout.stack.preload")
    callback.set_options(direct={"collections": json.loads(sys.argv[2])})
    if sys.argv[3] == "hook":
        callback.v2_playbook_on_start(None)
    loaded = sorted(set(sys.modules) - before)
    print(json.dumps(loaded))
    """
)


def _probe(script: str, *args: str):
    """Runs a probe in a fresh interpreter with lookout's collections and ansible.cfg; its JSON answer."""
    result = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "collections"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _loaded(collections: list[str], hook: bool = True) -> list[str]:
    return _probe(_PROBE, json.dumps(collections), "hook" if hook else "-")


def test_the_hook_loads_builtin_filters_and_tests_and_the_collections_filters():
    loaded = _loaded(["lookout.stack"])
    # ansible.builtin's plugin files load under a name with a suffix (ansible.plugins.filter.core_<hash>).
    assert [m for m in loaded if m.startswith("ansible.plugins.filter.core")]
    assert [m for m in loaded if m.startswith("ansible.plugins.test.core")]
    own = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py"))
    assert own, "lookout.stack has filter plugins"
    for stem in own:
        assert f"ansible_collections.lookout.stack.plugins.filter.{stem}" in loaded, stem


def test_without_the_hook_nothing_of_it_is_loaded():
    # The control: building the callback alone does not load them (else the test above proves nothing).
    loaded = _loaded(["lookout.stack"], hook=False)
    assert not [m for m in loaded if m.startswith("ansible.plugins.filter.core")]
    assert not [m for m in loaded if m.startswith("ansible_collections.lookout.stack.plugins.filter.")]


def test_a_collection_that_is_not_installed_is_passed_over():
    loaded = _loaded(["no_such.collection", "lookout.stack"])
    assert "ansible_collections.lookout.stack.plugins.filter.loopback" in loaded


def test_every_configuration_that_runs_lookout_enables_it():
    config = configparser.ConfigParser()
    config.read(ROOT / "ansible.cfg")
    names = [n.strip() for n in config["defaults"]["callbacks_enabled"].split(",")]
    assert "lookout.stack.preload" in names
    base = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())
    molecule = base["provisioner"]["config_options"]["defaults"]["callbacks_enabled"]
    assert "lookout.stack.preload" in [n.strip() for n in molecule.split(",")]
    # A scenario that sets its own list replaces the base one: it must keep the plugin too.
    for scenario in sorted((ROOT / "molecule").glob("*/molecule.yml")):
        own = (
            ((yaml.safe_load(scenario.read_text()) or {}).get("provisioner") or {})
            .get("config_options", {})
            .get("defaults", {})
            .get("callbacks_enabled")
        )
        if own is not None:
            assert "lookout.stack.preload" in [n.strip() for n in own.split(",")], scenario


def test_a_run_with_it_does_and_prints_what_a_run_without_it_does(tmp_path: Path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "all",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "A builtin filter",
                            "ansible.builtin.debug": {"msg": "{{ '41' | int + 1 }}"},
                        },
                        {
                            "name": "lookout's own filter",
                            "ansible.builtin.debug": {
                                "msg": "{{ '0.0.0.0' | lookout.stack.loopback_address }}"
                            },
                        },
                        {"name": "A test", "ansible.builtin.debug": {"msg": "{{ 'abc' is match('a') }}"}},
                    ],
                }
            ]
        )
    )
    inventory = {"all": {"hosts": {"h1": local_host(), "h2": local_host()}}}
    outputs = []
    for callbacks in ("ansible.posix.json,lookout.stack.preload", "ansible.posix.json"):
        run = ansible_playbook(
            playbook,
            inventory,
            tmp_path,
            json_output=True,
            extra_env={"ANSIBLE_CALLBACKS_ENABLED": callbacks},
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "lookout.stack.preload" not in run.stderr and "WARNING" not in run.stderr, run.stderr
        report = json.loads(run.stdout)
        outputs.append(
            [
                {h: r["msg"] for h, r in task["hosts"].items()}
                for play in report["plays"]
                for task in play["tasks"]
            ]
        )
    expected = [{"h1": 42, "h2": 42}, {"h1": "127.0.0.1", "h2": "127.0.0.1"}, {"h1": True, "h2": True}]
    assert outputs[0] == outputs[1] == expected


# Runs in a fresh interpreter: the hook with the given options, then two worker-like children forked one after
# the other, each rendering the same templates and evaluating the same conditions twice. Prints, per child and
# pass, what it rendered, how many sources Jinja parsed and how many it generated code for (a source loaded
# from the shared compiled code is neither), and how many compiled codes it loaded from the shared files; and
# the files kept.
_COMPILE_PROBE = textwrap.dedent(
    """
    import json, marshal, os, sys
    import jinja2.environment
    from ansible import constants as C
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    from ansible.template import Templar, trust_as_template
    from ansible._internal._templating import _jinja_bits
    init_plugin_loader([sys.argv[1]])
    callback = callback_loader.get("lookout.stack.preload")
    callback.set_options(direct=json.loads(sys.argv[2]))
    if sys.argv[3] == "hook":
        callback.v2_playbook_on_start(None)
    counts = {"parsed": 0, "generated": 0, "loaded": 0}
    def counting(owner, name, count):
        original = getattr(owner, name)
        def counted(*args, **kwargs):
            counts[count] += 1
            return original(*args, **kwargs)
        setattr(owner, name, counted)
    counting(_jinja_bits.AnsibleEnvironment, "_parse", "parsed")
    counting(jinja2.environment.Environment, "_generate", "generated")
    counting(marshal, "load", "loaded")
    # One source under different settings renders differently: each must get its own compiled code.
    cases = [
        ("{{ a }}-{{ b | int + 1 }}", {}),
        ('{{ "c:\\\\new" }}', {"escape_backslashes": True}),
        ('{{ "c:\\\\new" }}', {"escape_backslashes": False}),
        ("[[ a ]] {{ a }}", {}),
        ("[[ a ]] {{ a }}", {"overrides": {"variable_start_string": "[[", "variable_end_string": "]]"}}),
        ("{% if a %}\\nyes\\n{% endif %}\\n", {}),
        ("{% if a %}\\nyes\\n{% endif %}\\n", {"overrides": {"trim_blocks": False}}),
    ]
    # Conditions (compiled from their parsed expression): each its own code, none taken for a template's.
    conditions = ["a == 1", "a == 2", "b | int > 40", "a + 1"]
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            templar = Templar(variables={"a": 1, "b": "41", "a + 1": "a template's variable"})
            passes = []
            for _ in range(2):
                rendered = [str(templar.template(trust_as_template(source), **kw)) for source, kw in cases]
                rendered += [
                    str(templar.evaluate_conditional(trust_as_template(condition)))
                    if "==" in condition or ">" in condition
                    else str(templar.evaluate_expression(trust_as_template(condition)))
                    for condition in conditions
                ]
                passes.append({"rendered": rendered, **counts})
            with os.fdopen(write, "w") as out:
                json.dump(passes, out)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as answer:
            children.append(json.load(answer))
        os.waitpid(pid, 0)
    kept = os.path.join(C.DEFAULT_LOCAL_TMP, "lookout-compiled")
    print(json.dumps({"children": children, "kept": len(os.listdir(kept)) if os.path.isdir(kept) else 0}))
    """
)


def _compiled(options: dict, hook: bool = True) -> dict:
    return _probe(_COMPILE_PROBE, json.dumps(options), "hook" if hook else "-")


def test_a_template_is_compiled_once_for_all_workers_and_renders_as_if_compiled_anew():
    control = _compiled({}, hook=False)
    cached = _compiled({})
    (first, first_again), (second, second_again) = cached["children"]
    plain = control["children"][0][0]
    # The control: without the hook both children parse and generate every source again in each pass, and
    # render what the cache renders.
    assert control["children"][1][0]["parsed"] == plain["parsed"] >= 7
    assert plain["generated"] >= 11 and control["children"][0][1]["generated"] == 2 * plain["generated"]
    assert plain["loaded"] == 0
    for rendered in (first, first_again, second, second_again):
        assert rendered["rendered"] == plain["rendered"]
    assert first["rendered"][1] != first["rendered"][2], "backslash escaping must change the compiled code"
    assert first["rendered"][3] != first["rendered"][4], "the delimiters must change the compiled code"
    assert first["rendered"][5] != first["rendered"][6], "trim_blocks must change the compiled code"
    assert first["rendered"][7:] == ["True", "False", "True", "2"]
    # The first child compiled every source (7 distinct source and setting pairs) and every condition (4);
    # the second parsed and generated none: it loaded the 11 from the files. Neither compiled nor loaded
    # anything again in its second pass (kept in memory).
    assert first["parsed"] == plain["parsed"] and first["generated"] == 11 and first["loaded"] == 0
    assert second["parsed"] == second["generated"] == 0 and second["loaded"] == 11
    assert (first_again["generated"], first_again["loaded"]) == (11, 0)
    assert (second_again["generated"], second_again["loaded"]) == (0, 11)
    assert cached["kept"] == 11


def test_with_compile_cache_off_every_worker_compiles_again():
    off = _compiled({"compile_cache": False})
    (first, first_again), (second, _) = off["children"]
    assert second["parsed"] == first["parsed"] > 0 and second["generated"] == first["generated"] > 0
    assert first_again["generated"] == 2 * first["generated"]
    assert off["kept"] == 0


# The start of a probe that runs the hook with the options given as JSON in its second argument.
_HOOKED = textwrap.dedent(
    """
    import json, sys
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    init_plugin_loader([sys.argv[1]])
    callback = callback_loader.get("lookout.stack.preload")
    callback.set_options(direct=json.loads(sys.argv[2]))
    callback.v2_playbook_on_start(None)
    """
)


# Runs in a fresh interpreter: the hook with the given options, then two renders through a templar whose
# variables nest (quad uses pair and t, pair uses t). Prints each render's result and how many times t's own
# template was rendered, and how many times the variables were wrapped for lazy templating in all.
_LAZY_PROBE = _HOOKED + textwrap.dedent(
    """
    from ansible.template import Templar, trust_as_template
    from ansible._internal._templating import _engine, _lazy_containers
    counts = {"t": 0, "wrapped": 0}
    template = _engine.TemplateEngine.template
    def counted_template(self, variable, *args, **kwargs):
        if variable == "{{ 20 + 1 }}":
            counts["t"] += 1
        return template(self, variable, *args, **kwargs)
    _engine.TemplateEngine.template = counted_template
    try_create = _lazy_containers._AnsibleLazyTemplateMixin._try_create
    def counted_create(item, *args, **kwargs):
        if type(item) is dict and "quad" in item:
            counts["wrapped"] += 1
        return try_create(item, *args, **kwargs)
    _lazy_containers._AnsibleLazyTemplateMixin._try_create = staticmethod(counted_create)
    variables = {
        "t": trust_as_template("{{ 20 + 1 }}"),
        "pair": trust_as_template("{{ [t, t] }}"),
        "quad": trust_as_template("{{ pair + pair + [t] }}"),
    }
    templar = Templar(variables=variables)
    renders = []
    for _ in range(2):
        result = templar.template(trust_as_template("{{ [quad, pair, t] }}"))
        renders.append({"result": result, **counts})
    print(json.dumps(renders))
    """
)


def test_within_one_render_each_variable_is_wrapped_and_rendered_once():
    once = _probe(_LAZY_PROBE, json.dumps({}))
    anew = _probe(_LAZY_PROBE, json.dumps({"vars_lazified_once": False}))
    expected = [[21, 21, 21, 21, 21], [21, 21], 21]
    assert [render["result"] for render in once] == [render["result"] for render in anew] == [expected] * 2
    # Without it each nested render (quad, pair in quad, pair, ...) wraps the variables again and renders t
    # again; with it, one wrapping and one rendering of t per render, and the second render starts afresh.
    assert (once[0]["t"], once[0]["wrapped"]) == (1, 1)
    assert (once[1]["t"], once[1]["wrapped"]) == (2, 2)
    assert anew[0]["t"] > 2 and anew[0]["wrapped"] > 2
    assert (anew[1]["t"], anew[1]["wrapped"]) == (2 * anew[0]["t"], 2 * anew[0]["wrapped"])


# Runs in a fresh interpreter: the hook with the given options, then the filter loader asked three times for
# each of Jinja's `default` (wrapped by Ansible at its start), a collection filter by its full name and a name
# that no plugin defines yet; then a directory whose plugin file defines that name is added and it is asked
# again. Prints what each answer was and how many times each name made the loader list a collection's plugin
# files.
_JINJA_PROBE = _HOOKED + textwrap.dedent(
    """
    import pkgutil
    from ansible.plugins.loader import filter_loader
    listed = [0]
    iter_modules = pkgutil.iter_modules
    def counted(*args, **kwargs):
        listed[0] += 1
        return iter_modules(*args, **kwargs)
    pkgutil.iter_modules = counted
    def answer(name):
        plugin = filter_loader.get(name)
        return None if plugin is None else plugin.ansible_name
    names = ["default", "lookout.stack.files_in_place", "probe_added"]
    answers, listings = [], []
    for name in names:
        answers.append([answer(name) for _ in range(3)])
        listings.append(listed[0] - sum(listings))
    filter_loader.add_directory(sys.argv[3])
    added = answer("probe_added")
    print(json.dumps({"answers": answers, "listed": listings, "added": added}))
    """
)


def test_filter_and_test_names_are_looked_up_once_until_a_directory_is_added(tmp_path: Path):
    (tmp_path / "probe_filters.py").write_text(
        "class FilterModule:\n    def filters(self):\n        return {'probe_added': str.upper}\n"
    )
    kept = _probe(_JINJA_PROBE, json.dumps({}), str(tmp_path))
    asked = _probe(_JINJA_PROBE, json.dumps({"jinja_plugins_kept": False}), str(tmp_path))
    expected = [["ansible.builtin.default"] * 3, ["lookout.stack.files_in_place"] * 3, [None] * 3]
    assert kept["answers"] == asked["answers"] == expected
    # Each name that Ansible did not wrap at its start lists the collection's plugin files: every time without
    # it, the first time with it; a directory added afterwards is seen either way.
    assert asked["listed"] == [0, 3, 3] and kept["listed"] == [0, 1, 1]
    assert kept["added"] == asked["added"] == "probe_added"


_GC_PROBE = (
    "import gc\nbefore = gc.get_threshold()\n"
    + _HOOKED
    + 'print(json.dumps({"before": before, "after": gc.get_threshold()}))\n'
)


def test_the_collector_first_threshold_is_raised_unless_set_to_zero():
    raised = _probe(_GC_PROBE, json.dumps({}))
    chosen = _probe(_GC_PROBE, json.dumps({"gc_threshold": 5000}))
    left = _probe(_GC_PROBE, json.dumps({"gc_threshold": 0}))
    assert raised["before"] == [700, 10, 10]
    assert raised["after"] == [20000, 10, 10] and chosen["after"] == [5000, 10, 10]
    assert left["after"] == left["before"]


_FREEZE_PROBE = textwrap.dedent(
    """
    import gc, json, sys
    from ansible.executor.process.worker import WorkerProcess
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    init_plugin_loader([sys.argv[1]])
    seen = []
    WorkerProcess.start = lambda self: seen.append(gc.get_freeze_count())  # stands in for the fork
    callback = callback_loader.get("lookout.stack.preload")
    callback.set_options(direct=json.loads(sys.argv[2]))
    callback.v2_playbook_on_start(None)
    WorkerProcess.start(object())
    print(json.dumps({"at_fork": seen[0], "after": gc.get_freeze_count()}))
    """
)


def test_a_worker_is_forked_with_the_main_process_frozen_then_thawed():
    counts = {
        name: _probe(_FREEZE_PROBE, json.dumps(options))
        for name, options in (("on", {}), ("off", {"gc_freeze": False}))
    }
    assert counts["on"]["at_fork"] > 1000 and counts["on"]["after"] == 0
    assert counts["off"]["at_fork"] == 0


# Runs in a fresh interpreter: the hook with the given options, then a worker built (never started) for each
# case: the connection named by the host's variables, by the task, templated, unknown. Prints whether
# community.docker's connection plugin was imported and its configuration known, in this (the main) process.
_WARM_PROBE = textwrap.dedent(
    """
    import json, sys, types
    from ansible import constants as C
    from ansible.executor.process.worker import WorkerProcess
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    init_plugin_loader([sys.argv[1]])
    callback = callback_loader.get("lookout.stack.preload")
    options, connections = json.loads(sys.argv[2])
    callback.set_options(direct=options)
    callback.v2_playbook_on_start(None)
    plugin = "ansible_collections.community.docker.plugins.connection.docker"
    before = plugin in sys.modules
    for by_host, by_task in connections:
        WorkerProcess(
            final_q=None, task_vars={} if by_host is None else {"ansible_connection": by_host}, host=None,
            task=types.SimpleNamespace(connection=by_task), play_context=None,
            loader=types.SimpleNamespace(_tempfiles=set()), variable_manager=None, shared_loader_obj=None,
            worker_id=0, cliargs=None,
        )
    print(json.dumps({
        "before": before,
        "imported": plugin in sys.modules,
        "configured": C.config.has_configuration_definition("connection", plugin),
    }))
    """
)


def _warmed(options: dict, connections: list) -> dict:
    return _probe(_WARM_PROBE, json.dumps([options, connections]))


def test_the_connection_plugin_of_a_worker_is_loaded_in_the_main_process_before_the_fork():
    docker = "community.docker.docker"
    # By the host's ansible_connection, or by the task's connection when the host sets none.
    for connections in ([[docker, "ssh"]], [[None, docker]]):
        warm = _warmed({}, connections)
        assert warm == {"before": False, "imported": True, "configured": True}, connections
    # The control: the option off leaves it to the worker.
    assert _warmed({"warm_connections": False}, [[docker, "ssh"]])["imported"] is False
    # A templated name is left to the worker; an unknown one too (the worker reports it), without an error.
    left = _warmed({}, [["{{ connection_name }}", "ssh"], ["no_such.collection.plugin", "ssh"], [None, None]])
    assert left == {"before": False, "imported": False, "configured": False}


# Runs in a fresh interpreter: the hook with the given options, then ansible.builtin.host_group_vars asked, as
# the variable manager asks it, for the variables of groups and a host of a directory (argv 3), some of them
# twice. Prints the answers and how many times the plugin read its files' contents.
_GROUP_VARS_PROBE = textwrap.dedent(
    """
    import json, sys
    from ansible.inventory.group import Group
    from ansible.inventory.host import Host
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import callback_loader, init_plugin_loader, vars_loader
    from ansible.vars import plugins
    init_plugin_loader([sys.argv[1]])
    callback = callback_loader.get("lookout.stack.preload")
    callback.set_options(direct=json.loads(sys.argv[2]))
    callback.v2_playbook_on_start(None)
    plugins._prime_vars_loader()
    plugin = type(vars_loader.get("host_group_vars"))
    reads = []
    read = plugin.load_found_files
    def counting_read(self, loader, data, found):
        reads.append(len(found))
        return read(self, loader, data, found)
    plugin.load_found_files = counting_read
    loader = DataLoader()
    asked = [[Group("all")], [Group("all")], [Host("h1")], [Group("web"), Group("all")], [Group("all")]]
    answers = [plugins.get_vars_from_path(loader, sys.argv[3], entities, "task") for entities in asked]
    print(json.dumps({"answers": answers, "reads": len(reads)}))
    """
)


def test_group_vars_are_read_once_per_host_or_groups_with_the_same_answers(tmp_path: Path):
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("a: 1\nwired: '{{ a }}'\n")
    (tmp_path / "group_vars" / "web.yml").write_text("a: 2\nc: 3\n")
    (tmp_path / "host_vars" / "h1.yml").write_text("d: 4\n")
    kept = _probe(_GROUP_VARS_PROBE, json.dumps({}), str(tmp_path))
    asked = _probe(_GROUP_VARS_PROBE, json.dumps({"group_vars_once": False}), str(tmp_path))
    assert kept["answers"] == asked["answers"]
    all_vars = {"a": 1, "wired": "{{ a }}"}
    assert asked["answers"] == [all_vars, all_vars, {"d": 4}, {"a": 1, "c": 3, "wired": "{{ a }}"}, all_vars]
    # Without it every question reads again (one read per entity); with it, the same entities once.
    assert asked["reads"] == 6
    assert kept["reads"] == 4


# Loaded by the ansible-playbook process (PYTHONPATH) of the test below: counts the worker processes it forks
# and writes the count to LOOKOUT_TEST_FORKS at exit. The playbook runs no module, so no other Python process
# of the run imports it.
_FORK_COUNTER = textwrap.dedent(
    """
    import atexit, os
    from ansible.executor.process.worker import WorkerProcess
    _forks = [0]
    _start = WorkerProcess.start
    def start(self):
        _forks[0] += 1
        return _start(self)
    WorkerProcess.start = start
    atexit.register(lambda: open(os.environ["LOOKOUT_TEST_FORKS"], "w").write(str(_forks[0])))
    """
)


def _debug(name: str, msg: str, when, **keywords) -> dict:
    """A debug task of the play below."""
    return {"name": name, "ansible.builtin.debug": {"msg": msg}, "when": when, **keywords}


# h1 has flag true, h2 false. Tasks named "Worker: ..." must go to a worker whatever their condition (a loop,
# a delegation, a condition that fails); every other skip is decided in the main process with the option on.
_CONDITIONS_PLAY = [
    {
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            _debug("Per host", "ran", "flag", register="r_host"),
            {"name": "Never", "ansible.builtin.set_fact": {"x": 1}, "when": False, "register": "r_never"},
            {
                "name": "A block's condition",
                "when": "not flag",
                "block": [_debug("Inherits it", "{{ inventory_hostname }}", True, register="r_block")],
            },
            _debug("Hidden", "secret", "flag and false", no_log=True, register="r_hidden"),
            _debug("Worker: a loop", "{{ item }}", "item > 1", loop=[1, 2], register="r_loop"),
            _debug("Worker: delegated", "delegated", False, delegate_to="localhost", register="r_delegated"),
            _debug(
                "Worker: an undefined name",
                "never",
                "no_such_variable",
                ignore_errors=True,
                register="r_undefined",
            ),
            {"name": "An include", "ansible.builtin.include_tasks": "included.yml", "when": "flag"},
            # Includes whose arguments differ per host, post-validated with their parents in the main process.
            {
                "name": "A block",
                "vars": {"chosen": "{{ pick }}"},
                "block": [
                    {
                        "name": "A role's entry per host",
                        "ansible.builtin.include_role": {"name": "r{{ chosen }}"},
                        "vars": {"said": "{{ inventory_hostname }}"},
                    },
                    {
                        "name": "A file per host",
                        "ansible.builtin.include_tasks": "{{ pick }}.yml",
                        "no_log": True,
                    },
                ],
            },
            # Templated per host by each task's post-validation, which validates the task's parents too.
            {
                "name": "A block's no_log per host",
                "no_log": "{{ pick == 'a' }}",
                "block": [
                    {"name": "An include under it", "ansible.builtin.include_tasks": "quiet.yml"},
                    _debug("After it", "shown", True),
                ],
            },
            {
                "name": "Worker: looped include",
                "ansible.builtin.include_role": {"name": "r{{ item }}"},
                "loop": ["c"],
                "vars": {"said": "loop"},
            },
            _debug("A registered value", "x", "r_host is skipped"),
            _debug("Check mode", "x", "ansible_check_mode"),
            _debug("Once", "x", False, run_once=True),
            {
                "name": "What was registered",
                "ansible.builtin.debug": {
                    "msg": "{{ [r_host, r_never, r_block, r_hidden, r_loop, r_delegated, r_undefined] }}"
                },
            },
        ],
    }
]


# The option sets of the test below: both shortcuts, skips only, neither.
# (actions_on_controller, tested below, off: the looped include stays a worker's.)
_SHORTCUTS = {
    "both": {
        "LOOKOUT_PRELOAD_SKIP_ON_CONTROLLER": "true",
        "LOOKOUT_PRELOAD_INCLUDES_ON_CONTROLLER": "true",
        "LOOKOUT_PRELOAD_ACTIONS_ON_CONTROLLER": "false",
    },
    "skips": {
        "LOOKOUT_PRELOAD_SKIP_ON_CONTROLLER": "true",
        "LOOKOUT_PRELOAD_INCLUDES_ON_CONTROLLER": "false",
        "LOOKOUT_PRELOAD_ACTIONS_ON_CONTROLLER": "false",
    },
    "neither": {"LOOKOUT_PRELOAD_SKIP_ON_CONTROLLER": "false"},
}


def _write_conditions_play(directory: Path) -> None:
    (directory / "play.yml").write_text(yaml.safe_dump(_CONDITIONS_PLAY))
    (directory / "included.yml").write_text(yaml.safe_dump([_debug("Included", "in", "flag")]))
    (directory / "quiet.yml").write_text(yaml.safe_dump([_debug("Quiet", "q", True)]))
    for pick in ("a", "b", "c"):
        (directory / f"{pick}.yml").write_text(yaml.safe_dump([_debug(f"File {pick}", "{{ pick }}", True)]))
        entries = directory / "roles" / f"r{pick}" / "tasks"
        entries.mkdir(parents=True)
        (entries / "main.yml").write_text(yaml.safe_dump([_debug("Entry", "{{ said }}", True)]))
    (directory / "sitecustomize.py").write_text(_FORK_COUNTER)


def _runs(directory: Path, inventory: dict, option_sets: dict) -> tuple[dict, dict]:
    """play.yml of `directory` once per option set (name -> environment): each run's JSON report, without
    times and uuids and with its tasks in a stable order, and the workers it forked, by name."""
    reports, forks = {}, {}
    for name, options in option_sets.items():
        run = ansible_playbook(
            directory / "play.yml",
            inventory,
            directory,
            json_output=True,
            extra_env={
                **options,
                "PYTHONPATH": str(directory),
                "LOOKOUT_TEST_FORKS": str(directory / f"forks-{name}"),
            },
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "WARNING" not in run.stderr, run.stderr
        report = json.loads(run.stdout)
        for play in report["plays"]:
            for part in [play["play"], *(task["task"] for task in play["tasks"])]:
                part.pop("duration", None), part.pop("id")  # times, and uuids new in each run
            # The included files of one include task come in the order the hosts' results arrived, which
            # workers do not keep: the tasks by name, then by the hosts that ran them (a file included per
            # host, as quiet.yml under the per-host no_log, is one task of that name for each host).
            play["tasks"].sort(key=lambda task: (task["task"]["name"], sorted(task["hosts"])))
        reports[name] = report
        forks[name] = int((directory / f"forks-{name}").read_text())
    return reports, forks


def test_conditions_and_includes_are_decided_without_a_worker_as_the_worker_decides_them(tmp_path: Path):
    _write_conditions_play(tmp_path)
    inventory = {
        "all": {"hosts": {"h1": local_host(flag=True, pick="a"), "h2": local_host(flag=False, pick="b")}}
    }
    reports, forks = _runs(tmp_path, inventory, _SHORTCUTS)
    # The same results, callbacks and registered values, the failing condition's error included.
    assert reports["both"] == reports["skips"] == reports["neither"]
    results = {
        task["task"]["name"]: task["hosts"] for play in reports["both"]["plays"] for task in play["tasks"]
    }
    assert (
        results["Per host"]["h2"]["false_condition"] == "flag" and "skipped" not in results["Per host"]["h1"]
    )
    assert results["Inherits it"]["h1"]["false_condition"] == "not flag"
    assert "false_condition" not in results["Hidden"]["h1"], "no_log hides the skipped result too"
    assert results["Worker: an undefined name"]["h1"]["failed"]
    assert results["An include"]["h2"]["skipped"] and list(results["Included"]) == ["h1"]
    registered = results["What was registered"]["h1"]["msg"]
    assert registered[1]["skipped"] and registered[1]["false_condition"] is False
    # Each host included what its own variables name, with its own variables.
    said = {
        name: {host: outcome["msg"] for host, outcome in results[f"r{name} : Entry"].items()}
        for name in "abc"
    }
    assert said == {"a": {"h1": "h1"}, "b": {"h2": "h2"}, "c": {"h1": "loop", "h2": "loop"}}
    assert {name: list(results[f"File {name}"]) for name in "ab"} == {"a": ["h1"], "b": ["h2"]}
    assert {host: outcome.get("msg") for host, outcome in results["After it"].items()} == {
        "h1": None,
        "h2": "shown",
    }
    # Each skip outside the "Worker:" tasks is one worker less, and each include there that was not skipped
    # (a no_log include's result is censored in the report: the includes are counted by task).
    outside = [
        outcome
        for name, hosts in results.items()
        if not name.startswith("Worker:")
        for outcome in hosts.values()
    ]
    skips = sum(1 for outcome in outside if outcome.get("skipped"))
    includes = sum(
        1
        for name in ("An include", "A role's entry per host", "A file per host", "An include under it")
        for outcome in results[name].values()
        if not outcome.get("skipped")
    )
    assert (skips, includes) == (11, 7)
    assert forks["neither"] - forks["skips"] == skips, forks
    assert forks["skips"] - forks["both"] == includes, forks


# h1 has flag true and port_value 80, h2 flag false and port_value "x". Tasks named "Worker: ..." must go to a
# worker (a delegation, retries); the others run in the main process with actions_on_controller on.
_ACTIONS_PLAY = [
    {
        "hosts": "all",
        "gather_facts": False,
        "handlers": [{"name": "Handler", "ansible.builtin.debug": {"msg": "{{ inventory_hostname }}"}}],
        "tasks": [
            {
                "name": "A fact per host",
                "ansible.builtin.set_fact": {
                    "mine": "{{ inventory_hostname }}-{{ pick }}",
                    "n": "{{ 2 + 3 }}",
                },
                "register": "r_fact",
            },
            {
                "name": "Facts in a loop",
                "ansible.builtin.set_fact": {"acc": "{{ (acc | default([])) + [item] }}"},
                "loop": [1, 2, 3],
                "register": "r_loop",
            },
            {
                "name": "Changed by its condition",
                "ansible.builtin.set_fact": {"c": 1},
                "changed_when": "flag",
                "notify": "Handler",
            },
            {
                "name": "An assert per host",
                "ansible.builtin.assert": {"that": ["flag"], "fail_msg": "not for {{ inventory_hostname }}"},
                "ignore_errors": True,
                "register": "r_assert",
            },
            {
                "name": "A fail per host",
                "ansible.builtin.fail": {"msg": "failed on {{ inventory_hostname }}"},
                "when": "not flag",
                "ignore_errors": True,
                "register": "r_fail",
            },
            {
                "name": "Arguments by their specification",
                "ansible.builtin.validate_argument_spec": {
                    "argument_spec": {"port": {"type": "int", "required": True}},
                    "provided_arguments": {"port": "{{ port_value }}"},
                },
                "ignore_errors": True,
                "register": "r_spec",
            },
            {
                "name": "An undefined name",
                "ansible.builtin.set_fact": {"u": "{{ no_such_variable }}"},
                "ignore_errors": True,
                "register": "r_undefined",
            },
            {
                "name": "A hidden fact",
                "ansible.builtin.set_fact": {"secret": "s3cret"},
                "no_log": True,
                "register": "r_hidden",
            },
            {
                "name": "A looped include",
                "ansible.builtin.include_tasks": "{{ item }}.yml",
                "loop": ["a", "b"],
            },
            {
                "name": "Worker: delegated",
                "ansible.builtin.set_fact": {"d": 1},
                "delegate_to": "localhost",
            },
            {
                "name": "Worker: retried",
                "ansible.builtin.set_fact": {"t": 1},
                "until": True,
                "retries": 1,
                "delay": 0,
            },
            {
                "name": "What was set",
                "ansible.builtin.debug": {
                    "msg": "{{ [mine, n, acc, c, secret, d, t, r_fact, r_loop, r_assert, r_fail, r_spec,"
                    " r_undefined, r_hidden] }}"
                },
            },
        ],
    }
]


def test_actions_that_never_use_the_host_run_in_the_main_process_as_in_a_worker(tmp_path: Path):
    """set_fact, assert, fail, validate_argument_spec and a looped include give, with actions_on_controller,
    the results, callbacks, registered values, facts, handlers and errors a worker gives, without one."""
    (tmp_path / "play.yml").write_text(yaml.safe_dump(_ACTIONS_PLAY))
    for pick in ("a", "b"):
        (tmp_path / f"{pick}.yml").write_text(yaml.safe_dump([_debug(f"File {pick}", "{{ mine }}", True)]))
    (tmp_path / "sitecustomize.py").write_text(_FORK_COUNTER)
    inventory = {
        "all": {
            "hosts": {
                "h1": local_host(flag=True, pick="a", port_value=80),
                "h2": local_host(flag=False, pick="b", port_value="x"),
            }
        }
    }
    reports, forks = _runs(
        tmp_path,
        inventory,
        {option: {"LOOKOUT_PRELOAD_ACTIONS_ON_CONTROLLER": option} for option in ("true", "false")},
    )
    assert reports["true"] == reports["false"]
    results = {
        task["task"]["name"]: task["hosts"] for play in reports["true"]["plays"] for task in play["tasks"]
    }
    assert results["Handler"] == {"h1": results["Handler"]["h1"]} and results["Handler"]["h1"]["msg"] == "h1"
    assert [results[f"File {pick}"]["h1"]["msg"] for pick in "ab"] == ["h1-a", "h1-a"]
    assert results["File b"]["h2"]["msg"] == "h2-b"
    assert results["An assert per host"]["h2"]["msg"] == "not for h2"
    assert not results["An assert per host"]["h1"].get("failed")
    assert results["A fail per host"]["h1"]["skipped"] and results["A fail per host"]["h2"]["failed"]
    assert results["Arguments by their specification"]["h2"]["failed"]
    assert not results["Arguments by their specification"]["h1"].get("failed")
    assert results["An undefined name"]["h1"]["failed"] and "no_such_variable" in str(
        results["An undefined name"]
    )
    assert "s3cret" not in json.dumps(results["A hidden fact"])
    shown = {host: outcome["msg"] for host, outcome in results["What was set"].items()}
    assert shown["h1"][:7] == ["h1-a", 5, [1, 2, 3], 1, "s3cret", 1, 1] and shown["h2"][0] == "h2-b"
    assert shown["h1"][8]["results"][2]["ansible_facts"] == {"acc": [1, 2, 3]}
    # In the main process: eight tasks on each host (but the fail, skipped on h1 as before) and the looped
    # include, 17 workers fewer; the delegated and retried facts, the debug tasks and the handler keep theirs.
    assert forks["false"] - forks["true"] == 17, forks
