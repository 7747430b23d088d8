#!/usr/bin/python
# Copyright: lookout maintainers
# MIT License
import datetime
import grp
import ipaddress
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: common_certificate_state
short_description: Compare a host's TLS certificate, key and CA copies with what they should be, in one call
description:
  - Reads, on the host, everything the C(certificate) entry of the common role would write for a certificate
    from lookout's internal CA (directories, certificate, key, bundle, the CA's copy and the CA in the trust
    store) and reports whether all of it is already as that entry would leave it. Changes nothing.
  - When C(current) is true, a run of the entry would change nothing, so the caller skips it; an unchanged
    host costs this one call instead of one per file, key and signature check.
  - Stricter than the entry, never looser; anything it cannot prove current (a missing file, another mode
    or owner, other names, another CA, a certificate within C(renew_days) of its end, a key that is not
    the certificate's, no C(cryptography) library on the host) is reported in C(differs), and the caller
    then runs the entry, which decides.
options:
  certificate_path:
    description: The certificate (PEM), owner root, mode 0644.
    type: path
    required: true
  key_path:
    description: Its private key, C(owner):C(group) 0640.
    type: path
    required: true
  ca_path:
    description: Copy of the CA certificate beside it, root 0644; empty for none.
    type: str
    default: ""
  bundle_path:
    description: Certificate and key in one file, C(owner):C(group) 0640; empty for none.
    type: str
    default: ""
  trust_path:
    description: The CA in the host's trust store, root 0644; empty for none.
    type: str
    default: ""
  directories:
    description: Directories that must exist, root 0755.
    type: list
    elements: path
    default: []
  names:
    description: Expected names, the first being the common name; addresses are IP SANs.
    type: list
    elements: str
    required: true
  ca_certificate:
    description: PEM of the CA that must have signed the certificate.
    type: str
    required: true
  renew_days:
    description: A certificate ending within this many days is not current.
    type: int
    required: true
  client_auth:
    description: Whether the certificate is also a client certificate (clientAuth).
    type: bool
    default: false
  key_curve:
    description: Curve of the key (cryptography's name, e.g. secp256r1).
    type: str
    required: true
  owner:
    description: Owner of the key and the bundle.
    type: str
    default: root
  group:
    description: Group of the key and the bundle.
    type: str
    default: root
"""

RETURN = r"""
current:
  description: Everything is as the certificate entry would leave it.
  type: bool
  returned: always
differs:
  description: What is not (or cannot be proven) current, one line each.
  type: list
  elements: str
  returned: always
"""

ARGUMENT_SPEC = {
    "certificate_path": {"type": "path", "required": True},
    "key_path": {"type": "path", "required": True},
    "ca_path": {"type": "str", "default": ""},
    "bundle_path": {"type": "str", "default": ""},
    "trust_path": {"type": "str", "default": ""},
    "directories": {"type": "list", "elements": "path", "default": []},
    "names": {"type": "list", "elements": "str", "required": True},
    "ca_certificate": {"type": "str", "required": True},
    "renew_days": {"type": "int", "required": True},
    "client_auth": {"type": "bool", "default": False},
    "key_curve": {"type": "str", "required": True},
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
}


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _attributes(path: str, owner: str, group: str, mode: int, kind: int) -> str:
    """'' when path is of that kind with that owner, group and mode; otherwise what differs."""
    try:
        info = os.lstat(path)
    except OSError:
        return f"{path} is missing"
    if stat.S_IFMT(info.st_mode) != kind:
        return f"{path} is not a {'directory' if kind == stat.S_IFDIR else 'regular file'}"
    try:
        actual_owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        actual_owner = str(info.st_uid)
    try:
        actual_group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        actual_group = str(info.st_gid)
    actual_mode = stat.S_IMODE(info.st_mode)
    if (actual_owner, actual_group, actual_mode) != (owner, group, mode):
        return f"{path} is {actual_owner}:{actual_group} {actual_mode:04o}, not {owner}:{group} {mode:04o}"
    return ""


def _expected_sans(names: list[str]) -> set[tuple[str, str]]:
    """The entry's rule (common's __common_certificate_sans): digits and dots, or a colon, is an address."""
    sans = set()
    for name in names:
        if name.replace(".", "").isdigit() or ":" in name:
            try:
                sans.add(("IP", str(ipaddress.ip_address(name))))
            except ValueError:  # not an address: never matches, so the entry decides
                sans.add(("IP", name))
        else:
            sans.add(("DNS", name))
    return sans


def _verify_signature(ca_key, certificate) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        if isinstance(ca_key, ec.EllipticCurvePublicKey):
            ca_key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                ec.ECDSA(certificate.signature_hash_algorithm),
            )
        elif isinstance(ca_key, rsa.RSAPublicKey):
            ca_key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                padding.PKCS1v15(),
                certificate.signature_hash_algorithm,
            )
        else:
            ca_key.verify(certificate.signature, certificate.tbs_certificate_bytes)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def _certificate_differs(params: dict, certificate_pem: bytes, key_pem: bytes) -> list[str]:
    """What makes the certificate or key on the host other than what the entry would keep."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    path = params["certificate_path"]
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        return [f"{path} is not a PEM certificate"]
    try:
        ca = x509.load_pem_x509_certificate(params["ca_certificate"].encode())
    except ValueError:
        return ["the CA certificate given is not PEM"]
    differs = []
    if certificate.issuer != ca.subject or not _verify_signature(ca.public_key(), certificate):
        differs.append(f"{path} is not signed by the CA")
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    not_after = getattr(certificate, "not_valid_after_utc", None)
    not_after = not_after.replace(tzinfo=None) if not_after else certificate.not_valid_after
    not_before = getattr(certificate, "not_valid_before_utc", None)
    not_before = not_before.replace(tzinfo=None) if not_before else certificate.not_valid_before
    if not_before > now or not_after <= now + datetime.timedelta(days=params["renew_days"]):
        differs.append(
            f"{path} is valid until {not_after:%Y-%m-%d %H:%M} UTC, within {params['renew_days']} days"
        )
    common_names = [
        attribute.value for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    if common_names != params["names"][:1]:
        differs.append(f"{path} has the common name {common_names}, not {params['names'][:1]}")
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        actual = {("DNS", name) for name in san.get_values_for_type(x509.DNSName)}
        actual |= {("IP", str(address)) for address in san.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        actual = set()
    if actual != _expected_sans(params["names"]):
        differs.append(f"{path} names {sorted(actual)}, not {sorted(_expected_sans(params['names']))}")
    try:
        usages = set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = set()
    wanted = {ExtendedKeyUsageOID.SERVER_AUTH} | (
        {ExtendedKeyUsageOID.CLIENT_AUTH} if params["client_auth"] else set()
    )
    if usages != wanted:
        wanted_text = "server and client" if params["client_auth"] else "server"
        differs.append(f"{path} has other extended key usages than {wanted_text}")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return [*differs, f"{params['key_path']} is not an unencrypted PEM key"]
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != params["key_curve"]:
        differs.append(f"{params['key_path']} is not an EC key on {params['key_curve']}")
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        differs.append(f"{params['key_path']} is not the key of {path}")
    return differs


def compare(params: dict) -> list[str]:
    """Everything that differs from what the certificate entry would leave; [] when all is current."""
    differs = [
        message
        for message in (_attributes(d, "root", "root", 0o755, stat.S_IFDIR) for d in params["directories"])
        if message
    ]
    certificate_pem = _read(params["certificate_path"])
    key_pem = _read(params["key_path"])
    ca_text = params["ca_certificate"].strip() + "\n"
    files = [
        (params["certificate_path"], "root", "root", 0o644, None),
        (params["key_path"], params["owner"], params["group"], 0o640, None),
    ]
    if params["ca_path"]:
        files.append((params["ca_path"], "root", "root", 0o644, ca_text.encode()))
    if params["trust_path"]:
        files.append((params["trust_path"], "root", "root", 0o644, ca_text.encode()))
    if params["bundle_path"]:
        bundle = (certificate_pem or b"") + (key_pem or b"")
        files.append((params["bundle_path"], params["owner"], params["group"], 0o640, bundle))
    for path, owner, group, mode, content in files:
        message = _attributes(path, owner, group, mode, stat.S_IFREG)
        if message:
            differs.append(message)
        elif content is not None and _read(path) != content:
            differs.append(f"{path} has other content")
    if certificate_pem is None or key_pem is None:
        return differs
    try:
        import cryptography  # noqa: F401  (Debian: python3-cryptography)
    except ImportError:
        return [*differs, "the host's Python has no cryptography library: nothing can be proven current"]
    return differs + _certificate_differs(params, certificate_pem, key_pem)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    differs = compare(module.params)
    module.exit_json(changed=False, current=not differs, differs=differs)


if __name__ == "__main__":
    main()
