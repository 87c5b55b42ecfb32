"""Real OpenSSF model signatures for the tests, made at test time with the `model-signing` library
as its `model_signing sign key|certificate` commands make them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import model_signing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

SIGNATURE = "model.sig"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path

    @property
    def fingerprint(self) -> str:
        """sha256 of the DER public key, as `openssl pkey -pubin -outform DER | sha256sum` prints it."""
        key = serialization.load_pem_public_key(self.public.read_bytes())
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"sha256:{hashlib.sha256(der).hexdigest()}"


def key_pair(
    directory: Path, name: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None
) -> KeyPair:
    key = key or ec.generate_private_key(ec.SECP256R1())
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / f"{name}.pem", directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private, public)


def _hashing() -> model_signing.hashing.Config:
    # What the model_signing CLI does with --signature inside the model: the signature is left out.
    return model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE])


def sign_with_key(model: Path, key: KeyPair, signature: Path | None = None) -> Path:
    signature = signature or model / SIGNATURE
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key.private).set_hashing_config(
        _hashing()
    ).sign(model, signature)
    return signature


@dataclass(frozen=True)
class CertificateAuthority:
    root: Path  # the chain a verifier trusts
    signer_key: Path
    signer_certificate: Path
    subject: str


def certificate_authority(directory: Path, common_name: str) -> CertificateAuthority:
    """A root CA and a code-signing certificate it issued, PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test model CA")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(root_key, hashes.SHA256())
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=30))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .sign(root_key, hashes.SHA256())
    )
    paths = directory / "root.crt", directory / "signer.key", directory / "signer.crt"
    paths[0].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        signer_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[2].write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(*paths, subject=subject.rfc4514_string())


def sign_with_certificate(model: Path, authority: CertificateAuthority) -> Path:
    signature = model / SIGNATURE
    model_signing.signing.Config().use_certificate_signer(
        private_key=authority.signer_key,
        signing_certificate=authority.signer_certificate,
        certificate_chain=[authority.root],
    ).set_hashing_config(_hashing()).sign(model, signature)
    return signature
