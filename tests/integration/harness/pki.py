"""Throwaway test PKI: one CA plus leaf certificates signed by it.

Server certificates carry SAN IP:127.0.0.1 and DNS:localhost. Private keys
are written with mode 0600. Nothing here is meant to be secure beyond a test
session.
"""

import datetime
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Dict, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class CertPair:
    """A certificate and its private key on disk (PEM)."""
    cert: str
    key: str


@dataclass
class PKI:
    directory: str
    ca_cert: str
    ca_key: str
    server: CertPair              # default server cert, SAN 127.0.0.1 + localhost
    leaves: Dict[str, CertPair] = field(default_factory=dict)

    def issue(self, name, **kwargs) -> CertPair:
        """Issue another leaf certificate signed by this CA (see issue_cert)."""
        pair = issue_cert(self, name, **kwargs)
        self.leaves[name] = pair
        return pair


def _new_key(kind):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError("key kind must be 'rsa' or 'ec'")


def _write_key(path, key):
    data = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    # Create with 0600 from the start; never world-readable even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _write_cert(path, cert):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _validity():
    now = datetime.datetime.now(datetime.timezone.utc)
    # Backdate a little so clock skew between processes never matters.
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)


def _load(pki: PKI):
    with open(pki.ca_cert, "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    with open(pki.ca_key, "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), password=None)
    return ca_cert, ca_key


def issue_cert(pki: PKI, name: str, *, server: bool = True, key_kind: str = "ec",
               dns=("localhost",), ips=("127.0.0.1",), common_name: Optional[str] = None) -> CertPair:
    """Issue `<name>.crt` / `<name>.key` in pki.directory, signed by the CA.

    server=True adds SANs and the serverAuth EKU; server=False makes a plain
    signing certificate (used for JWT signing), no SAN, digitalSignature only.
    """
    ca_cert, ca_key = _load(pki)
    key = _new_key(key_kind)
    not_before, not_after = _validity()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"archmerge-test {name}")])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(ca_cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=(key_kind == "rsa" and server),
                                            content_commitment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if server:
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    cert = builder.sign(ca_key, hashes.SHA256())
    pair = CertPair(cert=os.path.join(pki.directory, f"{name}.crt"),
                    key=os.path.join(pki.directory, f"{name}.key"))
    _write_cert(pair.cert, cert)
    _write_key(pair.key, key)
    return pair


def self_signed(directory: str, name: str, key_kind: str = "rsa") -> CertPair:
    """A standalone self-signed (non-CA) certificate; for negative tests."""
    os.makedirs(directory, exist_ok=True)
    key = _new_key(key_kind)
    not_before, not_after = _validity()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"archmerge-test {name}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    pair = CertPair(os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key"))
    _write_cert(pair.cert, cert)
    _write_key(pair.key, key)
    return pair


def create_pki(directory: str, server_key_kind: str = "ec") -> PKI:
    """Create a CA (ca.crt/ca.key) and a server certificate (server.crt/.key)."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_key = _new_key("ec")
    not_before, not_after = _validity()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "archmerge-test CA")])
    ca_cert = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name)
               .public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            key_encipherment=False, content_commitment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    ca_cert_path = os.path.join(directory, "ca.crt")
    ca_key_path = os.path.join(directory, "ca.key")
    _write_cert(ca_cert_path, ca_cert)
    _write_key(ca_key_path, ca_key)
    pki = PKI(directory=directory, ca_cert=ca_cert_path, ca_key=ca_key_path, server=None)
    pki.server = issue_cert(pki, "server", key_kind=server_key_kind)
    return pki
