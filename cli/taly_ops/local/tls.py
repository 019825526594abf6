"""A self-signed certificate for the local PostgreSQL servers, so clients can require TLS as RDS does.

RDS forces TLS (rds.force_ssl); the ops CLI connects to cloud databases with sslmode=require. The
local servers speak TLS too, so that a contract pointing at them exercises exactly that path.
The key never leaves the server's data directory (mode 600, owned by the server's OS user).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

SETTINGS = "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"


def write_server_certificate(data_dir: Path, own) -> None:
    """server.crt and server.key (P-256, valid 30 days, CN localhost, SAN 127.0.0.1) in data_dir."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = data_dir / "server.key", data_dir / "server.crt"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for path in (key_path, cert_path):
        own(path)
