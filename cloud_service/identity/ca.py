"""The fleet CA: one ECDSA P-256 key that signs device certificates (and the service's own).

A device certificate names its device in a URI SAN, ``urn:confroute:device:<id>``, for client
authentication only, and expires with the device's record. The service trusts the CA for client
certificates (``CONFROUTE_CLOUD_TLS_CLIENT_CA``) and still checks each certificate's serial number
against the device's record, so a rotated-out or revoked certificate is refused although it verifies.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_service.identity.tokens import write_secret
from confroute.errors import InvalidInput

SAN_PREFIX = "urn:confroute:device:"
CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SECRET = "identity.secret"
_BACKDATE = dt.timedelta(minutes=5)  # tolerates clocks slightly behind the CA's


@dataclass(frozen=True)
class IssuedCert:
    """A certificate and its private key (PEM); the key exists only here and where it is written."""

    cert_pem: bytes
    key_pem: bytes
    serial: str  # hex

    def __repr__(self) -> str:
        return f"IssuedCert(serial={self.serial})"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` readable by its owner only (0600), replacing any older file."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def init_ca(folder: Path, name: str = "confroute fleet CA", days: int = 3650) -> Path:
    """Writes ``ca.pem``, ``ca.key`` (0600) and the token secret ``identity.secret`` (0600) into ``folder``.

    An existing CA is never overwritten (every certificate it issued would stop verifying).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / CA_KEY).exists():
        raise InvalidInput(f"{folder / CA_KEY} exists; a fleet CA is created once", field="ca")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(folder / CA_KEY, _private_pem(key))
    (folder / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_secret(folder / SECRET)
    return folder


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


class FleetCA:
    """A loaded CA that issues certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert = cert
        self._key = key

    def __repr__(self) -> str:
        return f"FleetCA({self.cert.subject.rfc4514_string()})"

    @classmethod
    def load(cls, folder: Path) -> FleetCA:
        try:
            cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot load the fleet CA from {folder}: {exc}", field="ca") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput(f"{folder / CA_KEY} is not an EC key", field="ca")
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_device(self, device_id: str, not_after: dt.datetime) -> IssuedCert:
        """A client certificate for ``device_id`` (URI SAN ``urn:confroute:device:<id>``)."""
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(SAN_PREFIX + device_id)])
        return self._issue(device_id, san, ExtendedKeyUsageOID.CLIENT_AUTH, not_after)

    def issue_server(self, hosts: tuple[str, ...], not_after: dt.datetime) -> IssuedCert:
        """A server certificate for the service's host names and IP addresses."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        san = x509.SubjectAlternativeName(names)
        return self._issue(hosts[0], san, ExtendedKeyUsageOID.SERVER_AUTH, not_after)

    def _issue(
        self, name: str, san: x509.SubjectAlternativeName, usage: x509.ObjectIdentifier, not_after: dt.datetime
    ) -> IssuedCert:
        key = ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(_now() - _BACKDATE)
            .not_valid_after(min(not_after, self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(san, critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), _private_pem(key), format(serial, "x"))


@dataclass(frozen=True)
class CertIdentity:
    """What a verified device certificate says: its device id and serial number (hex)."""

    device_id: str
    serial: str


def identity_of(cert_pem: bytes) -> CertIdentity | None:
    """The device id in a certificate's URI SAN and its serial; None when it names no device."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier
        )
    except (ValueError, x509.ExtensionNotFound):
        return None
    ids = [uri.removeprefix(SAN_PREFIX) for uri in uris if uri.startswith(SAN_PREFIX)]
    return CertIdentity(ids[0], format(cert.serial_number, "x")) if len(ids) == 1 else None
