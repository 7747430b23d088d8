"""The stack's attack surface, judged against the policy of who talks to whom (verify_firewall.yml).

Reads one JSON document on stdin:
  policy     [{name, group, port, from: [group | 'operators' | 'clients']}]: who may open a TCP connection
             to each listener; `group` 'all' means every host
  hosts      {host: {groups, addresses, listeners: [{address, port, process}], exposure: {unit: level}}}
  operators  the inventory's management sources (addresses or prefixes)
  clients    the inventory's client sources
  tls        ["host:port", ...]: the listeners that serve TLS only (verify_tls.yml proves it)
  test_units units the scenario itself adds (its Slack stand-in): reported, not judged
  targets    [[host, address, port], ...]: every listener not bound to loopback
  scans      {source host: ['open' | 'refused' | 'timeout' | 'self', ...]}, one answer per target
Writes {table, exposure, problems} as JSON: one row per listener (where it listens, TLS, who the policy lets
in, who reached it from the scan), each host's unit exposure, and every disagreement, named.
A source may reach a listener when one of its groups is in the policy's `from`, or when its address lies in
the operators' (clients') sources and `from` names them; the firewall drops everything else, so an attempt
then times out.
"""

import ipaddress
import json
import sys

EXPOSURE_LIMIT = 2.5


def loopback(address):
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # '*', '0.0.0.0' spelled as a wildcard by ss
        return False


def within(addresses, prefixes):
    networks = [ipaddress.ip_network(prefix, strict=False) for prefix in prefixes]
    return any(
        ipaddress.ip_address(address) in network
        for address in addresses
        for network in networks
        if ipaddress.ip_address(address).version == network.version
    )


def rule_for(policy, host, port):
    for rule in policy:
        if int(rule["port"]) == port and (rule["group"] == "all" or rule["group"] in host["groups"]):
            return rule
    return None


def may_reach(rule, source, document):
    allowed = set(rule["from"])
    if allowed & set(source["groups"]):
        return True
    if "operators" in allowed and within(source["addresses"], document["operators"]):
        return True
    return "clients" in allowed and within(source["addresses"], document["clients"])


def judge_scans(document, problems):
    """{(host, port): {source: answer}}, each answer checked against what the policy expects."""
    hosts, reached = document["hosts"], {}
    for source, answers in document["scans"].items():
        if len(answers) != len(document["targets"]):
            problems.append(f"{source}: {len(answers)} answers for {len(document['targets'])} targets")
            continue
        for (host, _address, port), answer in zip(document["targets"], answers, strict=True):
            if answer == "self":
                continue
            reached.setdefault((host, port), {})[source] = answer
            rule = rule_for(document["policy"], hosts[host], port)
            if rule is None:
                continue  # reported once, as an undeclared listener
            expected = "open" if may_reach(rule, hosts[source], document) else "timeout"
            if answer != expected:
                problems.append(
                    f"{source} -> {host}:{port} ({rule['name']}): {answer}, the policy says {expected}"
                )
    return reached


def listener_rows(document, reached, problems):
    """One row per distinct (host, port, address), undeclared listeners reported."""
    tls, rows = set(document.get("tls", [])), []
    for host, facts in sorted(document["hosts"].items()):
        names = [host, *facts["addresses"]]
        seen = set()
        for listener in sorted(facts["listeners"], key=lambda item: (item["port"], item["address"])):
            port, address = listener["port"], listener["address"]
            if (port, address) in seen:
                continue
            seen.add((port, address))
            rule = rule_for(document["policy"], facts, port)
            row = {
                "host": host,
                "address": address,
                "port": port,
                "process": listener["process"],
                "service": rule["name"] if rule else None,
                "tls": any(f"{name}:{port}" in tls for name in names),
                "policy": rule["from"] if rule else [],
                "scan": reached.get((host, port), {}),
            }
            if loopback(address):
                row["policy"] = ["this host (loopback)"]
            elif rule is None:
                process = ",".join(listener["process"]) or "?"
                problems.append(f"{host}:{port} ({process}) listens on {address} but no policy names it")
            rows.append(row)
    return rows


def judge_exposure(document, problems):
    exposure = {}
    for host, facts in sorted(document["hosts"].items()):
        exposure[host] = facts["exposure"]
        for unit, level in sorted(facts["exposure"].items()):
            if unit in document.get("test_units", []):
                continue
            if level is None or level > EXPOSURE_LIMIT:
                problems.append(f"{host}: {unit} exposure {level}, above {EXPOSURE_LIMIT}")
    return exposure


def report(document):
    problems = []
    reached = judge_scans(document, problems)
    table = listener_rows(document, reached, problems)
    exposure = judge_exposure(document, problems)
    return {"table": table, "exposure": exposure, "problems": problems}


if __name__ == "__main__":
    json.dump(report(json.load(sys.stdin)), sys.stdout)
    sys.stdout.write("\n")
