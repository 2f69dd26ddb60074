"""Keys and certificates: the lab CA, the registry's TLS certificate, SSH keys, htpasswd."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ._proc import run


def write_private(path: Path, text: str) -> None:
    """Write a file readable by root only (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write text to path unless it already holds exactly that; True if written."""
    try:
        if path.read_text() == text:
            if (path.stat().st_mode & 0o777) != mode:
                os.chmod(path, mode)
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    tmp.replace(path)
    return True


def ensure_ca(ca_dir: Path) -> tuple[Path, Path]:
    """The lab CA (key, certificate), made once."""
    key, crt = ca_dir / "ca.key", ca_dir / "ca.crt"
    ok = key.exists() and crt.exists()
    if ok:
        ok = run(["openssl", "x509", "-in", str(crt), "-noout", "-checkend", "86400"], check=False).returncode == 0
    if not ok:
        ca_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(ca_dir, 0o700)
        run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-keyout", str(key), "-out", str(crt), "-days", "3650",
            "-subj", "/CN=tagship lab CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])  # fmt: skip
        os.chmod(key, 0o600)
        os.chmod(crt, 0o644)
    return key, crt


def ensure_server_cert(ca_dir: Path, name: str, ip: str) -> tuple[Path, Path, bool]:
    """A TLS certificate for ip signed by the lab CA: (key, cert, newly made)."""
    ca_key, ca_crt = ensure_ca(ca_dir)
    key, crt = ca_dir / f"{name}.key", ca_dir / f"{name}.crt"
    if key.exists() and crt.exists():
        verify = run(["openssl", "verify", "-CAfile", str(ca_crt), str(crt)], check=False)
        text = run(["openssl", "x509", "-in", str(crt), "-noout", "-ext", "subjectAltName"], check=False).stdout
        fresh = run(["openssl", "x509", "-in", str(crt), "-noout", "-checkend", "86400"], check=False).returncode == 0
        if verify.returncode == 0 and f"IP Address:{ip}" in text and fresh:
            return key, crt, False
    csr, ext = ca_dir / f"{name}.csr", ca_dir / f"{name}.ext"
    ext.write_text(
        f"subjectAltName=IP:{ip}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-keyout",
            str(key),
            "-out",
            str(csr),
            "-subj",
            f"/CN={ip}",
        ]
    )
    run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_crt),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-sha256",
            "-days",
            "825",
            "-extfile",
            str(ext),
            "-out",
            str(crt),
        ]
    )
    os.chmod(key, 0o600)
    csr.unlink(missing_ok=True)
    return key, crt, True


def ensure_ssh_key(path: Path, comment: str) -> Path:
    """An ed25519 key pair at path / path.pub, made once; returns the private key path."""
    pub = path.with_name(path.name + ".pub")
    if not (path.exists() and pub.exists()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        pub.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    os.chmod(path, 0o600)
    return path


def ensure_password(path: Path) -> tuple[str, bool]:
    """The registry password kept in path (0600): (password, newly made)."""
    try:
        value = path.read_text().strip()
        if value:
            os.chmod(path, 0o600)
            return value, False
    except OSError:
        pass
    value = secrets.token_urlsafe(18)
    write_private(path, value + "\n")
    return value, True


def ensure_htpasswd(path: Path, user: str, password: str) -> bool:
    """A bcrypt htpasswd file with exactly user:password; True if (re)written."""
    if path.exists():
        check = run(["htpasswd", "-v", "-i", str(path), user], input=password, check=False)
        if check.returncode == 0:
            return False
    tmp = path.with_name(path.name + ".new")
    run(["htpasswd", "-B", "-i", "-c", str(tmp), user], input=password)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return True
