#!/usr/bin/python3
"""A stand-in for the `grafana` binary, packaged by the scenario when no real Grafana package is given.

It is NOT Grafana. It plays just enough of its process for the role's own mechanics to run for real:
`grafana server --homepath=H --config=C` reads grafana.ini (with `$__file{}` expansion), listens where it
says, creates the admin from admin_password on its first start only (as Grafana does), and answers
/api/health, /api/user (basic auth) and the admin provisioning reload API (logging each reload);
`grafana cli ... admin reset-admin-password --password-from-stdin` replaces the stored password.
"""

import base64
import configparser
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def load_config(argv):
    path = next(a.split("=", 1)[1] for a in argv if a.startswith("--config="))
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(path)

    def value(section, key, default=""):
        raw = ini.get(section, key, fallback=default)
        return re.sub(r"\$__file\{([^}]*)\}", lambda m: Path(m.group(1)).read_text().strip(), raw)

    return value


def admin_file(value):
    return Path(value("paths", "data")) / "standin-admin.json"


def serve(value):
    store = admin_file(value)
    if not store.exists():  # first start: the admin is created from grafana.ini, never again
        store.write_text(
            json.dumps(
                {"user": value("security", "admin_user"), "password": value("security", "admin_password")}
            )
        )
    reloads = Path(value("paths", "data")) / "standin-reloads.log"

    class Handler(BaseHTTPRequestHandler):
        def _authorized(self):
            admin = json.loads(store.read_text())
            expected = base64.b64encode(f"{admin['user']}:{admin['password']}".encode()).decode()
            return self.headers.get("Authorization", "") == f"Basic {expected}"

        def _answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/api/health":
                self._answer(200, {"database": "ok", "version": "stand-in"})
            elif self.path == "/api/user":
                ok = self._authorized()
                self._answer(200 if ok else 401, {"login": "admin"} if ok else {"message": "Unauthorized"})
            else:
                self._answer(404, {"message": "not found"})

        def do_POST(self):
            match = re.fullmatch(r"/api/admin/provisioning/(dashboards|datasources)/reload", self.path)
            if not match:
                self._answer(404, {"message": "not found"})
            elif not self._authorized():
                self._answer(401, {"message": "Unauthorized"})
            else:
                with reloads.open("a") as log:
                    log.write(match.group(1) + "\n")
                self._answer(200, {"message": "reloaded"})

        def log_message(self, *args):
            pass

    address = (value("server", "http_addr") or "0.0.0.0", int(value("server", "http_port", "3000")))
    ThreadingHTTPServer(address, Handler).serve_forever()


def reset_admin_password(value):
    store = admin_file(value)
    admin = json.loads(store.read_text())
    admin["password"] = sys.stdin.read()
    store.write_text(json.dumps(admin))
    print("Admin password changed successfully")


def main(argv):
    if argv[:1] == ["server"]:
        serve(load_config(argv))
    elif argv[:1] == ["cli"] and argv[-3:] == ["admin", "reset-admin-password", "--password-from-stdin"]:
        reset_admin_password(load_config(argv))
    else:
        sys.exit(f"grafana stand-in: unsupported arguments {argv}")


if __name__ == "__main__":
    main(sys.argv[1:])
