#!/usr/bin/env python3
"""Which tasks made a molecule scenario fail, read from the scenario's output.

scripts/molecule-all.sh keeps each scenario's output and, for a failed scenario, prints this at the very end
of its own output: the failed action (converge, verify, ...), then for each of its last failures (--last;
a failure that ended its host's play: not "...ignoring", not caught by a rescue) the play, the task, the
host and the message. A CI log that keeps only its last lines then still says what failed.

    scripts/failed-tasks.py LOG [--last N] [--width CHARS]

Prints nothing when the log has no failed action. Reads molecule's framed output (colours and the frame's
"│" removed) as well as plain ansible-playbook output.
"""

import argparse
import json
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FRAME = re.compile(r"^[^│]*│ ?")
ACTION_FAILED = re.compile(r"➜ (\w+): Executed: Failed")
ACTION_START = re.compile(r"➜ (\w+): Executing")
HEADER = re.compile(r"^(PLAY|TASK) \[")
RESULT = re.compile(r"^(ok|changed|skipping|fatal|failed): \[([^\]]+)\]( \(item=.*?\))?")
MSG = re.compile(r'"msg": "((?:[^"\\]|\\.)*)"')
ASSERTION = re.compile(r'"assertion": "((?:[^"\\]|\\.)*)"')


def plain(line: str) -> str:
    return FRAME.sub("", ANSI.sub("", line.rstrip("\n")), count=1)


def action_lines(lines: list[str]) -> tuple[str, list[str]] | None:
    """The failed action's name and its lines (the last failed action), or None."""
    failed = [i for i, line in enumerate(lines) if ACTION_FAILED.search(line)]
    if not failed:
        return None
    end = failed[-1]
    name = ACTION_FAILED.search(lines[end]).group(1)
    starts = [i for i in range(end) if (m := ACTION_START.search(lines[i])) and m.group(1) == name]
    return name, lines[(starts[-1] + 1 if starts else 0) : end]


def header_text(lines: list[str], i: int) -> tuple[str, int]:
    """A PLAY or TASK header, which the frame may have wrapped over several lines, and the next index."""
    text = lines[i].strip()
    while "]" not in text and i + 1 < len(lines) and lines[i + 1].strip():
        i += 1
        text += " " + lines[i].strip()
    return re.sub(r"\s*\*+$", "", text).strip(), i + 1


def unquote(text: str) -> str:
    """A JSON string's content without its escapes; as it is when the wrapping broke an escape."""
    try:
        return json.loads(f'"{text}"')
    except ValueError:
        return text


def result_message(text: str) -> str:
    """The result's msg, with the assertion of a failed assert. The frame's wrapping can break the result's
    JSON; then the last "msg" found is taken (a loop item's or a nested result's come before the task's)."""
    _, _, body = text.partition("=>")
    body = body.strip()
    try:
        result = json.loads(body)
    except ValueError:
        result = None
    if isinstance(result, dict):
        msg, assertion = result.get("msg", body), result.get("assertion")
        msg = msg if isinstance(msg, str) else json.dumps(msg)
    else:
        strings = [unquote(found) for found in MSG.findall(body)]
        start = body.rfind('"msg": ')
        msg = strings[-1] if strings else body[start + len('"msg": ') :] if start >= 0 else body
        assertion = next(iter(ASSERTION.findall(body)), None)
        assertion = unquote(assertion) if assertion else None
    return f"{msg} (assertion: {assertion})" if assertion else msg


def failures(lines: list[str]) -> list[dict]:
    """The failures that ended a host's play: not marked "...ignoring", and with no later result for the
    same host in the same play (a rescue or a later task went on after it)."""
    found, play, task, plays, tasks, i = [], "", "", 0, 0, 0
    while i < len(lines):
        line = lines[i].strip()
        if HEADER.match(line):
            text, i = header_text(lines, i)
            if text.startswith("PLAY"):
                play, plays = text, plays + 1
            else:
                task, tasks = text, tasks + 1
            continue
        i += 1
        result = RESULT.match(line)
        if not result:
            continue
        host = result.group(2).split(" -> ")[0]
        for earlier in found:
            if earlier["name"] == host and earlier["play_no"] == plays and earlier["task_no"] < tasks:
                earlier["final"] = False
        if result.group(1) not in ("fatal", "failed"):
            continue
        parts = [line]
        # The frame wraps a long result onto indented lines; a result or a header starts at the margin.
        while i < len(lines) and lines[i].startswith("  "):
            parts.append(lines[i].strip())
            i += 1
        ignored = i < len(lines) and lines[i].strip().startswith("...ignoring")
        found.append(
            {
                "play": play,
                "play_no": plays,
                "task_no": tasks,
                "task": task,
                "host": host + (result.group(3) or ""),
                "name": host,
                "text": " ".join(parts),
                "final": not ignored,
            }
        )
    return [failure for failure in found if failure["final"]]


def report(log: str, last: int, width: int) -> list[str]:
    lines = [plain(line) for line in log.splitlines()]
    action = action_lines(lines)
    if action is None:
        return []
    name, body = action
    out = [f"failed action: {name}"]
    for failure in failures(body)[-last:]:
        message = " ".join(result_message(failure["text"]).split())
        if len(message) > width:
            message = message[: width - 3] + "..."
        out += [f"  {failure['play']}", f"  {failure['task']} on {failure['host']}", f"    {message}"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--last", type=int, default=2, help="how many of the last failures (default 2)")
    parser.add_argument("--width", type=int, default=600, help="longest message printed (default 600)")
    args = parser.parse_args(argv)
    with open(args.log, encoding="utf-8", errors="replace") as handle:
        for line in report(handle.read(), args.last, args.width):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
