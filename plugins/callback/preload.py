"""Make the worker processes the controller forks for each task and host cheaper, changing nothing they do.

ansible-playbook forks one worker process per task and host. This plugin, at the start of a playbook:

- Loads the Jinja filter and test plugins once, in the main process. A worker that evaluates a filter or a
  test (`| int`, `is changed`, `| lookout.stack.files_in_place`, ...) first loads every filter or test plugin
  file of that collection, unless the main process has loaded them before the fork. The main process
  evaluates almost nothing itself, so without this every worker loads them again: measured at about 8 ms of
  CPU per task and host for ansible.builtin's filters alone (bench/README.md, "plugins loaded once,
  templates without a deep copy").
- Compiles each template source once per run (option `compile_cache`). A worker compiles every template it
  evaluates, the wiring in group_vars (`conduit_port: "{{ lookout_conduit_port }}"`) again in each task; a
  12-host re-run compiled 4,573 sources on its web hosts, 195 of them distinct. Jinja compiles a source to
  a Python code object; the first worker to compile one writes it (marshal) into a directory of this run,
  in Ansible's private local temporary directory (removed when the run ends), and the others load it. The
  file's name is a hash of the source and of everything the compilation depends on (the environment's
  syntax and whitespace settings, backslash escaping, the generator, embedded-template support). A condition
  or other expression is compiled from its parsed tree, keyed by its text. Each process also keeps what it
  compiled or loaded in memory: the main process evaluates the same conditions for every host, and without
  this compiled each again for each host (0.53 CPU-s of the main thread in a 12-host re-run).
- Freezes the main process's objects for the garbage collector while it forks a worker (option
  `gc_freeze`; `gc.freeze()` before the fork, `gc.unfreeze()` after it in the main process), so that the
  worker's collections do not walk, and copy the memory pages of, the main process's objects. The
  collector's first threshold is raised (option `gc_threshold`, 20000 allocations instead of 700): the main
  process allocates much while it templates for every host, and each full collection walks all it keeps
  (0.7 s of collections in a 12-host re-run at 700).
- Keeps the filter and test loaders' answers for the rest of the run (option `jinja_plugins_kept`): Ansible
  asks again in each template environment (one per task and host), and a name it did not wrap at its start,
  a collection's filter by its full name (`lookout.stack.files_in_place`), lists and reads the collection's
  plugin files each time (0.45 CPU-s of a 12-host re-run's main thread, 0.18 at 3 hosts). A
  directory added to a loader (a role's `filter_plugins`) clears what was kept, as it clears Ansible's own.
- Wraps the variables for lazy templating once per render (option `vars_lazified_once`): Ansible wraps every
  variable of a task again for each nested render (a variable whose value is a template, rendered inside
  another), and renders again there what the enclosing render already rendered. Within one outermost
  render the nested ones now share the wrapping and what it has rendered; the next render starts afresh.

- Loads, in the main process, the connection plugin a task's host uses (option `warm_connections`), before
  the first worker for that connection is forked. A plugin from a collection (community.docker.docker,
  the demo's) is otherwise imported again by every worker, which also parses its documentation as YAML to
  learn its configuration: about 6 ms of CPU per task and host (bench/README.md, "connection plugins
  loaded once").

- Keeps what ansible.builtin.host_group_vars reads for a host or group (option `group_vars_once`): Ansible
  asks it again for every task and host, and it answers from the files it has cached since the first
  time, merged anew: each group_vars file's path resolved and its variables combined into the result.
  The answer is kept per directory, host or group names and loader, and given again; it is the same
  answer, since the plugin reads each file once per run anyway (bench/README.md, "group_vars read once").

- Decides a task's `when` in the main process (option `skip_on_controller`): a task whose condition is false
  on a host is reported skipped from there, exactly as the worker would have reported it (the same result,
  callbacks and registered value), and no worker is forked for it. On an unchanged re-run about half the
  task results are such skips (34 of 73 on a web host, 77 of 154 on the monitoring host). The condition is
  evaluated as the worker evaluates it first thing, on copies of the task's variables and play context;
  anything else (a loop, a delegation, a true, failing or warning condition) goes to a worker as before.
- Decides an include there too (option `includes_on_controller`): an `include_tasks` or `include_role`
  whose condition holds (or that has none) is post-validated in the main process, on a copy of the task and
  its parents, and its result (the file or role and arguments the strategy then includes) sent as the
  worker sends it. A worker's whole work for an include is that post-validation; the fork cost more.
- Runs there a task whose action never uses the host (option `actions_on_controller`): ansible.builtin's
  `set_fact`, `assert`, `fail` and `validate_argument_spec`, and an include with a loop, through Ansible's
  own TaskExecutor, on a copy of the task with its parents and of its variables, as a worker runs it on the
  copies its fork made; the result and any per-item callbacks go through the same queue. On an unchanged
  re-run these were most of the workers left (8 `set_fact`s of 14 workers on a web host). A task with a
  delegation, retries or `until`, `async`, a `timeout` or a pause between loop items still gets a worker, as
  does every task under a strategy from outside ansible-core.

bench/README.md ("templates compiled once, forks without the collector", "conditions decided on the
controller", "includes decided on the controller", "controller-only actions without a worker") has the
figures.
"""

from __future__ import annotations

import gc
import hashlib
import marshal
import os
import tempfile
import threading

from ansible import constants as C
from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, test_loader
from ansible.utils.display import Display

DOCUMENTATION = r"""
name: preload
type: aggregate
short_description: Load filter and test plugins once, before the first task forks its workers
description:
  - At the start of a playbook, loads ansible.builtin's filter and test plugins and those of the listed
    collections in the main process, so that every worker process forked for a task and host inherits them
    instead of loading them again.
  - Changes nothing in what a run does or prints.
requirements:
  - enabled in callbacks_enabled (lookout's ansible.cfg and molecule configuration do it)
options:
  collections:
    description:
      - Collections whose filter and test plugins are loaded too. A collection that is not installed is
        skipped with a message at -vvv.
    type: list
    elements: str
    default: [lookout.stack, community.general]
    env:
      - name: LOOKOUT_PRELOAD_COLLECTIONS
    ini:
      - section: callback_preload
        key: collections
  compile_cache:
    description:
      - Compile each template source and each expression (a condition) once per run, the workers sharing the
        compiled code through files in Ansible's local temporary directory of the run, and each process
        keeping what it compiled or loaded in memory.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_COMPILE_CACHE
    ini:
      - section: callback_preload
        key: compile_cache
  gc_freeze:
    description:
      - Freeze the main process's objects for the garbage collector while a worker is forked.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_GC_FREEZE
    ini:
      - section: callback_preload
        key: gc_freeze
  gc_threshold:
    description:
      - The garbage collector's first threshold (allocations between two collections of the youngest
        generation) in the main process, and so in the workers it forks; Python's is 700. The main process
        allocates much while it templates for every host, and each collection of the oldest generation walks
        every object it keeps (the play, the inventory, each host's results). C(0) leaves the thresholds as
        they are.
    type: int
    default: 20000
    env:
      - name: LOOKOUT_PRELOAD_GC_THRESHOLD
    ini:
      - section: callback_preload
        key: gc_threshold
  jinja_plugins_kept:
    description:
      - Keep what the filter and test plugin loaders answer for a name for the rest of the run, until a
        directory is added to the loader (a role's C(filter_plugins)), which clears the loader's own caches
        and these. Ansible asks the loader again in each template environment, one per task and host; for a
        name it did not wrap at its start (a collection's filter by its full name, such as
        C(lookout.stack.files_in_place), or a name no plugin defines) each answer lists the collection's
        plugin files and reads every one's map again.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_JINJA_PLUGINS_KEPT
    ini:
      - section: callback_preload
        key: jinja_plugins_kept
  vars_lazified_once:
    description:
      - Within one render of a template, expression or condition, wrap each plain layer of the variables
        for lazy templating once, and let the renders nested in it (a variable whose value is a template) use
        that wrapping. Ansible wraps every variable again for each nested render, and renders again there a
        variable already rendered in the enclosing one. With this, a variable is rendered at most once per
        outermost render, so a value that changes between two evaluations (a lookup of the time) is the
        same wherever one render uses it. A render from outside any render starts afresh.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_VARS_LAZIFIED_ONCE
    ini:
      - section: callback_preload
        key: vars_lazified_once
  warm_connections:
    description:
      - Before the first worker of a task is forked for a host, load the connection plugin that host uses
        (its C(ansible_connection), else the task's connection) in the main process, once per plugin name, so
        that the workers inherit the imported plugin and its configuration definitions. A templated name is
        left to the worker.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_WARM_CONNECTIONS
    ini:
      - section: callback_preload
        key: warm_connections
  group_vars_once:
    description:
      - Keep ansible.builtin.host_group_vars's answer for a directory and a host or groups, and give it again
        when the variables of the same host or groups are asked for again in the run. Other vars plugins
        are asked every time, as without this.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_GROUP_VARS_ONCE
    ini:
      - section: callback_preload
        key: group_vars_once
  skip_on_controller:
    description:
      - Evaluate a task's C(when) in the main process first, and report a task whose condition is false as
        skipped from there, without forking a worker for it. A task with a loop or a delegation, or whose
        condition is true, fails or warns, goes to a worker as before (which evaluates the condition again).
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_SKIP_ON_CONTROLLER
    ini:
      - section: callback_preload
        key: skip_on_controller
  includes_on_controller:
    description:
      - With skip_on_controller, also decide in the main process an C(include_tasks) or C(include_role)
        whose condition is true or absent and that has no loop and no delegation. The task is
        post-validated there, on a copy with its parents, and its include result sent as the worker would
        have sent it.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_INCLUDES_ON_CONTROLLER
    ini:
      - section: callback_preload
        key: includes_on_controller
  actions_on_controller:
    description:
      - With skip_on_controller, run in the main process, through Ansible's own task executor, a task whose
        action never uses the host (C(set_fact), C(assert), C(fail), C(validate_argument_spec) of
        ansible.builtin) and an include with a loop, on copies of the task and its variables, instead of
        forking a worker for it. Not under a strategy from outside ansible-core, nor for a task with a
        delegation, retries, C(until), C(async), a C(timeout) or a pause between loop items.
    type: bool
    default: true
    env:
      - name: LOOKOUT_PRELOAD_ACTIONS_ON_CONTROLLER
    ini:
      - section: callback_preload
        key: actions_on_controller
"""

display = Display()

# Asking a collection for a name it does not have makes the loader read every file of the collection's
# filter (test) plugins in search of it: exactly the files a worker would otherwise read for its first one.
_ABSENT_NAME = "preload_absent_name"


# Set at the start of each playbook (the workers inherit it): the compiled-code directory of this run,
# "compile_dir", whether the main process decides includes too, "includes_on_controller", and whether it runs
# controller-only actions, "actions_on_controller", and the collector's first threshold, "gc_threshold".
_state: dict = {
    "compile_dir": None,
    "includes_on_controller": False,
    "actions_on_controller": False,
    "gc_threshold": 0,
}


def _compile_key(env, source, *, name, filename, defer_init, jinja_bits, kind="template") -> str:
    """Everything Jinja's compilation of `source` depends on in an Ansible environment, hashed. `kind` tells a
    template's source from an expression's (compile_expression compiles the parsed expression, not a text)."""
    context = jinja_bits._TemplateCompileContext.current(optional=True)
    parts = (
        kind,
        str(source),
        name,
        filename,
        defer_init,
        bool(context and context.escape_backslashes),
        tuple(getattr(env, field) for field in jinja_bits._TEMPLATE_OVERRIDE_FIELD_NAMES),
        type(env).__module__,
        type(env).__qualname__,
        env.code_generator_class.__qualname__,
        env.optimized,
        env.is_async,
        env.autoescape,
        bool(jinja_bits._TemplateConfig.allow_embedded_templates),
    )
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _replace(owner, name: str, make) -> None:
    """Replaces owner.<name> by make(the original), once per process: a replacement is marked, and a second
    playbook of the same process (or a second callback instance) finds it in place."""
    original = getattr(owner, name)
    if getattr(original, "_lookout_preload", False):
        return
    replacement = make(original)
    replacement._lookout_preload = True
    setattr(owner, name, replacement)


# The compiled code this process has compiled or loaded, by key: taken from here again without reading its
# file (the main process evaluates the same conditions and templates for every host). At most
# _COMPILED_KEPT entries; the oldest is dropped first.
_compiled: dict[str, object] = {}
_COMPILED_KEPT = 4096
# The source of the expression that compile_expression is compiling in this thread (it hands Jinja's compile
# the parsed tree, not the text).
_expression = threading.local()
# The variable layers wrapped for lazy templating in this thread's render from outside any render, by the
# mapping's and the templar's ids (option vars_lazified_once); None outside such a render.
_render = threading.local()


def _keep_compiled(key: str, code) -> None:
    if len(_compiled) >= _COMPILED_KEPT:
        del _compiled[next(iter(_compiled))]
    _compiled[key] = code


def _install_compile_cache() -> None:
    from ansible._internal._templating import _jinja_bits

    def make(original):
        # Jinja's Environment.compile signature, positional arguments included.
        def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # noqa: PLR0917
            # Sources given as text, or an expression's tree with its text, compiled to code (not Python
            # text), outside Ansible's template debugging.
            expression, _expression.source = getattr(_expression, "source", None), None
            if isinstance(source, str):
                text, kind = source, "template"
            else:
                text, kind = expression, "expression"
            compile_dir = _state["compile_dir"]
            if raw or text is None or compile_dir is None or self._debuggable_template_source:
                return original(self, source, name, filename, raw, defer_init)
            key = _compile_key(
                self,
                text,
                name=name,
                filename=filename,
                defer_init=defer_init,
                jinja_bits=_jinja_bits,
                kind=kind,
            )
            code = _compiled.get(key)
            if code is not None:
                return code
            path = os.path.join(compile_dir, key)
            try:
                with open(path, "rb") as cached:
                    code = marshal.load(cached)
            except (OSError, EOFError, ValueError, TypeError):
                code = None
            if code is None:
                code = original(self, source, name, filename, raw, defer_init)
                try:  # written whole under a temporary name, then renamed: a reader sees all of it or nothing
                    handle, temporary = tempfile.mkstemp(dir=compile_dir)
                    with os.fdopen(handle, "wb") as written:
                        marshal.dump(code, written)
                    os.replace(temporary, path)
                except OSError as error:
                    display.vvvv(f"lookout.stack.preload: compiled template not kept: {error}")
            _keep_compiled(key, code)
            return code

        return compile

    def make_expression(original):
        # Jinja parses the text, then compiles the tree in from_string: the text names what is compiled.
        def compile_expression(self, source, *args, **kwargs):
            _expression.source = source if isinstance(source, str) else None
            try:
                return original(self, source, *args, **kwargs)
            finally:
                _expression.source = None

        return compile_expression

    _replace(_jinja_bits.AnsibleEnvironment, "compile", make)
    _replace(_jinja_bits.AnsibleEnvironment, "compile_expression", make_expression)


def _install_jinja_plugins_kept() -> None:
    from ansible.plugins.loader import Jinja2Loader

    def make_get(original):
        # A name asked with no other argument (as a template environment asks it): the first answer kept.
        def get_with_context(self, name, *args, **kwargs):
            if args or kwargs or not isinstance(name, str):
                return original(self, name, *args, **kwargs)
            kept = self.__dict__.setdefault("_lookout_kept", {})
            found = kept.get(name)
            if found is None:
                found = kept[name] = original(self, name)
            return found

        return get_with_context

    def make_clear(original):
        # A directory added to the loader (a role's filter_plugins) clears its caches: the kept answers too.
        def _clear_caches(self):
            original(self)
            self.__dict__.pop("_lookout_kept", None)

        return _clear_caches

    _replace(Jinja2Loader, "get_with_context", make_get)
    _replace(Jinja2Loader, "_clear_caches", make_clear)


def _install_vars_lazified_once() -> None:
    from collections import ChainMap

    from ansible._internal._templating import _jinja_bits, _lazy_containers
    from ansible._internal._templating._engine import TemplateEngine

    plain = (dict, _jinja_bits._AnsibleTaggedDict)

    def make_flatten(original):
        # _jinja_bits._flatten_and_lazify_vars: the layers of a new Jinja context's variables.
        def flatten(mapping):
            mapping_type = type(mapping)
            if mapping_type is ChainMap:
                for layer in mapping.maps:
                    yield from flatten(layer)
                return
            shared = getattr(_render, "shared", None)
            context = _jinja_bits.TemplateContext.current(optional=True)
            if shared is None or context is None or mapping_type not in plain or not mapping:
                yield from original(mapping)
                return
            # The layer is wrapped for the templar that renders it, as Ansible wraps it; the entry holds the
            # mapping and the templar, so that neither id is taken by another object while the render lasts.
            key = (id(mapping), id(context.templar))
            entry = shared.get(key)
            if entry is None:
                wrapped = _lazy_containers._AnsibleLazyTemplateMixin._try_create(mapping)
                entry = (mapping, context.templar, wrapped)
                shared[key] = entry
            yield entry[2]

        return flatten

    def make_entry(original):
        # A render from outside any render opens the scope its nested renders share; it ends with it.
        def entry(self, *args, **kwargs):
            if getattr(_render, "shared", None) is not None:
                return original(self, *args, **kwargs)
            _render.shared = {}
            try:
                return original(self, *args, **kwargs)
            finally:
                _render.shared = None

        return entry

    _replace(_jinja_bits, "_flatten_and_lazify_vars", make_flatten)
    for name in ("template", "evaluate_expression", "evaluate_conditional"):
        _replace(TemplateEngine, name, make_entry)


def _connection_name(task_vars, task):
    """The connection plugin name the worker will load for this task and host, when it is a plain name."""
    name = task_vars.get("ansible_connection")
    if name is None:
        name = task.connection
    if not isinstance(name, str) or not name or "{" in name:
        return None
    return str(name)


def _install_warm_connections() -> None:
    from ansible.executor.process.worker import WorkerProcess
    from ansible.plugins.loader import connection_loader

    warmed: set[str] = set()

    def make(original):
        # Runs in the main process, before the worker is forked; a failure is left to the worker to report.
        def __init__(self, *args, **kwargs):
            original(self, *args, **kwargs)
            name = _connection_name(self._task_vars, self._task)
            if name is None or name in warmed:
                return
            warmed.add(name)
            try:
                connection_loader.get(name, class_only=True)
            except Exception as error:
                display.vvvv(f"lookout.stack.preload: connection {name} not loaded before the fork: {error}")

        return __init__

    _replace(WorkerProcess, "__init__", make)


def _install_group_vars_once() -> None:
    from ansible.vars import plugins as vars_plugins

    kept: dict = {}

    def make(original):
        def get_plugin_vars(loader, plugin, path, entities):
            if getattr(plugin, "ansible_name", None) != "ansible.builtin.host_group_vars":
                return original(loader, plugin, path, entities)
            key = (id(loader), path, tuple((type(entity).__name__, entity.name) for entity in entities))
            try:
                return kept[key]
            except KeyError:
                answer = kept[key] = original(loader, plugin, path, entities)
                return answer

        return get_plugin_vars

    _replace(vars_plugins, "get_plugin_vars", make)


def _install_gc_threshold() -> None:
    threshold = _state["gc_threshold"]
    if threshold > 0:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])


def _install_gc_freeze() -> None:
    from ansible.executor.process.worker import WorkerProcess

    def make(original):
        def start(self):
            gc.freeze()
            try:
                return original(self)
            finally:
                gc.unfreeze()

        return start

    _replace(WorkerProcess, "start", make)


def _controller_result(strategy, host, task, task_vars, play_context):
    """The result a worker would return for `task` on `host`, with the task's fields as the worker would send
    them, when the main process can decide it: a `when` that is false (skipped), or an include whose `when`
    is true or absent (option includes_on_controller). None when the worker must run it: a task with a loop
    or a delegation, any other action, a condition that fails or warns. Evaluated as TaskExecutor does,
    on copies of the task's variables and play context, and for an include on a copy of the task and its
    parents (post-validation templates the parent blocks' fields in place)."""
    from ansible._internal import _display_utils, _task
    from ansible._internal._templating._engine import TemplateEngine

    include = _state["includes_on_controller"] and task.action in C._ACTION_ALL_INCLUDE_ROLE_TASKS
    if not (task.when or include) or task.loop is not None or task.loop_with or task.delegate_to:
        return None
    try:
        with _task.TaskContext(task), _display_utils.DeferredWarningContext(variables=task_vars) as warnings:
            variables = dict(task_vars)
            search_path = task.get_search_path()
            if strategy._loader.get_basedir() not in search_path:
                search_path.append(strategy._loader.get_basedir())
            variables["ansible_search_path"] = search_path
            templar = TemplateEngine(loader=strategy._loader, variables=variables)
            tempvars = variables.copy()
            context = play_context.set_task_and_variable_override(
                task=task, variables=variables, templar=templar
            )
            context.post_validate(templar=templar)
            if not context.remote_addr:
                context.remote_addr = host.address
            context.update_vars(tempvars)
            condition: dict = {}
            if not task.when or task._resolve_conditional(task.when, tempvars, result_context=condition):
                if not include:
                    return None
                found = _include_result(task, templar, tempvars)
            else:
                result = (
                    dict(changed=False, skipped=True, skip_reason="Conditional result was False") | condition
                )
                task.update_result_no_log(templar, result)
                found = result, task.dump_attrs()
        if warnings.get_warnings() or warnings.get_deprecation_warnings():
            return None
    except Exception:  # the worker raises it again, reported as usual
        return None
    return found


def _include_result(task, templar, tempvars):
    """What TaskExecutor returns for an include whose condition holds: the task post-validated (on a copy,
    with its parents), its arguments as the strategy's include processing reads them."""
    copy = task.copy(exclude_tasks=True)
    templar.available_variables = tempvars
    copy.post_validate(templar=templar)
    arguments = copy.args.copy()
    if copy.action in C._ACTION_INCLUDE_TASKS:
        name = arguments.pop("_raw_params", None)
        if not name:  # the worker reports the missing file name
            return None
        result = dict(include=name, include_args=arguments)
    else:
        result = dict(include_args=arguments)
    copy.update_result_no_log(templar, result)
    result["changed"] = False
    return result, copy.dump_attrs()


# Actions whose plugin runs wholly on the controller and never uses the host's connection.
_CONTROLLER_ACTIONS = frozenset(
    (
        "ansible.builtin.set_fact",
        "ansible.builtin.assert",
        "ansible.builtin.fail",
        "ansible.builtin.validate_argument_spec",
    )
)


# ansible-core's own strategies, by the modules their classes come from (a strategy of another project,
# Mitogen's for one, subclasses them in a module of its own name).
_CORE_STRATEGIES = frozenset(
    f"ansible.plugins.strategy.{name}" for name in ("linear", "free", "host_pinned", "debug")
)


def _runs_on_controller(strategy, task) -> bool:
    """Whether the main process runs `task` itself, through Ansible's own TaskExecutor (option
    actions_on_controller): an action of _CONTROLLER_ACTIONS, or an include with a loop, under a strategy
    of ansible-core, without anything that waits or needs another host (delegation, retries, `until`,
    async, a timeout, a pause between items)."""
    if not _state["actions_on_controller"] or type(strategy).__module__ not in _CORE_STRATEGIES:
        return False
    if task.delegate_to or task.until or task.retries is not None or task.async_val or task.timeout:
        return False
    if task.loop_control is not None and task.loop_control.pause:
        return False
    if task.action in C._ACTION_ALL_INCLUDE_ROLE_TASKS:
        return _state["includes_on_controller"]
    return task.resolved_action in _CONTROLLER_ACTIONS


def _run_on_controller(strategy, host, task, task_vars, play_context):
    """What the worker would send for `task` on `host`: TaskExecutor run on a copy of the task (with its
    parents) and of the variables, as the worker runs it on the copies its fork made."""
    from ansible._internal import _task
    from ansible.executor.task_executor import TaskExecutor
    from ansible.plugins import loader as plugin_loader

    copy = task.copy(exclude_tasks=True)
    with _task.TaskContext(copy):
        result = TaskExecutor(
            host,
            copy,
            dict(task_vars),
            play_context,
            strategy._loader,
            plugin_loader.get_plugin_loader_namespace(),
            strategy._final_q,
            strategy._variable_manager,
        ).run()
    return result, copy.dump_attrs()


def _install_skip_on_controller() -> None:
    from ansible.executor.task_result import _RawTaskResult
    from ansible.plugins.strategy import StrategyBase

    def make(original):
        def _queue_task(self, host, task, task_vars, play_context):
            found = _controller_result(self, host, task, task_vars, play_context)
            inline = found is None and _runs_on_controller(self, task)
            if found is None and not inline:
                return original(self, host, task, task_vars, play_context)
            self._queued_task_cache[(host.name, task._uuid)] = {
                "host": host,
                "task": task,
                "task_vars": task_vars,
                "play_context": play_context,
            }
            self._tqm.send_callback("v2_runner_on_start", host, task)
            if inline:
                found = _run_on_controller(self, host, task, task_vars, play_context)
            result, fields = found
            self._final_q.send_task_result(
                _RawTaskResult(host=host, task=task, return_data=result, task_fields=fields)
            )
            self._pending_results += 1

        return _queue_task

    _replace(StrategyBase, "_queue_task", make)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "lookout.stack.preload"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook):
        for loader in (filter_loader, test_loader):
            # ansible.builtin's (and any configured legacy paths'), in one pass.
            for _ in loader.all():
                pass
            for collection in self.get_option("collections"):
                try:
                    loader.get(f"{collection}.{_ABSENT_NAME}")
                except Exception as error:  # a missing or broken collection must not stop the run
                    display.vvv(
                        f"lookout.stack.preload: {collection}'s {loader.type} plugins not loaded: {error}"
                    )
        # Each replaces internals of ansible-core: one that has changed them is run without, and says so.
        _state["includes_on_controller"] = self.get_option("includes_on_controller")
        _state["actions_on_controller"] = self.get_option("actions_on_controller")
        _state["gc_threshold"] = self.get_option("gc_threshold")
        for option, install, without in _INSTALLS:
            if self.get_option(option):
                try:
                    install()
                except Exception as error:
                    display.vvv(f"lookout.stack.preload: {without}: {error}")


def _install_compile_dir() -> None:
    _state["compile_dir"] = None
    _install_compile_cache()
    compile_dir = os.path.join(C.DEFAULT_LOCAL_TMP, "lookout-compiled")
    os.makedirs(compile_dir, mode=0o700, exist_ok=True)
    _state["compile_dir"] = compile_dir


# (option, what it installs, how the run goes without it)
_INSTALLS = (
    ("compile_cache", _install_compile_dir, "templates compiled in each worker"),
    ("group_vars_once", _install_group_vars_once, "group_vars read for every task"),
    ("warm_connections", _install_warm_connections, "connection plugins loaded in each worker"),
    ("skip_on_controller", _install_skip_on_controller, "every condition evaluated in a worker"),
    ("gc_freeze", _install_gc_freeze, "workers forked without freezing"),
    ("gc_threshold", _install_gc_threshold, "the collector's thresholds left as they were"),
    ("vars_lazified_once", _install_vars_lazified_once, "variables wrapped anew for each nested render"),
    ("jinja_plugins_kept", _install_jinja_plugins_kept, "filter and test names looked up for each template"),
)
