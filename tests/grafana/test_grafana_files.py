"""What the grafana role writes, checked on the controller: grafana.ini, provisioning files, dashboards.

grafana.ini and the provisioning files are rendered by the role itself (its `render` entry, through
ansible-playbook) for two configurations: the defaults over plain HTTP, and a TLS one with an HA pair of
datasources behind basic auth, a datasource to delete and extra ini settings.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import panel_queries

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "grafana"
DASHBOARD_FILES = sorted((ROLE / "files" / "dashboards").glob("*.json"))
ADMIN_PASSWORD = "render-test-admin-password"
DATASOURCE_PASSWORD = "render-test-datasource-password"

PLAIN = {
    "grafana_admin_password": ADMIN_PASSWORD,
    "grafana_prometheus_datasources": [{"name": "Prometheus monitor1", "url": "http://127.0.0.1:9090"}],
    "grafana_alertmanager_datasources": [{"name": "Alertmanager monitor1", "url": "http://127.0.0.1:9093"}],
}
TLS = {
    "grafana_admin_password": ADMIN_PASSWORD,
    "grafana_protocol": "https",
    "grafana_tls_cert_file": "/etc/ssl/grafana.crt",
    "grafana_tls_key_file": "/etc/ssl/private/grafana.key",
    "grafana_listen_address": "0.0.0.0",
    "grafana_port": 3443,
    "grafana_domain": "grafana.example.org",
    "grafana_root_url": "https://grafana.example.org:3443/",
    "grafana_admin_user": "lookout-admin",
    "grafana_prometheus_scrape_interval": "30s",
    "grafana_ini_extra": {"users": {"default_theme": "light"}, "smtp": {"enabled": False}},
    "grafana_prometheus_datasources": [
        {
            "name": "Prometheus monitor1",
            "url": "http://127.0.0.1:9090",
            "basic_auth_user": "grafana",
            "basic_auth_password": DATASOURCE_PASSWORD,
        },
        {
            "name": "Prometheus monitor2",
            "url": "http://10.0.0.2:9090",
            "uid": "prom-b",
            "basic_auth_user": "grafana",
            "basic_auth_password": DATASOURCE_PASSWORD,
        },
    ],
    "grafana_alertmanager_datasources": [{"name": "Alertmanager monitor1", "url": "http://127.0.0.1:9093"}],
    "grafana_datasources_delete": ["Old Prometheus"],
    "grafana_dashboards": ["hosts"],
}
PROXY = {**PLAIN, "grafana_root_url": "https://grafana.example.org/", "grafana_dashboards": []}
# lookout_tls_enabled: the certificate from common's tls entry (internal CA), in the role's own directory.
INTERNAL_CA = {**PLAIN, "grafana_tls_enabled": True}


def _render(tmp: Path, configs: dict[str, dict]) -> dict[str, Path]:
    """Renders each configuration into tmp/<name>, all in one ansible-playbook run."""
    tasks = [
        {
            "name": f"Render {name}",
            "ansible.builtin.include_role": {"name": "grafana", "tasks_from": "render"},
            "vars": {**variables, "grafana_render_dir": str(tmp / name)},
        }
        for name, variables in configs.items()
    ]
    playbook = tmp / "render.yml"
    # JSON is YAML. The modules run with the Python running these tests (it has what Ansible needs).
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Render the grafana role's files",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "tasks": tasks,
                    "vars": {"ansible_python_interpreter": sys.executable},
                }
            ]
        )
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.timer",
    }
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return {name: tmp / name for name in configs}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    return _render(
        tmp_path_factory.mktemp("grafana-render"),
        {"plain": PLAIN, "tls": TLS, "proxy": PROXY, "internal_ca": INTERNAL_CA},
    )


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)  # root_url keeps Grafana's own %(...)s syntax
    parser.read_string(path.read_text())
    return parser


# ------------------------------------------------------------------------------------------ grafana.ini


def test_ini_has_lookouts_settings(rendered):
    ini = _ini(rendered["plain"] / "grafana.ini")
    expected = {
        ("server", "protocol"): "http",
        ("server", "http_addr"): "127.0.0.1",
        ("server", "http_port"): "3000",
        ("server", "domain"): "localhost",
        ("server", "root_url"): "%(protocol)s://%(domain)s:%(http_port)s/",
        ("paths", "data"): "/var/lib/grafana",
        ("paths", "logs"): "/var/log/grafana",
        ("paths", "plugins"): "/var/lib/grafana/plugins",
        ("paths", "provisioning"): "/etc/grafana/provisioning",
        ("security", "admin_user"): "admin",
        ("security", "admin_password"): "$__file{/etc/grafana/admin_password}",
        ("security", "secret_key"): "$__file{/etc/grafana/secret_key}",
        ("security", "cookie_secure"): "false",
        ("security", "strict_transport_security"): "false",
        ("security", "disable_gravatar"): "true",
        ("users", "allow_sign_up"): "false",
        ("users", "allow_org_create"): "false",
        ("auth.anonymous", "enabled"): "false",
        ("analytics", "reporting_enabled"): "false",
        ("analytics", "check_for_updates"): "false",
        ("analytics", "check_for_plugin_updates"): "false",
        ("snapshots", "external_enabled"): "false",
        ("log", "mode"): "console",
    }
    actual = {key: ini.get(*key, fallback=None) for key in expected}
    assert actual == expected
    assert not ini.has_option("server", "cert_file")


def test_ini_over_tls_sets_secure_cookies_and_the_certificate(rendered):
    ini = _ini(rendered["tls"] / "grafana.ini")
    assert ini.get("server", "protocol") == "https"
    assert ini.get("server", "cert_file") == "/etc/ssl/grafana.crt"
    assert ini.get("server", "cert_key") == "/etc/ssl/private/grafana.key"
    assert ini.get("server", "http_addr") == "0.0.0.0"
    assert ini.get("server", "http_port") == "3443"
    assert ini.get("server", "root_url") == "https://grafana.example.org:3443/"
    assert ini.get("security", "admin_user") == "lookout-admin"
    assert ini.getboolean("security", "cookie_secure")
    assert ini.getboolean("security", "strict_transport_security")
    # grafana_ini_extra adds to lookout's sections and creates new ones.
    assert ini.get("users", "default_theme") == "light"
    assert not ini.getboolean("users", "allow_sign_up")
    assert ini.get("smtp", "enabled") == "false"


def test_ini_with_tls_enabled_serves_the_tls_entrys_certificate(rendered):
    """grafana_tls_enabled (lookout_tls_enabled) overrides grafana_protocol with the tls entry's files."""
    ini = _ini(rendered["internal_ca"] / "grafana.ini")
    assert ini.get("server", "protocol") == "https"
    assert ini.get("server", "cert_file") == "/etc/grafana/tls/grafana.crt"
    assert ini.get("server", "cert_key") == "/etc/grafana/tls/grafana.key"
    assert ini.getboolean("security", "cookie_secure")


def test_https_root_url_behind_a_proxy_also_sets_secure_cookies(rendered):
    ini = _ini(rendered["proxy"] / "grafana.ini")
    assert ini.get("server", "protocol") == "http"
    assert ini.getboolean("security", "cookie_secure")


def test_no_secret_is_rendered(rendered):
    for directory in rendered.values():
        for path in directory.rglob("*"):
            if path.is_file():
                text = path.read_text()
                assert ADMIN_PASSWORD not in text, path
                assert DATASOURCE_PASSWORD not in text, path


# ------------------------------------------------------------------------------------------ provisioning


def _datasources(directory: Path) -> dict:
    return yaml.safe_load((directory / "provisioning" / "datasources" / "lookout.yml").read_text())


@pytest.mark.parametrize("config", ["plain", "tls"])
def test_datasource_provisioning_has_grafanas_required_fields(rendered, config):
    document = _datasources(rendered[config])
    assert document["apiVersion"] == 1
    sources = document["datasources"]
    assert sources, "no datasource provisioned"
    for source in sources:
        for field in ("name", "type", "access", "url", "uid", "orgId"):
            assert source.get(field) not in (None, ""), f"{source.get('name')}: no {field}"
        assert source["type"] in {"prometheus", "alertmanager"}
        assert source["access"] == "proxy"
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", source["uid"]), source["uid"]
        assert source["editable"] is False
        if source["type"] == "alertmanager":
            assert source["jsonData"]["implementation"] == "prometheus"
        else:
            assert source["jsonData"]["timeInterval"] == ("30s" if config == "tls" else "15s")
    assert len({s["uid"] for s in sources}) == len(sources)
    assert len({s["name"] for s in sources}) == len(sources)
    defaults = [s["name"] for s in sources if s.get("isDefault")]
    assert defaults == ["Prometheus monitor1"]
    for entry in document.get("deleteDatasources") or []:
        assert set(entry) == {"name", "orgId"}


def test_datasources_of_an_ha_pair_with_basic_auth(rendered):
    document = _datasources(rendered["tls"])
    by_name = {s["name"]: s for s in document["datasources"]}
    assert set(by_name) == {"Prometheus monitor1", "Prometheus monitor2", "Alertmanager monitor1"}
    assert by_name["Prometheus monitor1"]["uid"] == "prometheus-monitor1"
    assert by_name["Prometheus monitor2"]["uid"] == "prom-b"
    for name in ("Prometheus monitor1", "Prometheus monitor2"):
        assert by_name[name]["basicAuth"] is True
        assert by_name[name]["basicAuthUser"] == "grafana"
        assert by_name[name]["secureJsonData"]["basicAuthPassword"]
    assert "basicAuth" not in by_name["Alertmanager monitor1"]
    assert document["deleteDatasources"] == [{"name": "Old Prometheus", "orgId": 1}]


def test_dashboard_provider(rendered):
    document = yaml.safe_load((rendered["plain"] / "provisioning" / "dashboards" / "lookout.yml").read_text())
    assert document["apiVersion"] == 1
    [provider] = document["providers"]
    assert provider["type"] == "file"
    assert provider["name"] and provider["folder"] == "Lookout"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    assert provider["disableDeletion"] is False, "removed dashboard files must take their dashboards along"
    assert provider["allowUiUpdates"] is False


def test_only_the_chosen_dashboards_are_rendered(rendered):
    assert sorted(p.name for p in (rendered["plain"] / "dashboards").iterdir()) == [
        p.name for p in DASHBOARD_FILES
    ]
    assert sorted(p.name for p in (rendered["tls"] / "dashboards").iterdir()) == ["hosts.json"]
    assert not list((rendered["proxy"] / "dashboards").iterdir())


# ------------------------------------------------------------------------------------------- dashboards


def test_the_roles_dashboard_list_matches_its_files():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    internals = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    names = sorted(p.stem for p in DASHBOARD_FILES)
    assert sorted(defaults["grafana_dashboards"]) == names
    assert sorted(internals["__grafana_known_dashboards"]) == names


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_dashboards_are_valid_json_with_unique_uids():
    uids = [_load(p)["uid"] for p in DASHBOARD_FILES]
    assert len(set(uids)) == len(uids) == 4
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid) for uid in uids)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_dashboard_structure(path):
    dashboard = _load(path)
    assert dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None, "provisioned dashboards carry no database id"
    panels = list(panel_queries.iter_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for panel in panels:
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"} and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel.get("title") and panel.get("targets"), panel.get("id")


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_every_dashboard_has_the_env_variable(path):
    variables = {v["name"]: v for v in _load(path)["templating"]["list"]}
    assert "env" in variables
    assert variables["env"]["type"] == "query"
    assert variables["env"]["includeAll"] and variables["env"]["allValue"] == ".*"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_datasource_references_exist(path):
    """Panels, targets and variables use the dashboard's datasource variable, which selects Prometheus."""
    dashboard = _load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource_variables = {n for n, v in variables.items() if v["type"] == "datasource"}
    assert datasource_variables == {"datasource"}
    assert variables["datasource"]["query"] == "prometheus"

    def check(reference, where):
        assert reference["type"] == "prometheus", where
        uid = reference["uid"]
        match = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", uid)
        assert match and (match.group(1) or match.group(2)) in datasource_variables, f"{where}: {uid}"

    for panel in panel_queries.iter_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        check(panel["datasource"], panel["title"])
        for target in panel["targets"]:
            check(target["datasource"], f"{panel['title']} [{target['refId']}]")
    for variable in variables.values():
        if variable["type"] == "query":
            check(variable["datasource"], f"${variable['name']}")


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_queries_use_only_defined_variables_as_regex_matchers(path):
    dashboard = _load(path)
    queries = panel_queries.extract_queries(dashboard)
    assert queries
    for query in queries:
        assert not query.unresolved, f"{query.name}: undefined {query.unresolved}"
        # "All" is the regex .*; an equality matcher would compare with the literal text.
        assert not re.search(r'(?<![=!])=\s*"\$', query.expr), f"{query.name}: use =~ with variables"
    panel_count = sum(1 for p in panel_queries.iter_panels(dashboard["panels"]) if p["type"] != "row")
    assert len({q.panel for q in queries if q.kind == "panel"}) == panel_count


def test_the_dashboards_cover_the_required_metrics():
    text = {p.stem: p.read_text() for p in DASHBOARD_FILES}
    required = {
        "conduit": [
            "flask_http_request_total",
            "flask_http_request_duration_seconds_bucket",
            "histogram_quantile(0.5",
            "histogram_quantile(0.95",
            "histogram_quantile(0.99",
            'status=~\\"5..\\"',
            "up{",
            "haproxy_frontend_http_requests_total",
            'code=\\"5xx\\"',
            "haproxy_server_status",
        ],
        "probes": [
            "probe_success",
            "probe_http_status_code",
            "probe_http_duration_seconds",
            "probe_ssl_earliest_cert_expiry",
        ],
        "hosts": [
            "node_cpu_seconds_total",
            "node_memory_MemAvailable_bytes",
            "node_filesystem_avail_bytes",
            "node_network_receive_bytes_total",
        ],
        "loadtest": ["k6_http_reqs_total", "k6_http_req_duration_p95", "k6_vus", "k6_http_req_failed_rate"],
    }
    missing = {name: [m for m in metrics if m not in text[name]] for name, metrics in required.items()}
    assert not any(missing.values()), missing


def test_the_frontend_panels_select_the_haproxy_roles_names():
    """HAProxy's series are selected by proxy name: the public frontend and the backend the role renders."""
    role = ROOT / "roles" / "haproxy"
    frontend = yaml.safe_load((role / "vars" / "main.yml").read_text())["__haproxy_frontend_name"]
    backend = yaml.safe_load((role / "defaults" / "main.yml").read_text())["haproxy_backend_name"]
    dashboard = _load(ROLE / "files" / "dashboards" / "conduit.json")
    queries = [q.expr for q in panel_queries.extract_queries(dashboard) if "haproxy_" in q.expr]
    assert len(queries) == 5
    for expr in queries:
        proxies = set(re.findall(r'proxy="([^"]+)"', expr))
        expected = {backend} if "haproxy_backend_" in expr or "haproxy_server_" in expr else {frontend}
        assert proxies == expected, expr
