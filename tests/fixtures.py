"""Sample applications and hostile tarballs, shared by unit and end-to-end tests."""
from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
from typing import Optional

# An action script that uses nothing but the standard library: reads input.data, writes
# output.data with what the test asks for via its input, exits with the asked code.
ECHO = textwrap.dedent('''
    import json, os, sys, time
    ws = sys.argv[1]
    data = json.load(open(os.path.join(ws, "input.data")))
    name = os.path.basename(os.path.normpath(ws))
    print("running", name, flush=True)
    spec = data.get("_" + name) or data.get("_all") or {}
    if spec.get("sleep"):
        time.sleep(spec["sleep"])
    out = {"data": {"name": name, "input": data}, "actions": spec.get("actions", [])}
    with open(os.path.join(ws, "output.data"), "w") as fp:
        json.dump(out, fp)
    sys.exit(spec.get("exit", 0))
''')

NOOP = "import sys\n"


def dag(*actions: tuple) -> dict:
    """configuration.json from ``(name, [conditions])`` pairs, each running echo.py."""
    return {"actions": [{"name": n, "condition": list(c), "main": "python3 echo.py"} for n, c in actions]}


def make_app(directory: str, config: Optional[dict] = None, files: Optional[dict] = None, top: str = "app",
             name: str = "app.tar.gz", dot_prefix: bool = False) -> str:
    """Write a gzip tarball with one top directory holding configuration.json and ``files``."""
    if config is None:
        config = dag(("first", []), ("second", []), ("third", ["first", "second"]))
    contents = {"configuration.json": json.dumps(config).encode(), "echo.py": ECHO.encode(),
                "noop.py": NOOP.encode()}
    for key, value in (files or {}).items():
        contents[key] = value.encode() if isinstance(value, str) else value
    path = os.path.join(directory, name)
    prefix = f"./{top}" if dot_prefix else top
    with tarfile.open(path, "w:gz") as tar:
        if dot_prefix:
            tar.addfile(_dir("."))
        tar.addfile(_dir(prefix))
        for rel, data in contents.items():
            info = tarfile.TarInfo(f"{prefix}/{rel}")
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def raw_tar(path: str, members: list, gz: bool = True) -> str:
    """A tarball from raw ``TarInfo``/bytes pairs, for hostile shapes a tool wouldn't make."""
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644 if kind == tarfile.REGTYPE else 0o755
    info.size = size
    return info


def valid_config_bytes() -> bytes:
    return json.dumps(dag(("a", []))).encode()


def live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (killed ones may linger as zombies)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fp:
                stat = fp.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry))
    return members


def env_tarball(members: list) -> bytes:
    """A gzip env tarball (no top directory, as venv-pack writes) from ``(TarInfo, bytes-or-None)``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def hostile_env_tarball(outside: str) -> bytes:
    """The issue's env tarball: a symlink to the directory ``outside``, a hard link through
    it to ``outside/victim``, then a regular file of the hard link's name (written into
    the victim by a naive extractor)."""
    return env_tarball([
        (member("bin/", tarfile.DIRTYPE), None),
        (member("bin/activate"), b"true\n"),
        (member("out", tarfile.SYMTYPE, linkname=outside), None),
        (member("h", tarfile.LNKTYPE, linkname="out/victim"), None),
        (member("h"), b"overwritten\n"),
    ])


def make_certificates(directory: str) -> dict:
    """A test CA and a certificate it signs for 127.0.0.1/localhost, as PEM files in
    ``directory``; plus a second CA that signed nothing (for refusals). Needs ``cryptography``."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def ca(label: str) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(label)).issuer_name(name(label))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("LitePipeline test CA")
    _, other_cert = ca("another CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {k: os.path.join(directory, f"{k}.pem") for k in ("ca", "cert", "key", "other_ca")}
    pem = serialization.Encoding.PEM
    for label, obj in (("ca", ca_cert), ("cert", cert), ("other_ca", other_cert)):
        with open(paths[label], "wb") as fp:
            fp.write(obj.public_bytes(pem))
    with open(paths["key"], "wb") as fp:
        fp.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(paths["key"], 0o600)
    return paths
