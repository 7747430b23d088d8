"""Load the Jinja filter and test plugins once, in the controller's main process, before the first task.

ansible-playbook forks one worker process per task and host. A worker that evaluates a filter or a test
(`| int`, `is changed`, `| lookout.stack.files_in_place`, ...) first loads every filter or test plugin file
of that collection, unless the main process has loaded them before the fork. The main process evaluates
almost nothing itself, so without this plugin every worker loads them again: measured at about 8 ms of CPU
per task and host for ansible.builtin's filters alone (bench/README.md, "plugins loaded once, templates
without a deep copy").
"""

from __future__ import annotations

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
"""

display = Display()

# Asking a collection for a name it does not have makes the loader read every file of the collection's
# filter (test) plugins in search of it: exactly the files a worker would otherwise read for its first one.
_ABSENT_NAME = "preload_absent_name"


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
